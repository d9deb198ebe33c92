//! The PostgreSQL store: production (Neon or any PostgreSQL 13+).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};

use super::row::{self, TaskRow, task_columns};
use super::{PoolSettings, StoreError, TaskStore, classify, now};
use crate::domain::{CreateTask, Page, Task, TaskId, UpdateTask, UserId};

mod pooler;

pub use pooler::TransactionPooler;

type Row = TaskRow<DateTime<Utc>>;

/// Tasks in PostgreSQL, through a connection pool.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Behind a transaction-mode pooler: no named prepared statements, and every query in a
    /// transaction of its own (see [`PgStore::run`]).
    transaction_pooler: bool,
}

impl PgStore {
    /// Connects with `options` (from a [`super::DatabaseUrl`], or made by a test). One direct
    /// connection is tried first, so that a start-up failure names its cause instead of the
    /// pool's "timed out".
    pub async fn connect_with(
        options: PgConnectOptions,
        settings: PoolSettings,
    ) -> Result<Self, StoreError> {
        let transaction_pooler = settings
            .transaction_pooler
            .is_on_for(options.get_host(), options.get_port());
        let options = if transaction_pooler {
            // Named statements live on one server connection; the pooler may give the next
            // transaction another one, where the name is unknown or taken. And PgBouncer
            // refuses start-up parameters it does not know, such as extra_float_digits.
            options.statement_cache_capacity(0).extra_float_digits(None)
        } else {
            options
        };
        PgConnection::connect_with(&options)
            .await
            .map_err(db_error)?
            .close()
            .await
            .map_err(db_error)?;
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            // sqlx already pings every connection when it goes back to the pool; pinging it
            // again when it is taken out would add a round trip to every request. A connection that
            // dies while idle fails one query with a 503 and is then replaced.
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(|error| classify(error, transient))?;
        Ok(PgStore {
            pool,
            transaction_pooler,
        })
    }

    /// Runs `work` on one pooled connection, telling it whether statements may be prepared
    /// once and reused (`persistent`).
    ///
    /// Behind a transaction-mode pooler, sqlx's extended-protocol round trips (parse, then
    /// bind and execute) may each reach a different server connection unless they are inside
    /// a transaction, so there each call runs in one, with unnamed statements only. Outside a
    /// pooler, neither costs anything.
    async fn run<T>(
        &self,
        work: impl AsyncFnOnce(&mut PgConnection, bool) -> Result<T, sqlx::Error>,
    ) -> Result<T, StoreError> {
        if self.transaction_pooler {
            let mut transaction = self.pool.begin().await.map_err(db_error)?;
            let value = work(&mut transaction, false).await.map_err(db_error)?;
            transaction.commit().await.map_err(db_error)?;
            Ok(value)
        } else {
            let mut connection = self.pool.acquire().await.map_err(db_error)?;
            work(&mut connection, true).await.map_err(db_error)
        }
    }
}

/// PostgreSQL error codes that mean "the server cannot serve you right now".
fn transient(code: &str) -> bool {
    // 08: connection exceptions; 53: insufficient resources (e.g. too many connections);
    // 57P01-57P04: the server is shutting down, not yet accepting connections, or the
    // database was dropped; 55000 and 3D000: the database does not accept connections now
    // (`allow_connections false`) or is being renamed.
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(
            code,
            "57P01" | "57P02" | "57P03" | "57P04" | "55000" | "3D000"
        )
}

fn db_error(error: sqlx::Error) -> StoreError {
    classify(error, transient)
}

#[async_trait]
impl TaskStore for PgStore {
    async fn create(&self, owner: &UserId, task: CreateTask) -> Result<Task, StoreError> {
        let now = now();
        let row: Row = self
            .run(async |conn, persistent| {
                sqlx::query_as(concat!(
"insert into tasks (user_id, title, description, status, created_at, updated_at)
                     values ($1, $2, $3, $4, $5, $5)
                     returning ",
task_columns!(),
""
))
                .persistent(persistent)
                .bind(owner.as_str())
                .bind(task.title.as_str())
                .bind(task.description.as_ref().map(|d| d.as_str()))
                .bind(task.status.unwrap_or_default().as_str())
                .bind(now)
                .fetch_one(conn)
                .await
            })
            .await?;
        row.try_into()
    }

    async fn list(&self, owner: &UserId, page: Page) -> Result<Vec<Task>, StoreError> {
        let rows: Vec<Row> = self
            .run(async |conn, persistent| {
                sqlx::query_as(concat!(
                    "select ",
                    task_columns!(),
                    " from tasks
                     where user_id = $1
                     order by created_at desc, id desc
                     limit $2 offset $3"
                ))
                .persistent(persistent)
                .bind(owner.as_str())
                .bind(i64::from(page.limit))
                .bind(page.offset)
                .fetch_all(conn)
                .await
            })
            .await?;
        row::all(rows)
    }

    async fn get(&self, owner: &UserId, id: TaskId) -> Result<Task, StoreError> {
        let row: Option<Row> = self
            .run(async |conn, persistent| {
                sqlx::query_as(concat!(
                    "select ",
                    task_columns!(),
                    " from tasks where user_id = $1 and id = $2"
                ))
                .persistent(persistent)
                .bind(owner.as_str())
                .bind(id.get())
                .fetch_optional(conn)
                .await
            })
            .await?;
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
        let now = now();
        // `greatest(...)` keeps updated_at strictly increasing even when two updates land
        // within the same microsecond or the clock steps back.
        let row: Option<Row> = self
            .run(async |conn, persistent| {
                sqlx::query_as(concat!(
                    "update tasks set
                        title = coalesce($3, title),
                        description = case when $4 then $5 else description end,
                        status = coalesce($6, status),
                        updated_at = greatest($7, updated_at + interval '1 microsecond')
                     where user_id = $1 and id = $2
                     returning ",
                    task_columns!(),
                    ""
                ))
                .persistent(persistent)
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
                .bind(now)
                .fetch_optional(conn)
                .await
            })
            .await?;
        row::found(row)
    }

    async fn delete(&self, owner: &UserId, id: TaskId) -> Result<(), StoreError> {
        let result = self
            .run(async |conn, persistent| {
                sqlx::query("delete from tasks where user_id = $1 and id = $2")
                    .persistent(persistent)
                    .bind(owner.as_str())
                    .bind(id.get())
                    .execute(conn)
                    .await
            })
            .await?;
        match result.rows_affected() {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.run(async |conn, persistent| {
            sqlx::query("select 1")
                .persistent(persistent)
                .execute(conn)
                .await
        })
        .await?;
        Ok(())
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = sqlx::migrate!("./migrations/postgres");
        if self.transaction_pooler {
            pooler::migrate(&migrator, &self.pool).await?;
        } else {
            migrator.run(&self.pool).await?;
        }
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
