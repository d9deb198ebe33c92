//! The `todo-backend` binary: parse the command line, set up logging, run the command.

#![forbid(unsafe_code)]

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use todo_backend::app::{self, AppState, HttpSettings, ShutdownFlag};
use todo_backend::auth::{UserId, Verifier, dev_secret, hs256};
use todo_backend::cli::{self, Command};
use todo_backend::config::{Config, redact_url};
use todo_backend::store::{self, TaskStore};
use todo_backend::{server, telemetry};

// glibc's allocator showed up as an eighth of the request path's CPU time under load (lock
// contention between worker threads and consolidation); mimalloc's per-thread heaps avoid it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type StartupError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cli::parse();
    telemetry::init(cli.config.log_format);
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(&cli.config).await,
        Command::Migrate => migrate(&cli.config).await,
        Command::Token { user_id, ttl } => token(&cli.config, user_id, ttl),
        Command::Openapi => openapi(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: &Config) -> Result<(), StartupError> {
    let verifier = Arc::new(verifier(config)?);
    let store = open_store(config).await?;
    let listener = server::bind(std::net::SocketAddr::new(config.host, config.port))
        .map_err(|error| format!("cannot listen on {}:{}: {error}", config.host, config.port))?;
    let local = listener.local_addr()?;
    tracing::info!("listening on http://{local} (API docs at http://{local}/docs)");
    let shutdown = ShutdownFlag::default();
    let state = AppState {
        store: store.clone(),
        verifier,
        shutdown: shutdown.clone(),
    };
    let settings = HttpSettings {
        cors_allowed_origins: config.cors_allowed_origins.clone(),
    };
    let signalled = async move {
        server::shutdown_signal().await;
        shutdown.raise();
    };
    server::serve(listener, app::router(state, &settings), signalled).await?;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

async fn migrate(config: &Config) -> Result<(), StartupError> {
    let store = open_store(config).await?;
    store.close().await;
    tracing::info!("migrations applied");
    Ok(())
}

/// Connects to the configured database and applies its migrations.
async fn open_store(config: &Config) -> Result<Arc<dyn TaskStore>, StartupError> {
    let url = redact_url(&config.database_url);
    let store = store::connect(&config.database_url, config.pool_settings())
        .await
        .map_err(|error| format!("cannot open the database {url}: {error}"))?;
    store
        .migrate()
        .await
        .map_err(|error| format!("cannot migrate the database {url}: {error}"))?;
    tracing::info!(database = %url, "database ready");
    Ok(store)
}

fn token(config: &Config, user_id: String, ttl: std::time::Duration) -> Result<(), StartupError> {
    let user = UserId::parse(user_id).map_err(|error| format!("USER_ID: {error}"))?;
    let token = hs256::issue(&shared_secret(config)?, &user, ttl)?;
    println!("{token}");
    Ok(())
}

fn openapi() -> Result<(), StartupError> {
    println!("{}", app::openapi().to_pretty_json()?);
    Ok(())
}

/// HS256 with the shared secret, JWKS with Better Auth's keys, or both; with neither
/// configured, HS256 with the development secret.
fn verifier(config: &Config) -> Result<Verifier, StartupError> {
    let jwks = config.jwks_settings()?;
    let secret = match (&config.better_auth_secret, &jwks) {
        (None, Some(_)) => None,
        _ => Some(shared_secret(config)?),
    };
    if let Some(jwks) = &jwks {
        tracing::info!(
            jwks = %jwks.url, issuer = %jwks.issuer, audience = %jwks.audience,
            "verifying Better Auth tokens against its JWKS"
        );
    }
    let hs256 = secret.as_ref().map(|secret| (secret, config.jwt_leeway()));
    Ok(Verifier::new(hs256, jwks)?)
}

/// `BETTER_AUTH_SECRET` when set; else, unless JWKS is configured, the development secret.
fn shared_secret(config: &Config) -> Result<hs256::HmacSecret, StartupError> {
    if let Some(secret) = &config.better_auth_secret {
        return hs256::HmacSecret::new(secret.as_bytes())
            .map_err(|error| format!("BETTER_AUTH_SECRET {error}").into());
    }
    if config.jwks_settings()?.is_some() {
        return Err(
            "`token` signs HS256 tokens and needs BETTER_AUTH_SECRET; with only \
                    BETTER_AUTH_URL set, tokens come from Better Auth"
                .into(),
        );
    }
    let path = Path::new(dev_secret::DEV_SECRET_PATH);
    let (secret, created) = dev_secret::load_or_create(path).map_err(|error| {
        format!(
            "cannot use the development secret {}: {error}",
            path.display()
        )
    })?;
    tracing::warn!(
        "no BETTER_AUTH_SECRET set: using the development secret in {} ({}); \
         get a token with `todo-backend token alice`. Tokens from a real frontend will not verify.",
        path.display(),
        if created { "created now" } else { "existing" },
    );
    Ok(secret)
}
