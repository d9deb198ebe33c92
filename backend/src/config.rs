//! The service's configuration, read from flags, environment variables and `.env`.
//!
//! Every setting has a flag (`--port`) and an environment variable (`PORT`); `.env` in the
//! working directory fills in variables that are not already set. `.env.example` documents
//! each one. Each command takes only the groups it uses, and every value is checked while
//! the command line is parsed, before anything is written. Secrets never show in `Debug`.
//!
//! A bare `env` names the variable after the field in SCREAMING_SNAKE_CASE, which is also the
//! value's placeholder in `--help`: `db_max_connections` is `DB_MAX_CONNECTIONS`. Only a
//! variable named otherwise than its field needs `env = "..."`.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use axum::http::HeaderValue;
use clap::Args;
use url::Url;

use crate::auth::hs256::HmacSecret;
use crate::auth::{AuthSettings, JwksSettings};
use crate::http::policy::HttpSettings;
use crate::live::hub::EventSettings;
use crate::rate_limits::RateLimitSettings;
use crate::rate_limits::client::{Cidr, TrustedProxies};
use crate::rate_limits::gcra::Rate;
use crate::server::ServeOptions;
use crate::store::{DatabaseUrl, PoolSettings, TransactionPooler};
use crate::telemetry::{self, LogFormat};

/// Everything `serve` reads.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    #[command(flatten)]
    pub database: DatabaseConfig,
    #[command(flatten)]
    pub auth: AuthConfig,
    #[command(flatten)]
    pub http: HttpConfig,
    #[command(flatten)]
    pub retention: RetentionConfig,
    #[command(flatten)]
    pub events: EventsConfig,
    #[command(flatten)]
    pub rate_limits: RateLimitConfig,
    #[command(flatten)]
    pub log: LogConfig,
}

impl ServeConfig {
    /// The configuration that `args` (flags as `serve` takes them) give, every other setting
    /// from the environment or at its default: how a test assembles the service as
    /// production does, with the few settings it needs.
    pub fn from_args(args: &[&str]) -> Result<ServeConfig, clap::Error> {
        use clap::Parser;
        #[derive(Parser)]
        struct Serve {
            #[command(flatten)]
            config: ServeConfig,
        }
        let argv = std::iter::once("serve").chain(args.iter().copied());
        Serve::try_parse_from(argv).map(|serve| serve.config)
    }
}

/// Rate limits and where their counts live.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Rate limits")]
pub struct RateLimitConfig {
    /// Requests a minute one user may make, on average (0: no limit).
    #[arg(
        long,
        env,
        default_value_t = 600,
        value_parser = clap::value_parser!(u32).range(0..=1_000_000)
    )]
    pub rate_limit_per_minute: u32,

    /// How many requests a user may make at once, after a quiet spell.
    #[arg(
        long,
        env,
        default_value_t = 100,
        value_parser = clap::value_parser!(u32).range(1..=1_000_000)
    )]
    pub rate_limit_burst: u32,

    /// Requests a minute that fail authentication, per client address (0: no limit); a burst
    /// of a sixth of it.
    #[arg(
        long,
        env,
        default_value_t = 60,
        value_parser = clap::value_parser!(u32).range(0..=1_000_000)
    )]
    pub auth_failures_per_minute: u32,

    /// Redis to keep the counts in, shared by every instance (redis://…); unset: in process.
    #[arg(long, env, hide_env_values = true, value_parser = parse_redis_url)]
    pub redis_url: Option<String>,

    /// How long a request waits for Redis before it goes through unlimited, in ms.
    #[arg(
        long,
        env,
        default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..=10_000)
    )]
    pub redis_timeout_ms: u64,

    /// Comma-separated proxies (addresses or CIDR blocks) whose X-Forwarded-For is believed.
    #[arg(long, env, value_delimiter = ',', value_parser = clap::value_parser!(Cidr))]
    pub trusted_proxies: Vec<Cidr>,
}

impl RateLimitConfig {
    pub fn settings(&self) -> RateLimitSettings {
        RateLimitSettings {
            per_user: Rate::per_minute(self.rate_limit_per_minute, self.rate_limit_burst),
            per_address: Rate::per_minute(
                self.auth_failures_per_minute,
                (self.auth_failures_per_minute / 6).max(1),
            ),
            trusted_proxies: TrustedProxies(self.trusted_proxies.clone()),
        }
    }

