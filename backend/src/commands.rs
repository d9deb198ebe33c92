//! What each command of the binary does; `main` only parses and dispatches.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::auth::{dev_secret, hs256};
use crate::cli::{self, HealthcheckArgs, TokenArgs};
use crate::config::{DatabaseConfig, ServeConfig};
use crate::domain::UserId;
use crate::startup::{Service, StartupError};
use crate::store::{self, TaskStore};
use crate::{app, server};

/// Serves until SIGTERM or SIGINT. A failed start takes back the development secret it
/// created: the next start, with the configuration fixed, should not find one it never used.
pub async fn serve(config: ServeConfig) -> Result<(), StartupError> {
    let secret = std::path::Path::new(dev_secret::DEV_SECRET_PATH);
    let had_secret = secret.exists();
    let result = start_and_serve(config).await;
    if result.is_err() && !had_secret {
        let _ = std::fs::remove_file(secret);
    }
    result
}

async fn start_and_serve(config: ServeConfig) -> Result<(), StartupError> {
    // Everything is validated before anything is created (the development secret, a SQLite
    // file, a connection). A setting found wrong here is reported as a bad flag is.
    // (REDIS_URL, the other setting that could be wrong, is checked while parsing.)
    let auth = match config.auth.settings() {
        Ok(auth) => auth,
        Err(problem) => cli::exit_for_setting(&problem),
    };
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "todo-backend starting");
    let store = open_store(&config.database).await?;
    let address = config.http.address();
    let listener =
        server::bind(address).map_err(|error| format!("cannot listen on {address}: {error}"))?;
    let service = Service::builder(&config, store).auth(auth).build().await?;
    let local = listener.local_addr()?;
    tracing::info!("listening on http://{local} (API docs at http://{local}/docs)");
    service.run(listener, server::shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Applies the migrations, then exits; the log names each one applied.
pub async fn migrate(database: &DatabaseConfig) -> Result<(), StartupError> {
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

/// Prints an HS256 token for the user, signed with the secret in use.
pub fn token(args: TokenArgs) -> Result<(), StartupError> {
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
pub fn healthcheck(args: &HealthcheckArgs) -> ExitCode {
    use std::io::{Read, Write};
    let host = match args.host.as_str() {
        "0.0.0.0" => "127.0.0.1",
        "::" | "[::]" => "::1",
        host => host,
    };
    let check = || -> std::io::Result<bool> {
        let timeout = Duration::from_secs(5);
        // The address `serve` binds for a host name: its first IPv4 one, else its first.
        let addresses: Vec<_> =
            std::net::ToSocketAddrs::to_socket_addrs(&(host, args.port))?.collect();
        let address = addresses
            .iter()
            .find(|address| address.is_ipv4())
            .or(addresses.first())
            .ok_or_else(|| std::io::Error::other("no address"))?;
        let mut stream = std::net::TcpStream::connect_timeout(address, timeout)?;
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

/// Prints the OpenAPI document.
pub fn openapi() -> Result<(), StartupError> {
    println!("{}", app::openapi().to_pretty_json()?);
    Ok(())
}
