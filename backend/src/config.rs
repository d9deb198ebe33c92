//! The service's configuration: one struct, read from flags, environment variables and `.env`.
//!
//! Every setting has a flag (`--port`) and an environment variable (`PORT`); `.env` in the
//! working directory fills in variables that are not already set. `.env.example` documents
//! each one. Secrets are kept out of `Debug` output and logs.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use axum::http::HeaderValue;
use clap::{Args, ValueEnum};

use url::Url;

use crate::auth::JwksSettings;
use crate::store::{PoolSettings, TransactionPooler};

/// Everything `serve` and the other commands read from the environment.
#[derive(Clone, Args)]
pub struct Config {
    /// Where tasks are stored: postgres://… (sslmode, sslrootcert honoured) or sqlite://PATH.
    #[arg(
        long,
        env = "DATABASE_URL",
        value_name = "DATABASE_URL",
        default_value = "sqlite://data/todo.db",
        hide_env_values = true,
        global = true
    )]
    pub database_url: String,

    /// Base URL of the Better Auth server; turns on JWKS verification of its tokens.
    #[arg(
        long,
        env = "BETTER_AUTH_URL",
        value_name = "BETTER_AUTH_URL",
        value_parser = parse_http_url,
        global = true
    )]
    pub better_auth_url: Option<Url>,

    /// Where the JWKS is published [default: ${BETTER_AUTH_URL}/api/auth/jwks].
    #[arg(
        long,
        env = "JWT_JWKS_URL",
        value_name = "JWT_JWKS_URL",
        value_parser = parse_http_url,
        global = true
    )]
    pub jwt_jwks_url: Option<Url>,

    /// The `iss` JWKS tokens must carry [default: the origin of BETTER_AUTH_URL].
    #[arg(long, env = "JWT_ISSUER", value_name = "JWT_ISSUER", global = true)]
    pub jwt_issuer: Option<String>,

    /// The `aud` JWKS tokens must carry [default: the origin of BETTER_AUTH_URL].
    #[arg(long, env = "JWT_AUDIENCE", value_name = "JWT_AUDIENCE", global = true)]
    pub jwt_audience: Option<String>,

    /// Shared secret for HS256 tokens (at least 32 bytes).
    #[arg(
        long,
        env = "BETTER_AUTH_SECRET",
        value_name = "BETTER_AUTH_SECRET",
        hide_env_values = true,
        global = true
    )]
    pub better_auth_secret: Option<String>,

    /// Clock skew allowed on a token's `exp` and `nbf`, in seconds.
    #[arg(
        long,
        env = "JWT_LEEWAY_SECONDS",
        value_name = "JWT_LEEWAY_SECONDS",
        default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(0..=600),
        global = true
    )]
    pub jwt_leeway_seconds: u64,

    /// Address to listen on.
    #[arg(
        long,
        env = "HOST",
        value_name = "HOST",
        default_value = "127.0.0.1",
        global = true
    )]
    pub host: IpAddr,

    /// Port to listen on (0 picks a free one).
    #[arg(
        long,
        env = "PORT",
        value_name = "PORT",
        default_value_t = 8000,
        global = true
    )]
    pub port: u16,

    /// Comma-separated origins allowed to call the API from a browser, or `*` for any.
    #[arg(
        long,
        env = "CORS_ALLOWED_ORIGINS",
        value_name = "CORS_ALLOWED_ORIGINS",
        value_delimiter = ',',
        value_parser = parse_origin,
        global = true
    )]
    pub cors_allowed_origins: Vec<HeaderValue>,

    /// Most database connections this instance opens.
    #[arg(
        long,
        env = "DB_MAX_CONNECTIONS",
        value_name = "DB_MAX_CONNECTIONS",
        default_value_t = 10,
        value_parser = clap::value_parser!(u32).range(1..=1000),
        global = true
    )]
    pub db_max_connections: u32,

    /// How long a request waits for a database connection before it gets a 503, in ms.
    #[arg(
        long,
        env = "DB_ACQUIRE_TIMEOUT_MS",
        value_name = "DB_ACQUIRE_TIMEOUT_MS",
        default_value_t = 2000,
        value_parser = clap::value_parser!(u64).range(1..=60_000),
        global = true
    )]
    pub db_acquire_timeout_ms: u64,

    /// Whether PostgreSQL sits behind a transaction-mode pooler (PgBouncer, Neon's `-pooler`
    /// endpoints): `auto` (on for `-pooler` hosts), `true` or `false`.
    #[arg(
        long,
        env = "DB_TRANSACTION_POOLER",
        value_name = "DB_TRANSACTION_POOLER",
        default_value = "auto",
        global = true
    )]
    pub db_transaction_pooler: TransactionPooler,

    /// Log format: human-readable `text` or one JSON object per line.
    #[arg(
        long,
        env = "LOG_FORMAT",
        value_name = "LOG_FORMAT",
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &redact_url(&self.database_url))
            .field(
                "better_auth_url",
                &self.better_auth_url.as_ref().map(Url::as_str),
            )
            .field("jwt_jwks_url", &self.jwt_jwks_url.as_ref().map(Url::as_str))
            .field("jwt_issuer", &self.jwt_issuer)
            .field("jwt_audience", &self.jwt_audience)
            .field(
                "better_auth_secret",
                &self.better_auth_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("jwt_leeway_seconds", &self.jwt_leeway_seconds)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("cors_allowed_origins", &self.cors_allowed_origins)
            .field("db_max_connections", &self.db_max_connections)
            .field("db_acquire_timeout_ms", &self.db_acquire_timeout_ms)
            .field("db_transaction_pooler", &self.db_transaction_pooler)
            .field("log_format", &self.log_format)
            .finish()
    }
}