    /// The Redis client `REDIS_URL` names, checked (not connected) here.
    pub fn redis(&self) -> Result<Option<redis::Client>, String> {
        self.redis_url
            .as_deref()
            .map(|url| redis::Client::open(url).map_err(|error| format!("REDIS_URL: {error}")))
            .transpose()
    }

    pub fn redis_timeout(&self) -> Duration {
        Duration::from_millis(self.redis_timeout_ms)
    }
}

/// Live event streams (`GET /api/tasks/events`).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Live updates")]
pub struct EventsConfig {
    /// How often, in milliseconds, this instance reads the change counters of the users it
    /// streams to (one query for all of them), to hear of writes made through other instances.
    #[arg(
        long,
        env,
        default_value_t = 250,
        value_parser = clap::value_parser!(u64).range(10..=60_000)
    )]
    pub events_poll_ms: u64,

    /// How often, in milliseconds, an idle event stream sends a comment, so that proxies and
    /// load balancers with an idle timeout keep it open.
    #[arg(
        long,
        env,
        default_value_t = 15_000,
        value_parser = clap::value_parser!(u64).range(100..=300_000)
    )]
    pub events_heartbeat_ms: u64,

    /// Most open event streams per user on this instance; past it, 429.
    #[arg(
        long,
        env,
        default_value_t = 10,
        value_parser = clap::value_parser!(u32).range(1..=10_000)
    )]
    pub events_max_per_user: u32,

    /// Most open event streams on this instance; past it, 503. Never more than half of the
    /// connection cap (`HTTP_MAX_CONNECTIONS`), so that streams cannot take the connections
    /// ordinary requests need.
    #[arg(
        long,
        env,
        default_value_t = 10_000,
        value_parser = clap::value_parser!(u32).range(1..=1_000_000)
    )]
    pub events_max_streams: u32,

    /// A direct PostgreSQL connection (not through a transaction pooler) to `LISTEN` on, so
    /// that writes through other instances arrive sooner than the next poll.
    #[arg(long, env, hide_env_values = true, value_parser = parse_listen_url)]
    pub database_listen_url: Option<DatabaseUrl>,
}

impl EventsConfig {
    /// The stream settings for an instance that holds at most `max_connections` client
    /// connections. A stream is a request that never ends, so the connection cap never closes
    /// its connection: streams may take at most half of the connections, and the other half
    /// stays for ordinary requests (and `/health`) whatever the streams do.
    pub fn settings(&self, max_connections: usize) -> EventSettings {
        EventSettings {
            poll_interval: Duration::from_millis(self.events_poll_ms),
            max_per_user: self.events_max_per_user as usize,
            max_streams: (self.events_max_streams as usize).min(stream_share(max_connections)),
            heartbeat: Duration::from_millis(self.events_heartbeat_ms),
        }
    }
}

/// The most connections that event streams may hold, of `max_connections`.
pub fn stream_share(max_connections: usize) -> usize {
    max_connections / 2
}

/// An IP address, or a host name resolved now (its first IPv4 address, else its first).
fn parse_host(raw: &str) -> Result<IpAddr, String> {
    use std::net::ToSocketAddrs;
    if let Ok(ip) = raw.parse() {
        return Ok(ip);
    }
    let unknown = || {
        format!(
            "{raw:?} is neither an IP address nor a host name this machine resolves \
             (write e.g. 127.0.0.1, 0.0.0.0 or localhost)"
        )
    };
    let addresses: Vec<SocketAddr> = (raw, 0).to_socket_addrs().map_err(|_| unknown())?.collect();
    addresses
        .iter()
        .find(|address| address.is_ipv4())
        .or(addresses.first())
        .map(SocketAddr::ip)
        .ok_or_else(unknown)
}

/// A Redis URL the client accepts, checked (not connected) while the command line is parsed.
fn parse_redis_url(raw: &str) -> Result<String, String> {
    let scheme = raw.split_once("://").map_or("", |(scheme, _)| scheme);
    if scheme == "rediss" {
        // The client is built without TLS; a TLS Redis is reached through a local proxy.
        return Err(
            "rediss:// (TLS) is not supported: use redis:// (e.g. redis://127.0.0.1:6379/)".into(),
        );
    }
    if !matches!(scheme, "redis" | "redis+unix" | "unix") {
        return Err("must start with redis:// (e.g. redis://127.0.0.1:6379/)".into());
    }
    redis::Client::open(raw)
        .map(|_| raw.to_owned())
        .map_err(|error| format!("not a Redis URL: {}", error.detail().unwrap_or("invalid")))
}

