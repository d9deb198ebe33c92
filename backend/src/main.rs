//! The `todo-backend` binary: parse the command line, set up logging, run the command.

#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use todo_backend::auth::dev_secret;
use todo_backend::auth::{Verifier, hs256};
use todo_backend::changes::{hub::Hub, listen};
use todo_backend::cli::{self, Command, HealthcheckArgs, TokenArgs};
use todo_backend::config::{DatabaseConfig, MetricsAddr, ServeConfig};
use todo_backend::domain::UserId;
use todo_backend::http::{AppState, CursorKey};
use todo_backend::rate_limits::Limiter;
use todo_backend::rate_limits::redis::RedisLimits;
use todo_backend::store::{self, TaskStore};
use todo_backend::telemetry::metrics::{self, Scrape};
use todo_backend::{app, maintenance, server, telemetry};

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
        Command::Serve(config) => serve_leaving_nothing_on_failure(config).await,
        Command::Migrate { database, .. } => migrate(&database).await,
        Command::Token(args) => token(args),
        Command::Openapi => openapi(),
        Command::Healthcheck(args) => return healthcheck(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            ExitCode::FAILURE
        }
    }
}

/// [`serve`], and a failed start takes back the development secret it created: the next
/// start, with the configuration fixed, should not find one it never used.
async fn serve_leaving_nothing_on_failure(config: ServeConfig) -> Result<(), StartupError> {
    let secret = std::path::Path::new(dev_secret::DEV_SECRET_PATH);
    let had_secret = secret.exists();
    let result = serve(config).await;
    if result.is_err() && !had_secret {
        let _ = std::fs::remove_file(secret);
    }
    result
}

async fn serve(config: ServeConfig) -> Result<(), StartupError> {
    // Everything is validated before anything is created (the development secret, a SQLite
    // file, a connection). A setting found wrong here is reported as a bad flag is.
    let auth = config
        .auth
        .settings()
        .unwrap_or_else(|problem| cli::exit_for_setting(&problem));
    let redis = config
        .rate_limits
        .redis()
        .unwrap_or_else(|problem| cli::exit_for_setting(&problem));
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "todo-backend starting");
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
    let serve_options = config.http.serve_options();
    let event_settings = config.events.settings(serve_options.max_connections);
    tracing::info!(
        max_connections = serve_options.max_connections,
        max_streams = event_settings.max_streams,
        max_streams_per_user = event_settings.max_per_user,
        "connection and event stream caps (streams take at most half of the connections)"
    );
    let listen = config.events.database_listen_url.as_ref();
    let events = match listen {
        Some(_) => Hub::announcing(
            store.clone(),
            event_settings,
            listen::announcements(store.clone()),
        ),
        None => Hub::new(store.clone(), event_settings),
    };
    let listening = listen
        .and_then(|url| url.postgres_options())
        .map(|options| tokio::spawn(listen::listen(options.clone(), Arc::downgrade(&events))));
    let limiter = match redis {
        Some(client) => Limiter::shared(
            config.rate_limits.settings(),
            RedisLimits::connect(client, config.rate_limits.redis_timeout()),
        ),
        None => Limiter::local(config.rate_limits.settings()),
    };
    let state = AppState::with_events(
        store.clone(),
        verifier,
        CursorKey(Arc::new(cursor_key)),
        events.clone(),
    )
    .with_limiter(Arc::new(limiter));
    let grace = server::shutdown_after_grace(
        server::shutdown_signal(),
        state.shutdown.clone(),
        config.http.shutdown_grace(),
    );
    // Event streams end when the listener closes, not when /ready starts failing: until
    // then the load balancer may still send their reconnects here.
    let stop = async move {
        grace.await;
        events.close();
    };
    let scrape = match config.http.metrics {
        true => Some(Scrape {
            handle: metrics::install()?,
            store: store.clone(),
            events: state.events.clone(),
        }),
        false => None,
    };
    let purging = maintenance::spawn(store.clone(), config.retention.trash_retention());
    let mut router = app::router(state, &config.http.settings());
    let metrics_server = match (scrape, config.http.metrics_addr) {
        (None, _) => None,
        (Some(scrape), MetricsAddr::Main) => {
            router = router.merge(metrics::router(scrape));
            None
        }
        (Some(scrape), MetricsAddr::Own(address)) => {
            let listener = server::bind(address)
                .map_err(|error| format!("cannot listen on METRICS_ADDR {address}: {error}"))?;
            tracing::info!("metrics on http://{}/metrics", listener.local_addr()?);
            let metrics = metrics::router(scrape);
            Some(tokio::spawn(async move {
                let _ = axum::serve(listener, metrics).await;
            }))
        }
    };
    server::serve_with(listener, router, stop, serve_options).await?;
    if let Some(metrics_server) = metrics_server {
        metrics_server.abort();
    }
    purging.abort();
    if let Some(listening) = listening {
        listening.abort();
    }
    // Bounded: a connection that is never given back must not keep the process from exiting.
    if tokio::time::timeout(Duration::from_secs(5), store.close())
        .await
        .is_err()
    {
        tracing::warn!("database connections still in use after 5 s; exiting anyway");
    }
    tracing::info!("stopped");
    Ok(())
}