impl Config {
    pub fn pool_settings(&self) -> PoolSettings {
        PoolSettings {
            max_connections: self.db_max_connections,
            acquire_timeout: Duration::from_millis(self.db_acquire_timeout_ms),
            transaction_pooler: self.db_transaction_pooler,
        }
    }

    pub fn jwt_leeway(&self) -> Duration {
        Duration::from_secs(self.jwt_leeway_seconds)
    }

    /// The JWKS verification settings, when `BETTER_AUTH_URL` or `JWT_JWKS_URL` is set.
    ///
    /// Better Auth signs `iss` and `aud` with the origin of its base URL unless told
    /// otherwise, so that origin is the default for both.
    pub fn jwks_settings(&self) -> Result<Option<JwksSettings>, String> {
        let base = self.better_auth_url.as_ref();
        let url = match (&self.jwt_jwks_url, base) {
            (Some(url), _) => url.clone(),
            (None, Some(base)) => {
                let jwks = format!("{}/api/auth/jwks", base.as_str().trim_end_matches('/'));
                Url::parse(&jwks).map_err(|error| format!("BETTER_AUTH_URL: {error}"))?
            }
            (None, None) => return Ok(None),
        };
        let origin = base.map(|base| base.origin().ascii_serialization());
        let issuer =
            self.jwt_issuer.clone().or_else(|| origin.clone()).ok_or(
                "JWT_ISSUER must be set when JWT_JWKS_URL is used without BETTER_AUTH_URL",
            )?;
        let audience =
            self.jwt_audience.clone().or(origin).ok_or(
                "JWT_AUDIENCE must be set when JWT_JWKS_URL is used without BETTER_AUTH_URL",
            )?;
        Ok(Some(JwksSettings::new(
            url,
            issuer,
            audience,
            self.jwt_leeway(),
        )))
    }
}

/// An absolute `http://` or `https://` URL.
fn parse_http_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw.trim()).map_err(|error| format!("not a URL: {error}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err("must be an http:// or https:// URL".into());
    }
    Ok(url)
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// An origin as browsers send it: `scheme://host[:port]`, no path, no trailing slash.
fn parse_origin(raw: &str) -> Result<HeaderValue, String> {
    let origin = raw.trim();
    let valid = origin == "*"
        || ((origin.starts_with("http://") || origin.starts_with("https://"))
            && !origin.ends_with('/')
            && origin.split("://").nth(1).is_some_and(|rest| {
                !rest.is_empty() && !rest.contains('/') && !rest.contains(char::is_whitespace)
            }));
    if !valid {
        return Err(format!(
            "{origin:?} is not an origin like https://app.example.com or http://localhost:3000"
        ));
    }
    HeaderValue::from_str(origin).map_err(|error| error.to_string())
}

/// The URL with any password replaced, for log lines.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((credentials, host)) => {
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:[redacted]@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_must_look_like_origins() {
        for ok in ["https://app.example.com", "http://localhost:3000", "*"] {
            assert!(parse_origin(ok).is_ok(), "{ok}");
        }
        for bad in [
            "app.example.com",
            "https://app.example.com/",
            "https://",
            "ftp://x",
            "https://a b",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }

    fn config(args: &[&str]) -> Config {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            config: Config,
        }
        let mut argv = vec!["test"];
        argv.extend_from_slice(args);
        Wrapper::try_parse_from(argv).expect("valid flags").config
    }

    #[test]
    fn jwks_defaults_follow_better_auth() {
        let settings = config(&["--better-auth-url", "http://localhost:3000/"])
            .jwks_settings()
            .expect("valid")
            .expect("JWKS on");
        assert_eq!(settings.url.as_str(), "http://localhost:3000/api/auth/jwks");
        assert_eq!(settings.issuer, "http://localhost:3000");
        assert_eq!(settings.audience, "http://localhost:3000");

        let custom = config(&[
            "--better-auth-url",
            "https://auth.example.com",
            "--jwt-audience",
            "https://api.example.com",
            "--jwt-jwks-url",
            "https://keys.example.com/jwks.json",
        ])
        .jwks_settings()
        .expect("valid")
        .expect("JWKS on");
        assert_eq!(settings.leeway, Duration::from_secs(60));
        assert_eq!(custom.url.as_str(), "https://keys.example.com/jwks.json");
        assert_eq!(custom.issuer, "https://auth.example.com");
        assert_eq!(custom.audience, "https://api.example.com");
    }

    #[test]
    fn jwks_needs_an_issuer_and_an_audience() {
        assert!(config(&[]).jwks_settings().expect("valid").is_none());
        let bare = config(&["--jwt-jwks-url", "https://keys.example.com/jwks"]);
        assert!(bare.jwks_settings().is_err());
    }

    #[test]
    fn only_http_urls_are_accepted() {
        for bad in [
            "localhost:3000",
            "ftp://x",
            "not a url",
            "file:///etc/passwd",
        ] {
            assert!(parse_http_url(bad).is_err(), "{bad}");
        }
        assert!(parse_http_url("https://auth.example.com").is_ok());
    }

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            redact_url("postgres://alice:s3cret@db.example.com:5432/app?sslmode=require"),
            "postgres://alice:[redacted]@db.example.com:5432/app?sslmode=require"
        );
        assert_eq!(redact_url("sqlite://data/todo.db"), "sqlite://data/todo.db");
        assert_eq!(redact_url("postgres://db/app"), "postgres://db/app");
    }
}