fn parse_listen_url(raw: &str) -> Result<DatabaseUrl, String> {
    let url: DatabaseUrl = raw.parse()?;
    match url.postgres_options() {
        Some(_) => Ok(url),
        None => Err("must be a postgres:// URL".into()),
    }
}

/// How long deleted things are kept.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Retention")]
pub struct RetentionConfig {
    /// How many days a deleted task stays in the trash, where it can be restored, before it
    /// is purged for good.
    #[arg(long, env, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub trash_retention_days: u32,
}

impl RetentionConfig {
    pub fn trash_retention(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(self.trash_retention_days) * 24 * 60 * 60)
    }
}

/// Where tasks are stored, and the pool in front of the database.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Database")]
pub struct DatabaseConfig {
    /// Where tasks are stored: postgres://… (sslmode, sslrootcert honoured) or sqlite://PATH.
    #[arg(
        long,
        env,
        default_value = "sqlite://data/todo.db",
        hide_env_values = true
    )]
    pub database_url: DatabaseUrl,

    /// At start-up, how long to keep trying a database that does not answer yet (still
    /// booting, as under compose or Kubernetes), in seconds; 0 tries once.
    #[arg(long, env, default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub db_startup_timeout: u64,

    /// Most database connections this instance opens.
    #[arg(long, env, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub db_max_connections: u32,

    /// How long a request waits for a database connection before it gets a 503, in ms.
    #[arg(
        long,
        env,
        default_value_t = 2000,
        value_parser = clap::value_parser!(u64).range(1..=60_000)
    )]
    pub db_acquire_timeout_ms: u64,

    /// Whether PostgreSQL sits behind a transaction-mode pooler (PgBouncer, Neon's `-pooler`
    /// endpoints): `auto` (on for `-pooler` hosts and port 6432), `true` or `false`.
    #[arg(long, env, default_value = "auto")]
    pub db_transaction_pooler: TransactionPooler,
}

impl DatabaseConfig {
    pub fn pool(&self) -> PoolSettings {
        PoolSettings {
            max_connections: self.db_max_connections,
            acquire_timeout: Duration::from_millis(self.db_acquire_timeout_ms),
            transaction_pooler: self.db_transaction_pooler,
        }
    }
}

/// How bearer tokens are verified.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Authentication")]
pub struct AuthConfig {
    /// Base URL of the Better Auth server; turns on JWKS verification of its tokens.
    #[arg(long, env, value_parser = parse_http_url)]
    pub better_auth_url: Option<Url>,

    /// Where the JWKS is published [default: ${BETTER_AUTH_URL}/api/auth/jwks].
    #[arg(long, env, value_parser = parse_http_url)]
    pub jwt_jwks_url: Option<Url>,

    /// The `iss` JWKS tokens must carry [default: the origin of BETTER_AUTH_URL].
    #[arg(long, env)]
    pub jwt_issuer: Option<String>,

    /// The `aud` JWKS tokens must carry [default: the origin of BETTER_AUTH_URL].
    #[arg(long, env)]
    pub jwt_audience: Option<String>,

    /// Shared secret for HS256 tokens (at least 32 bytes); a value of its own, not Better
    /// Auth's master secret.
    #[arg(long, env, hide_env_values = true)]
    pub jwt_secret: Option<Secret>,

    /// The older name of JWT_SECRET, still honoured; JWT_SECRET wins when both are set.
    #[arg(long, env, hide_env_values = true)]
    pub better_auth_secret: Option<Secret>,

    /// Clock skew allowed on a token's `exp` and `nbf`, in seconds.
    #[arg(long, env, default_value_t = 60, value_parser = clap::value_parser!(u64).range(0..=600))]
    pub jwt_leeway_seconds: u64,
}

