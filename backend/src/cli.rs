//! The command line: `serve` (the default), `migrate`, `token` and `openapi`.

use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::config::Config;

/// The task API behind the Todo application.
#[derive(Debug, Parser)]
#[command(name = "todo-backend", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub config: Config,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply migrations and serve the API (the default).
    Serve,
    /// Apply the database migrations, then exit.
    Migrate,
    /// Print an HS256 token for USER_ID, signed with the configured or development secret.
    Token {
        /// The user id to put in the token's `sub` claim.
        user_id: String,
        /// How long the token is valid: a number with s, m, h or d (e.g. 90s, 15m, 1h, 7d).
        #[arg(long, default_value = "1h", value_parser = parse_ttl)]
        ttl: Duration,
    },
    /// Print the OpenAPI document as JSON.
    Openapi,
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
    Cli::try_parse().unwrap_or_else(|error| {
        use clap::error::ErrorKind;
        match error.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => error.exit(),
            _ => {
                // clap's first line names the setting and the problem; the rest is usage.
                let rendered = error.render().to_string();
                eprintln!(
                    "{}",
                    rendered
                        .lines()
                        .next()
                        .unwrap_or("error: invalid arguments")
                );
                std::process::exit(2);
            }
        }
    })
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

    #[test]
    fn no_subcommand_means_serve_with_defaults() {
        let cli = Cli::try_parse_from(["todo-backend"]).expect("parses");
        assert!(cli.command.is_none());
    }

    #[test]
    fn flags_work_after_the_subcommand() {
        let cli = Cli::try_parse_from(["todo-backend", "serve", "--port", "9000"]).expect("parses");
        assert_eq!(cli.config.port, 9000);
        assert!(Cli::try_parse_from(["todo-backend", "--port", "http"]).is_err());
        assert!(Cli::try_parse_from(["todo-backend", "--db-max-connections", "0"]).is_err());
    }
}
