//! The command line: `serve` (the default), `migrate`, `token`, `openapi` and `healthcheck`.

use std::ffi::OsString;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::config::{AuthConfig, DatabaseConfig, LogConfig, ServeConfig};

/// The task API behind the Todo application.
#[derive(Debug, Parser)]
#[command(name = "todo-backend", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once at start-up: the size of the serve variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply migrations and serve the API (the default).
    Serve(ServeConfig),
    /// Apply the database migrations, then exit.
    Migrate {
        #[command(flatten)]
        database: DatabaseConfig,
        #[command(flatten)]
        log: LogConfig,
    },
    /// Print an HS256 token for USER_ID, signed with the configured or development secret.
    Token(TokenArgs),
    /// Print the OpenAPI document as JSON.
    Openapi,
    /// Ask the service on HOST and PORT for `/health`: exit status 0 when it answers 200, 1
    /// otherwise (a container's health check, in an image without curl).
    Healthcheck(HealthcheckArgs),
}

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// The service's address, as it was given to `serve` (0.0.0.0 and :: are asked on
    /// loopback).
    #[arg(long, env, default_value = "127.0.0.1")]
    pub host: String,
    /// The service's port.
    #[arg(long, env, default_value_t = 8000)]
    pub port: u16,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The user id to put in the token's `sub` claim.
    pub user_id: String,
    /// How long the token is valid: a number with s, m, h or d (e.g. 90s, 15m, 1h, 7d).
    #[arg(long, default_value = "1h", value_parser = parse_ttl)]
    pub ttl: Duration,
    #[command(flatten)]
    pub auth: AuthConfig,
    #[command(flatten)]
    pub log: LogConfig,
}

impl Command {
    /// How this command logs (`openapi` has no settings, and logs at the defaults).
    pub fn log(&self) -> LogConfig {
        match self {
            Command::Serve(config) => config.log.clone(),
            Command::Migrate { log, .. } | Command::Token(TokenArgs { log, .. }) => log.clone(),
            Command::Openapi | Command::Healthcheck(_) => LogConfig::default(),
        }
    }
}

/// The subcommands' names, to tell `todo-backend --port 9000` (serve) from the others.
const COMMANDS: [&str; 6] = [
    "serve",
    "migrate",
    "token",
    "openapi",
    "healthcheck",
    "help",
];

/// With no subcommand, `serve` is meant: `todo-backend --port 9000` is `todo-backend serve
/// --port 9000`. Only `--help` and `--version` alone stay the program's own.
fn with_default_command(mut args: Vec<OsString>) -> Vec<OsString> {
    let first = args.get(1).and_then(|arg| arg.to_str());
    let named = first.is_some_and(|arg| COMMANDS.contains(&arg));
    let own_flag = matches!(first, Some("-h" | "--help" | "-V" | "--version"));
    if !named && !own_flag {
        args.insert(1.min(args.len()), "serve".into());
    }
    args
}

/// Parses the command line, after loading `.env` so its variables act as defaults.
///
/// On a bad value this prints one line naming the setting and exits with status 2.
pub fn parse() -> Cli {
    if let Err(error) = dotenvy::dotenv()
        && !error.not_found()
    {
        eprintln!("error: cannot read .env: {error}");
        std::process::exit(2);
    }
    let args = with_default_command(std::env::args_os().collect());
    Cli::try_parse_from(args).unwrap_or_else(|error| {
        use clap::error::ErrorKind;
        match error.kind() {
            ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => error.exit(),
            _ => {
                eprintln!("{}", one_line(&error));
                std::process::exit(2);
            }
        }
    })
}

/// Stops the program for a setting that is wrong in a way only seen after parsing (a
/// combination of variables, say): the same one line and exit status 2 as a bad flag.
pub fn exit_for_setting(problem: &str) -> ! {
    eprintln!("error: {problem}");
    std::process::exit(2)
}

/// One line naming the setting and the problem. An invalid value is not repeated: it may be
/// a URL with a password in it, or a secret.
fn one_line(error: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if error.kind() == ErrorKind::ValueValidation
        && let Some(ContextValue::String(arg)) = error.get(ContextKind::InvalidArg)
    {
        let why = std::error::Error::source(error)
            .map_or_else(|| "invalid value".to_owned(), ToString::to_string);
        return format!("error: invalid value for {arg}: {why}");
    }
    // clap's first line names the setting and the problem; the rest is usage.
    error
        .render()
        .to_string()
        .lines()
        .next()
        .unwrap_or("error: invalid arguments")
        .to_owned()
}

/// `90s`, `15m`, `1h`, `7d`, or a bare number of seconds.
fn parse_ttl(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{raw:?} is not a duration like 90s, 15m, 1h or 7d"))?;
    let seconds = match unit {
        "" | "s" => Some(number),
        "m" => number.checked_mul(60),
        "h" => number.checked_mul(3600),
        "d" => number.checked_mul(86_400),
        _ => None,
    };
    match seconds {
        Some(seconds) if seconds > 0 => Ok(Duration::from_secs(seconds)),
        _ => Err(format!(
            "{raw:?} is not a positive duration like 90s, 15m, 1h or 7d"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn ttl_units() {
        assert_eq!(parse_ttl("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_ttl("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_ttl("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_ttl("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_ttl("30"), Ok(Duration::from_secs(30)));
        for bad in ["", "0s", "h", "1w", "-1h", "1.5h", "99999999999999999999d"] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
    }

    fn parse_args(args: &[&str]) -> Result<Cli, clap::Error> {
        let args = args.iter().map(OsString::from).collect();
        Cli::try_parse_from(with_default_command(args))
    }

    #[test]
    fn no_subcommand_means_serve() {
        let cli = parse_args(&["todo-backend"]).expect("parses");
        assert!(matches!(cli.command, Command::Serve(_)));
        let Command::Serve(config) = parse_args(&["todo-backend", "--port", "9000"])
            .expect("parses")
            .command
        else {
            panic!("serve");
        };
        assert_eq!(config.http.port, 9000);
    }

    #[test]
    fn flags_work_after_the_subcommand() {
        let Command::Serve(config) = parse_args(&["todo-backend", "serve", "--port", "9000"])
            .expect("parses")
            .command
        else {
            panic!("serve");
        };
        assert_eq!(config.http.port, 9000);
        assert!(parse_args(&["todo-backend", "--port", "http"]).is_err());
        assert!(parse_args(&["todo-backend", "--db-max-connections", "0"]).is_err());
    }

    #[test]
    fn an_invalid_value_is_named_but_not_repeated() {
        let error = parse_args(&["todo-backend", "--database-url", "mysql://u:hunter2@h/db"])
            .expect_err("refused");
        let line = one_line(&error);
        assert!(line.contains("--database-url"), "{line}");
        assert!(line.contains("must start with postgres://"), "{line}");
        assert!(!line.contains("hunter2"), "{line}");
    }

    #[test]
    fn each_command_takes_only_its_own_flags() {
        assert!(parse_args(&["todo-backend", "token", "alice", "--port", "1"]).is_err());
        assert!(parse_args(&["todo-backend", "openapi", "--database-url", "x"]).is_err());
        assert!(parse_args(&["todo-backend", "migrate", "--port", "1"]).is_err());
        assert!(parse_args(&["todo-backend", "token", "alice", "--ttl", "15m"]).is_ok());
    }
}