impl AuthConfig {
    /// The validated authentication settings. Better Auth signs `iss` and `aud` with the
    /// origin of its base URL unless told otherwise, so that origin is the default for both.
    pub fn settings(&self) -> Result<AuthSettings, String> {
        let leeway = Duration::from_secs(self.jwt_leeway_seconds);
        let secret = match (&self.jwt_secret, &self.better_auth_secret) {
            (Some(secret), other) => {
                if other.is_some() {
                    tracing::info!(
                        "JWT_SECRET and BETTER_AUTH_SECRET are both set: using JWT_SECRET"
                    );
                }
                Some(("JWT_SECRET", secret))
            }
            (None, Some(secret)) => Some(("BETTER_AUTH_SECRET", secret)),
            (None, None) => None,
        };
        let secret = secret
            .map(|(name, secret)| {
                HmacSecret::new(secret.0.as_bytes()).map_err(|error| format!("{name} {error}"))
            })
            .transpose()?;
        Ok(AuthSettings::new(secret, self.jwks(leeway)?, leeway))
    }

    fn jwks(&self, leeway: Duration) -> Result<Option<JwksSettings>, String> {
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
        Ok(Some(JwksSettings::new(url, issuer, audience, leeway)))
    }
}

/// Where and how the service listens.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "HTTP")]
pub struct HttpConfig {
    /// Address to listen on: an IP address (0.0.0.0 for every interface) or a host name
    /// such as `localhost`.
    #[arg(long, env, default_value = "127.0.0.1", value_parser = parse_host)]
    pub host: IpAddr,

    /// Port to listen on (0 picks a free one).
    #[arg(long, env, default_value_t = 8000)]
    pub port: u16,

    /// Comma-separated origins allowed to call the API from a browser, or `*` for any.
    #[arg(long, env, value_delimiter = ',', value_parser = parse_origin)]
    pub cors_allowed_origins: Vec<HeaderValue>,

    /// On SIGTERM, how long `/ready` fails while requests are still served, so that a load
    /// balancer stops sending traffic before the listener closes, in seconds.
    #[arg(long, env, default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=300))]
    pub shutdown_grace_seconds: u64,

    /// How long a new connection may take to send its first complete request head, in
    /// seconds.
    #[arg(long, env, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub http_header_timeout_seconds: u64,

    /// How long a connection may sit idle between requests (or trickle a later request's
    /// head) before it is closed, in seconds.
    #[arg(long, env, default_value_t = 75, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub http_idle_timeout_seconds: u64,

    /// Most open client connections; past it the longest-idle ones are closed first
    /// [default: what the open-file limit leaves room for].
    #[arg(long, env, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub http_max_connections: Option<u32>,

    /// Record and serve Prometheus metrics (`true` or `false`).
    #[arg(long, env, default_value_t = true, action = clap::ArgAction::Set)]
    pub metrics: bool,

    /// Where `/metrics` is served: an address of its own (loopback by default, so that it is
    /// never public by accident), or `main` for the main port, where anyone who reaches the
    /// API can read it.
    #[arg(long, env, default_value = "127.0.0.1:9464")]
    pub metrics_addr: MetricsAddr,
}

/// Where `/metrics` is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsAddr {
    /// On the main port, next to the API.
    Main,
    /// On a listener of its own.
    Own(SocketAddr),
}

impl FromStr for MetricsAddr {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        if raw == "main" {
            return Ok(MetricsAddr::Main);
        }
        raw.parse().map(MetricsAddr::Own).map_err(|_| {
            format!("{raw:?} is neither an IP address with a port (127.0.0.1:9464) nor `main`")
        })
    }
}

impl HttpConfig {
    pub fn address(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }

    pub fn settings(&self) -> HttpSettings {
        HttpSettings {
            cors_allowed_origins: self.cors_allowed_origins.clone(),
        }
    }

    pub fn serve_options(&self) -> ServeOptions {
        let defaults = ServeOptions::default();
        ServeOptions {
            header_timeout: Duration::from_secs(self.http_header_timeout_seconds),
            idle_timeout: Duration::from_secs(self.http_idle_timeout_seconds),
            max_connections: self
                .http_max_connections
                .map_or(defaults.max_connections, |max| max as usize),
            ..defaults
        }
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_seconds)
    }
}

/// How the service logs.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Logging")]
pub struct LogConfig {
    /// Log format: human-readable `text` or one JSON object per line.
    #[arg(long, env, default_value = "text", value_parser = parse_log_format)]
    pub log_format: LogFormat,

    /// Which log lines to keep, e.g. `info` or `todo_backend=debug,sqlx=warn` [default: info].
    #[arg(long = "log", env, value_parser = telemetry::parse_filter)]
    pub rust_log: Option<String>,
}

