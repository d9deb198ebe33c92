//! The `todo-backend` binary: parse the command line, set up logging, run the command.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use todo_backend::cli::{self, Command};
use todo_backend::{commands, telemetry};

// glibc's allocator showed up as an eighth of the request path's CPU time under load (lock
// contention between worker threads and consolidation); mimalloc's per-thread heaps avoid it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cli::parse();
    let log = cli.command.log();
    telemetry::init(log.log_format, log.rust_log.as_deref());
    let result = match cli.command {
        Command::Serve(config) => commands::serve(config).await,
        Command::Migrate { database, .. } => commands::migrate(&database).await,
        Command::Token(args) => commands::token(args),
        Command::Openapi => commands::openapi(),
        Command::Healthcheck(args) => return commands::healthcheck(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            ExitCode::FAILURE
        }
    }
}