async fn migrate(database: &DatabaseConfig) -> Result<(), StartupError> {
    open_store(database).await?.close().await;
    Ok(())
}

/// Connects to the configured database and applies its migrations. A database that does not
/// answer yet is tried again, with backoff, for up to `DB_STARTUP_TIMEOUT`.
async fn open_store(database: &DatabaseConfig) -> Result<Arc<dyn TaskStore>, StartupError> {
    let url = &database.database_url;
    let deadline = Instant::now() + Duration::from_secs(database.db_startup_timeout);
    let mut wait = Duration::from_millis(250);
    let store = loop {
        match store::open(url, database.pool()).await {
            Ok(store) => break store,
            Err(error) if store::worth_waiting_for(&error) && Instant::now() + wait < deadline => {
                tracing::warn!(
                    database = %url,
                    retry_in_ms = wait.as_millis() as u64,
                    "database not ready: {error}"
                );
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
            Err(error) => return Err(format!("cannot open the database {url}: {error}").into()),
        }
    };
    tracing::info!(database = %url, "database ready");
    Ok(store)
}

fn token(args: TokenArgs) -> Result<(), StartupError> {
    let user = UserId::parse(args.user_id)
        .unwrap_or_else(|error| cli::exit_for_setting(&format!("USER_ID: {error}")));
    let settings = args
        .auth
        .settings()
        .unwrap_or_else(|problem| cli::exit_for_setting(&problem));
    let secret = settings.signing_secret()?;
    println!("{}", hs256::issue(&secret, &user, args.ttl)?);
    Ok(())
}

/// `GET /health` on the service at `args`: exit status 0 for a 200, 1 for anything else
/// (refused, no answer within 5 s, another status).
fn healthcheck(args: &HealthcheckArgs) -> ExitCode {
    use std::io::{Read, Write};
    let host = match args.host.as_str() {
        "0.0.0.0" => "127.0.0.1",
        "::" | "[::]" => "::1",
        host => host,
    };
    let check = || -> std::io::Result<bool> {
        let timeout = Duration::from_secs(5);
        let address = std::net::ToSocketAddrs::to_socket_addrs(&(host, args.port))?
            .next()
            .ok_or_else(|| std::io::Error::other("no address"))?;
        let mut stream = std::net::TcpStream::connect_timeout(&address, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: healthcheck\r\nConnection: close\r\n\r\n")?;
        let mut status = [0u8; 12];
        stream.read_exact(&mut status)?;
        Ok(&status == b"HTTP/1.1 200")
    };
    match check() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("unhealthy: /health did not answer 200");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("unhealthy: {error}");
            ExitCode::FAILURE
        }
    }
}

fn openapi() -> Result<(), StartupError> {
    println!("{}", app::openapi().to_pretty_json()?);
    Ok(())
}