/// A secret value whose `Debug` never shows it.
#[derive(Clone)]
pub struct Secret(String);

impl FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Ok(Secret(raw.to_owned()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
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

fn parse_log_format(raw: &str) -> Result<LogFormat, String> {
    match raw {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err(format!("{raw:?} is not one of text, json")),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::SharedSecret;

    #[test]
    fn hosts_may_be_names_and_redis_urls_must_be_redis() {
        assert_eq!(parse_host("0.0.0.0"), Ok(IpAddr::from([0, 0, 0, 0])));
        assert!(parse_host("localhost").is_ok_and(|ip| ip.is_loopback()));
        assert!(parse_host("no such host!").is_err());
        assert!(parse_redis_url("redis://127.0.0.1:6379/").is_ok());
        assert!(parse_redis_url("redis://cache.example.com:6380/0").is_ok());
        for bad in [
            "http://127.0.0.1:6379",
            "127.0.0.1:6379",
            "redis//x",
            "rediss://a/0",
        ] {
            let error = parse_redis_url(bad).expect_err(bad);
            assert!(error.contains("redis://"), "{bad}: {error}");
        }
        assert_eq!(
            "main".parse::<MetricsAddr>(),
            Ok(MetricsAddr::Main),
            "the main port, by name"
        );
        assert!("localhost:9464".parse::<MetricsAddr>().is_err());
    }

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

    fn auth(args: &[&str]) -> AuthConfig {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            auth: AuthConfig,
        }
        let mut argv = vec!["test"];
        argv.extend_from_slice(args);
        Wrapper::try_parse_from(argv).expect("valid flags").auth
    }

    #[test]
    fn jwks_defaults_follow_better_auth() {
        let settings = auth(&["--better-auth-url", "http://localhost:3000/"])
            .settings()
            .expect("valid");
        let jwks = settings.jwks.expect("JWKS on");
        assert_eq!(jwks.url.as_str(), "http://localhost:3000/api/auth/jwks");
        assert_eq!(jwks.issuer, "http://localhost:3000");
        assert_eq!(jwks.audience, "http://localhost:3000");
        assert_eq!(jwks.leeway, Duration::from_secs(60));

        let custom = auth(&[
            "--better-auth-url",
            "https://auth.example.com",
            "--jwt-audience",
            "https://api.example.com",
            "--jwt-jwks-url",
            "https://keys.example.com/jwks.json",
        ])
        .settings()
        .expect("valid")
        .jwks
        .expect("JWKS on");
        assert_eq!(custom.url.as_str(), "https://keys.example.com/jwks.json");
        assert_eq!(custom.issuer, "https://auth.example.com");
        assert_eq!(custom.audience, "https://api.example.com");
    }

    #[test]
    fn jwks_needs_an_issuer_and_an_audience() {
        assert!(auth(&[]).settings().expect("valid").jwks.is_none());
        let bare = auth(&["--jwt-jwks-url", "https://keys.example.com/jwks"]);
        assert!(bare.settings().is_err());
    }

    #[tokio::test]
    async fn jwt_secret_wins_over_the_older_name() {
        use crate::auth::{Verifier, hs256};
        use crate::domain::UserId;
        let long = |c: char| c.to_string().repeat(32);
        let both = auth(&[
            "--jwt-secret",
            &long('j'),
            "--better-auth-secret",
            &long('b'),
        ]);
        let SharedSecret::Configured(chosen) = both.settings().expect("valid").shared_secret else {
            panic!("a configured secret");
        };
        let user = UserId::parse("alice").expect("valid");
        let token = hs256::issue(&chosen, &user, Duration::from_secs(60)).expect("signs");
        let check = |c: char| {
            let secret = HmacSecret::new(long(c)).expect("long enough");
            Verifier::hs256(&secret, Duration::ZERO)
        };
        assert!(
            check('j').verify(&token).await.is_ok(),
            "signed with JWT_SECRET"
        );
        assert!(check('b').verify(&token).await.is_err());
        assert!(
            auth(&["--better-auth-secret", &long('b')])
                .settings()
                .is_ok()
        );
        let short = auth(&["--jwt-secret", "short"]).settings();
        assert!(short.expect_err("too short").starts_with("JWT_SECRET"));
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let config = auth(&["--jwt-secret", "correct-horse-battery-staple-0123456789"]);
        assert!(!format!("{config:?}").contains("horse"));
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
}
