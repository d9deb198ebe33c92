//! Where tasks live: one [`TaskStore`] trait, a PostgreSQL and a SQLite implementation.
//!
//! Every method takes the owner's [`UserId`] and every query filters on it, so no code path
//! can read or change another user's task: a foreign task is simply [`StoreError::NotFound`],
//! exactly like a missing one.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};

use crate::domain::{CreateTask, Page, Task, TaskId, UpdateTask, UserId};

pub mod postgres;
mod row;
pub mod sqlite;
mod url;

pub use postgres::{PgStore, TransactionPooler};
pub use sqlite::SqliteStore;
pub use url::{Backend, DatabaseUrl};

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
    #[error("database unavailable: {}", describe(.0))]
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

/// Opens the store `url` names and applies its migrations.
pub async fn open(url: &DatabaseUrl, pool: PoolSettings) -> Result<Arc<dyn TaskStore>, StoreError> {
    let store: Arc<dyn TaskStore> = match url.target() {
        url::Target::Postgres(options) => {
            Arc::new(PgStore::connect_with((**options).clone(), pool).await?)
        }
        url::Target::Sqlite { options, in_memory } => {
            Arc::new(SqliteStore::connect_with((**options).clone(), *in_memory, pool).await?)
        }
    };
    store.migrate().await?;
    Ok(store)
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

/// One line saying why the database could not be reached, for start-up errors: the cause
/// (refused, DNS, TLS, authentication, missing database) rather than the pool's "timed out".
pub fn describe(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection refused (is the server running, and on this host and port?)".into()
        }
        sqlx::Error::Io(io) => format!("cannot connect: {io}"),
        sqlx::Error::Tls(tls) => format!("TLS failed: {tls}"),
        sqlx::Error::Database(db) => match db.code() {
            Some(code) => format!("the server refused: {} (SQLSTATE {code})", db.message()),
            None => format!("the server refused: {}", db.message()),
        },
        sqlx::Error::PoolTimedOut => "timed out waiting for a connection".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn start_up_errors_name_their_cause() {
        let refused = sqlx::Error::Io(std::io::ErrorKind::ConnectionRefused.into());
        assert!(describe(&refused).contains("connection refused"));
        assert!(describe(&sqlx::Error::PoolTimedOut).contains("timed out"));
    }

    #[test]
    fn now_has_microsecond_precision() {
        assert_eq!(now().timestamp_subsec_nanos() % 1_000, 0);
    }
}
