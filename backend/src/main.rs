//! The `todo-backend` binary: parse the command line, set up logging, run the command.

#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::sync::Arc;

use todo_backend::auth::{Verifier, hs256};
use todo_backend::cli::{self, Command, TokenArgs};
use todo_backend::config::{DatabaseConfig, ServeConfig};
use todo_backend::domain::UserId;
use todo_backend::http::{AppState, CursorKey};
use todo_backend::store::{self, TaskStore};
use todo_backend::{app, server, telemetry};

// glibc's allocator showed up as an eighth of the request path's CPU time under load (lock
// contention between worker threads and consolidation); mimalloc's per-thread heaps avoid it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type StartupError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cli::parse();
    let log = cli.command.log();
    telemetry::init(log.log_format, log.rust_log.as_deref());
    let result = match cli.command {
        Command::Serve(config) => serve(config).await,
        Command::Migrate { database, .. } => migrate(&database).await,
        Command::Token(args) => token(args),
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

async fn serve(config: ServeConfig) -> Result<(), StartupError> {
    // Everything is validated before anything is created (the development secret, a SQLite
    // file, a connection).
    let auth = config.auth.settings()?;
    let verifier = Arc::new(Verifier::from_settings(&auth)?);
    let store = open_store(&config.database).await?;
    let address = config.http.address();
    let listener =
        server::bind(address).map_err(|error| format!("cannot listen on {address}: {error}"))?;
    let local = listener.local_addr()?;
    tracing::info!("listening on http://{local} (API docs at http://{local}/docs)");
    let cursor_key = store
        .shared_key(CursorKey::NAME)
        .await
        .map_err(|error| format!("cannot read the cursor key: {error}"))?;
    let state = AppState::new(store.clone(), verifier, CursorKey(Arc::new(cursor_key)));
    let stop = server::shutdown_after_grace(
        server::shutdown_signal(),
        state.shutdown.clone(),
        config.http.shutdown_grace(),
    );
    let router = app::router(state, &config.http.settings());
    server::serve_with(listener, router, stop, config.http.serve_options()).await?;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

async fn migrate(database: &DatabaseConfig) -> Result<(), StartupError> {
    open_store(database).await?.close().await;
    tracing::info!("migrations applied");
    Ok(())
}

/// Connects to the configured database and applies its migrations.
async fn open_store(database: &DatabaseConfig) -> Result<Arc<dyn TaskStore>, StartupError> {
    let url = &database.database_url;
    let store = store::open(url, database.pool())
        .await
        .map_err(|error| format!("cannot open the database {url}: {error}"))?;
    tracing::info!(database = %url, "database ready");
    Ok(store)
}

fn token(args: TokenArgs) -> Result<(), StartupError> {
    let user = UserId::parse(args.user_id).map_err(|error| format!("USER_ID: {error}"))?;
    let secret = args.auth.settings()?.signing_secret()?;
    println!("{}", hs256::issue(&secret, &user, args.ttl)?);
    Ok(())
}

fn openapi() -> Result<(), StartupError> {
    println!("{}", app::openapi().to_pretty_json()?);
    Ok(())
}
