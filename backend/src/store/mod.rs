//! Where tasks live: one [`TaskStore`] trait, a PostgreSQL and a SQLite implementation.
//!
//! Every method takes the owner's [`UserId`] and every query filters on it, so no code path
//! can read or change another user's task: a foreign task is simply [`StoreError::NotFound`],
//! exactly like a missing one.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};

use crate::auth::UserId;
use crate::tasks::model::{CreateTask, Page, Task, TaskId, UpdateTask};

mod pg_migrations;
pub mod postgres;
pub mod sqlite;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// Storage operations on one user's tasks.
#[async_trait]
pub trait TaskStore: Send + Sync + 'static {
    /// Stores a new task owned by `owner` and returns it.
    async fn create(&self, owner: &UserId, task: CreateTask) -> Result<Task, StoreError>;

    /// The owner's tasks, newest first (`created_at` then `id`, both descending).
    async fn list(&self, owner: &UserId, page: Page) -> Result<Vec<Task>, StoreError>;

    /// One of the owner's tasks.
    async fn get(&self, owner: &UserId, id: TaskId) -> Result<Task, StoreError>;

    /// Applies the fields present in `changes`; `updated_at` moves, `created_at` never does.
    /// An empty `changes` returns the task untouched.
    async fn update(
        &self,
        owner: &UserId,
        id: TaskId,
        changes: UpdateTask,
    ) -> Result<Task, StoreError>;

    /// Deletes one of the owner's tasks. Its id is never handed out again.
    async fn delete(&self, owner: &UserId, id: TaskId) -> Result<(), StoreError>;

    /// Checks that the database answers, for `/ready`.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Applies the embedded migrations of this backend.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// Closes the pool, waiting for connections in use to be returned.
    async fn close(&self);
}

/// What can go wrong in storage, sorted by what the caller should do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such task for this owner (it may exist for someone else).
    #[error("task not found")]
    NotFound,
    /// The database cannot be reached right now or is overloaded; retrying later may work.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// Anything else: a bug, a corrupt row, a failed migration.
    #[error("database error: {0}")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        StoreError::Other(error.into())
    }
}

/// Pool settings shared by both backends.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    pub max_connections: u32,
    /// How long a request waits for a free connection before it gets a 503.
    pub acquire_timeout: Duration,
    /// PostgreSQL only: whether the server is behind a transaction-mode pooler.
    pub transaction_pooler: TransactionPooler,
}

/// Whether PostgreSQL is reached through a pooler in transaction mode (PgBouncer, Neon's
/// pooled endpoint), where a session's server connection can change between statements.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum TransactionPooler {
    /// On when the host name contains `-pooler`, as Neon's pooled endpoints do, or the port
    /// is PgBouncer's default, 6432.
    #[default]
    Auto,
    #[value(alias = "true")]
    On,
    #[value(alias = "false")]
    Off,
}

impl TransactionPooler {
    /// Resolves `Auto` for a given database host and port.
    pub fn is_on_for(self, host: &str, port: u16) -> bool {
        match self {
            TransactionPooler::Auto => host.contains("-pooler") || port == 6432,
            TransactionPooler::On => true,
            TransactionPooler::Off => false,
        }
    }
}

/// Opens the store named by `database_url`: `postgres://`/`postgresql://` or `sqlite:`.
pub async fn connect(
    database_url: &str,
    pool: PoolSettings,
) -> Result<Arc<dyn TaskStore>, StoreError> {
    match Backend::of(database_url) {
        Some(Backend::Postgres) => Ok(Arc::new(PgStore::connect(database_url, pool).await?)),
        Some(Backend::Sqlite) => Ok(Arc::new(SqliteStore::connect(database_url, pool).await?)),
        None => Err(StoreError::Other(
            "DATABASE_URL must start with postgres://, postgresql:// or sqlite:".into(),
        )),
    }
}

/// The database engines this service can store tasks in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    /// The backend a URL names, by its scheme.
    pub fn of(database_url: &str) -> Option<Backend> {
        let scheme = database_url.split(':').next()?.to_ascii_lowercase();
        match scheme.as_str() {
            "postgres" | "postgresql" => Some(Backend::Postgres),
            "sqlite" => Some(Backend::Sqlite),
            _ => None,
        }
    }
}

/// The current time at the precision both databases store (microseconds), so that a task
/// returned by `create` is equal to the same task read back later.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Sorts a driver error into "try again later" and "something is wrong". Which database
/// error codes are transient depends on the backend, so each passes its own test.
fn classify(error: sqlx::Error, transient_code: fn(&str) -> bool) -> StoreError {
    let transient = match &error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| transient_code(&code)),
        _ => false,
    };
    if transient {
        StoreError::Unavailable(error)
    } else {
        StoreError::Other(error.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_is_chosen_by_scheme() {
        assert_eq!(Backend::of("postgres://u@h/db"), Some(Backend::Postgres));
        assert_eq!(Backend::of("postgresql://h/db"), Some(Backend::Postgres));
        assert_eq!(Backend::of("POSTGRES://h/db"), Some(Backend::Postgres));
        assert_eq!(Backend::of("sqlite://data/todo.db"), Some(Backend::Sqlite));
        assert_eq!(Backend::of("sqlite::memory:"), Some(Backend::Sqlite));
        assert_eq!(Backend::of("mysql://h/db"), None);
        assert_eq!(Backend::of("data/todo.db"), None);
    }

    #[test]
    fn pool_timeouts_and_shutdowns_are_transient() {
        let never = |_: &str| false;
        assert!(matches!(
            classify(sqlx::Error::PoolTimedOut, never),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            classify(sqlx::Error::PoolClosed, never),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            classify(sqlx::Error::RowNotFound, never),
            StoreError::Other(_)
        ));
    }

    #[test]
    fn neon_pooled_hosts_turn_pooler_mode_on() {
        let neon = "ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech";
        assert!(TransactionPooler::Auto.is_on_for(neon, 5432));
        let direct = "ep-cool-darkness-123456.us-east-2.aws.neon.tech";
        assert!(!TransactionPooler::Auto.is_on_for(direct, 5432));
        assert!(
            TransactionPooler::Auto.is_on_for("10.0.0.5", 6432),
            "PgBouncer's port"
        );
        assert!(!TransactionPooler::Off.is_on_for(neon, 6432));
        assert!(TransactionPooler::On.is_on_for("127.0.0.1", 5432));
    }

    #[test]
    fn now_has_microsecond_precision() {
        assert_eq!(now().timestamp_subsec_nanos() % 1_000, 0);
    }
}
