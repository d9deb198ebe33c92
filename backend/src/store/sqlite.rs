//! The SQLite store: the embedded default, so the service runs with no database server.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::row::{self, TaskRow, task_columns};
use super::{PoolSettings, StoreError, TaskStore, classify, now};
use crate::domain::{CreateTask, Page, Task, TaskId, UpdateTask, UserId};

/// Timestamps are integer microseconds since the Unix epoch.
type Row = TaskRow<i64>;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a write waits for another connection's write to finish before giving up.
/// SQLite allows one writer at a time; this makes concurrent writes queue instead of fail.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Tasks in a SQLite file, through a connection pool.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database `options` name; `in_memory` for
    /// `sqlite::memory:`, which must then live on a single connection.
    pub async fn connect_with(
        options: SqliteConnectOptions,
        in_memory: bool,
        settings: PoolSettings,
    ) -> Result<Self, StoreError> {
        // A newcomer's first run has no `data/` directory yet.
        let parent = options
            .get_filename()
            .parent()
            .map(std::path::Path::to_owned);
        if let Some(parent) = parent.filter(|p| !in_memory && !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(&parent).map_err(|error| {
                StoreError::Other(
                    format!("cannot create directory {}: {error}", parent.display()).into(),
                )
            })?;
        }
        let options = options
            .create_if_missing(true)
            // WAL lets readers proceed while one connection writes.
            .journal_mode(SqliteJournalMode::Wal)
            // Safe with WAL: a crash can lose the last commits but never corrupts the file.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        // Each in-memory connection would be its own empty database: use exactly one.
        let max_connections = if in_memory {
            1
        } else {
            settings.max_connections
        };
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(options)
            .await
            .map_err(db_error)?;
        Ok(SqliteStore { pool })
    }
}

/// SQLite result codes that mean "busy, try again": the busy timeout ran out.
fn transient(code: &str) -> bool {
    // sqlx reports extended result codes; the primary code is the low byte.
    // 5 = SQLITE_BUSY, 6 = SQLITE_LOCKED.
    code.parse::<i32>()
        .is_ok_and(|code| matches!(code & 0xff, 5 | 6))
}

fn db_error(error: sqlx::Error) -> StoreError {
    classify(error, transient)
}

fn to_micros(time: chrono::DateTime<chrono::Utc>) -> i64 {
    time.timestamp_micros()
}

#[async_trait]
impl TaskStore for SqliteStore {
    async fn create(&self, owner: &UserId, task: CreateTask) -> Result<Task, StoreError> {
        let now = to_micros(now());
        let row: Row = sqlx::query_as(concat!(
            "insert into tasks (user_id, title, description, status, created_at, updated_at)
             values (?1, ?2, ?3, ?4, ?5, ?5)
             returning ",
            task_columns!()
        ))
        .bind(owner.as_str())
        .bind(task.title.as_str())
        .bind(task.description.as_ref().map(|d| d.as_str()))
        .bind(task.status.unwrap_or_default().as_str())
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(db_error)?;
        row.try_into()
    }

    async fn list(&self, owner: &UserId, page: Page) -> Result<Vec<Task>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(concat!(
            "select ",
            task_columns!(),
            " from tasks
             where user_id = ?1
             order by created_at desc, id desc
             limit ?2 offset ?3"
        ))
        .bind(owner.as_str())
        .bind(i64::from(page.limit))
        .bind(page.offset)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        row::all(rows)
    }

    async fn get(&self, owner: &UserId, id: TaskId) -> Result<Task, StoreError> {
        let row: Option<Row> = sqlx::query_as(concat!(
            "select ",
            task_columns!(),
            " from tasks
             where user_id = ?1 and id = ?2"
        ))
        .bind(owner.as_str())
        .bind(id.get())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        row::found(row)
    }

    async fn update(
        &self,
        owner: &UserId,
        id: TaskId,
        changes: UpdateTask,
    ) -> Result<Task, StoreError> {
        if changes.is_empty() {
            return self.get(owner, id).await;
        }
        // max(...) keeps updated_at strictly increasing, as in the PostgreSQL store.
        let row: Option<Row> = sqlx::query_as(concat!(
            "update tasks set
                title = coalesce(?3, title),
                description = case when ?4 then ?5 else description end,
                status = coalesce(?6, status),
                updated_at = max(?7, updated_at + 1)
             where user_id = ?1 and id = ?2
             returning ",
            task_columns!()
        ))
        .bind(owner.as_str())
        .bind(id.get())
        .bind(changes.title.as_ref().map(|t| t.as_str()))
        .bind(changes.description.is_some())
        .bind(
            changes
                .description
                .as_ref()
                .and_then(|d| d.as_ref().map(|d| d.as_str())),
        )
        .bind(changes.status.map(|s| s.as_str()))
        .bind(to_micros(now()))
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        row::found(row)
    }

    async fn delete(&self, owner: &UserId, id: TaskId) -> Result<(), StoreError> {
        let result = sqlx::query("delete from tasks where user_id = ?1 and id = ?2")
            .bind(owner.as_str())
            .bind(id.get())
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        match result.rows_affected() {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("select 1")
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_and_locked_are_transient_in_all_their_extended_forms() {
        for code in ["5", "261", "517", "773", "6", "262"] {
            assert!(transient(code), "{code}");
        }
        for code in ["19", "275", "1", "2067"] {
            assert!(!transient(code), "{code}");
        }
    }
}
