//! The PostgreSQL store: production (Neon or any PostgreSQL 13+).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Connection, Postgres, QueryBuilder};

use super::row::{self, TaskRow, task_columns};
use super::{
    POSITION_ATTEMPTS, PoolSettings, StoreError, TaskStore, classify, is_unique_violation, now,
    position_after, position_contention, text,
};
use crate::domain::query::fold;
use crate::domain::{
    CreateTask, Filter, Placement, Position, SortValue, Tags, Task, TaskId, TaskQuery, TaskStatus,
    Timestamp, UpdateTask, UserId,
};

mod pooler;

pub use pooler::TransactionPooler;

type Row = TaskRow<DateTime<Utc>, Vec<String>>;

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
        // A refusal that retrying cannot fix (a missing role or database, a bad password)
        // is reported by its cause alone.
        let first_connection = |error: sqlx::Error| match db_error(error) {
            StoreError::Other(cause) => match cause.downcast::<sqlx::Error>() {
                Ok(error) => StoreError::Other(super::describe(&error).into()),
                Err(cause) => StoreError::Other(cause),
            },
            transient => transient,
        };
        PgConnection::connect_with(&options)
            .await
            .map_err(first_connection)?
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

/// Binds a sort value as PostgreSQL compares it with its column.
fn push_sort_value(query: &mut QueryBuilder<Postgres>, value: &SortValue) {
    match value {
        SortValue::Micros(micros) => {
            query.push_bind(micros.and_then(DateTime::<Utc>::from_timestamp_micros));
        }
        SortValue::Rank(rank) => {
            query.push_bind(i32::try_from(*rank).unwrap_or(i32::MAX));
        }
        SortValue::Text(text) => {
            query.push_bind(text.clone());
        }
    }
}

/// `where` with the owner and every filter of `filter`.
fn push_filter(query: &mut QueryBuilder<Postgres>, owner: &UserId, filter: &Filter) {
    query
        .push(" where user_id = ")
        .push_bind(owner.as_str().to_owned());
    if !filter.statuses.is_empty() {
        let statuses: Vec<&'static str> = filter.statuses.iter().map(|s| s.as_str()).collect();
        query
            .push(" and status = any(")
            .push_bind(statuses)
            .push(")");
    }
    if !filter.tags.is_empty() {
        query
            .push(" and tag_keys @> ")
            .push_bind(text::tag_keys(&filter.tags));
    }
    if !filter.priorities.is_empty() {
        let ranks: Vec<i32> = filter.priorities.iter().map(|p| p.rank().into()).collect();
        query
            .push(" and priority = any(")
            .push_bind(ranks)
            .push(")");
    }
    if let Some(search) = &filter.search {
        let pattern = text::like_pattern(search);
        query
            .push(" and (title_key like ")
            .push_bind(pattern.clone())
            .push(" escape '\\' or description_key like ")
            .push_bind(pattern)
            .push(" escape '\\')");
    }
    if let Some(before) = filter.due_before {
        query.push(" and due_at < ").push_bind(before);
    }
    if let Some(after) = filter.due_after {
        query.push(" and due_at > ").push_bind(after);
    }
    match filter.has_due {
        Some(true) => {
            query.push(" and due_at is not null");
        }
        Some(false) => {
            query.push(" and due_at is null");
        }
        None => {}
    }
    if let Some(since) = filter.updated_since {
        query.push(" and updated_at >= ").push_bind(since);
    }
}

#[async_trait]
impl TaskStore for PgStore {
    async fn create(&self, owner: &UserId, task: CreateTask) -> Result<Task, StoreError> {
        let now = now();
        let status = task.status.unwrap_or_default();
        let tags = task.tags.unwrap_or_default();
        for attempt in 0..POSITION_ATTEMPTS {
            // The first try computes the position in the insert itself (one round trip); a
            // retry after losing the race for it adds a random fraction, computed here.
            let position = match attempt {
                0 => None,
                _ => {
                    let last: Option<String> = self
                        .run(async |conn, persistent| {
                            sqlx::query_scalar("select max(position) from tasks where user_id = $1")
                                .persistent(persistent)
                                .bind(owner.as_str())
                                .fetch_one(conn)
                                .await
                        })
                        .await?;
                    Some(position_after(last, attempt)?)
                }
            };
            let inserted: Result<Row, StoreError> = self
                .run(async |conn, persistent| {
                    sqlx::query_as(concat!(
                        "insert into tasks (user_id, title, title_key, description,
                            description_key, status, created_at, updated_at, due_at, priority,
                            tags, tag_keys, position, completed_at)
                         values ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9, $10, $11,
                            coalesce($12, task_position_after(
                                (select max(position) from tasks where user_id = $1))),
                            $13)
                         returning ",
                        task_columns!()
                    ))
                    .persistent(persistent)
                    .bind(owner.as_str())
                    .bind(task.title.as_str())
                    .bind(text::title_key(&task.title))
                    .bind(task.description.as_ref().map(|d| d.as_str()))
                    .bind(text::description_key(task.description.as_ref()))
                    .bind(status.as_str())
                    .bind(now)
                    .bind(task.due_at.map(Timestamp::get))
                    .bind(i32::from(task.priority.unwrap_or_default().rank()))
                    .bind(tags.names())
                    .bind(tags.keys())
                    .bind(position.as_ref().map(Position::as_str))
                    .bind((status == TaskStatus::Completed).then_some(now))
                    .fetch_one(conn)
                    .await
                })
                .await;
            match inserted {
                Err(error) if is_unique_violation(&error) => continue,
                result => return result?.try_into(),
            }
        }
        Err(position_contention())
    }

    async fn list(&self, owner: &UserId, query: &TaskQuery) -> Result<Vec<Task>, StoreError> {
        let rows: Vec<Row> = self
            .run(async |conn, persistent| {
                let mut sql = QueryBuilder::new(concat!("select ", task_columns!(), " from tasks"));
                push_filter(&mut sql, owner, &query.filter);
                super::push_page(&mut sql, query, push_sort_value);
                sql.build_query_as()
                    .persistent(persistent)
                    .fetch_all(conn)
                    .await
            })
            .await?;
        row::all(rows)
    }

    async fn count(&self, owner: &UserId, filter: &Filter) -> Result<i64, StoreError> {
        self.run(async |conn, persistent| {
            if *filter == Filter::default() {
                // Kept by a trigger: one row, however many tasks.
                return sqlx::query_scalar(
                    "select coalesce((select tasks from task_counts where user_id = $1), 0)",
                )
                .persistent(persistent)
                .bind(owner.as_str())
                .fetch_one(conn)
                .await;
            }
            let mut sql = QueryBuilder::new("select count(*) from tasks");
            push_filter(&mut sql, owner, filter);
            sql.build_query_scalar()
                .persistent(persistent)
                .fetch_one(conn)
                .await
        })
        .await
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
        let description = changes.description.as_ref().map(|d| d.as_ref());
        // One statement: the row changes only when some field really differs, so a change
        // that changes nothing moves neither `version` nor `updated_at`. `greatest(...)` keeps
        // updated_at strictly increasing even within one microsecond or when the clock steps
        // back. `completed_at` follows `status` in the same statement.
        let row: Option<Row> = self
            .run(async |conn, persistent| {
                sqlx::query_as(concat!(
                    "update tasks set
                        title = coalesce($3, title),
                        title_key = coalesce($4, title_key),
                        description = case when $5 then $6 else description end,
                        description_key = case when $5 then $7 else description_key end,
                        status = coalesce($8, status),
                        completed_at = case
                            when $8::text is null or $8 = status then completed_at
                            when $8 = 'completed' then $9
                            else null end,
                        due_at = case when $10 then $11 else due_at end,
                        priority = coalesce($12, priority),
                        tags = coalesce($13, tags),
                        tag_keys = coalesce($14, tag_keys),
                        updated_at = greatest($9, updated_at + interval '1 microsecond'),
                        version = version + 1
                     where user_id = $1 and id = $2 and (
                        title is distinct from coalesce($3, title)
                        or ($5 and description is distinct from $6)
                        or status is distinct from coalesce($8, status)
                        or ($10 and due_at is distinct from $11)
                        or priority is distinct from coalesce($12, priority)
                        or tags is distinct from coalesce($13, tags))
                     returning ",
                    task_columns!()
                ))
                .persistent(persistent)
                .bind(owner.as_str())
                .bind(id.get())
                .bind(changes.title.as_ref().map(|t| t.as_str()))
                .bind(changes.title.as_ref().map(text::title_key))
                .bind(description.is_some())
                .bind(description.flatten().map(|d| d.as_str()))
                .bind(description.and_then(text::description_key))
                .bind(changes.status.map(|s| s.as_str()))
                .bind(now)
                .bind(changes.due_at.is_some())
                .bind(changes.due_at.flatten().map(Timestamp::get))
                .bind(changes.priority.map(|p| i32::from(p.rank())))
                .bind(changes.tags.as_ref().map(Tags::names))
                .bind(changes.tags.as_ref().map(Tags::keys))
                .fetch_optional(conn)
                .await
            })
            .await?;
        match row {
            Some(row) => row.try_into(),
            // Missing, foreign, or unchanged: `get` tells which.
            None => self.get(owner, id).await,
        }
    }

    async fn move_task(
        &self,
        owner: &UserId,
        id: TaskId,
        placement: Placement,
    ) -> Result<Task, StoreError> {
        for _ in 0..POSITION_ATTEMPTS {
            let Some((lower, upper)) = super::bounds(self, owner, id, placement).await? else {
                return self.get(owner, id).await;
            };
            let position = Position::between(lower.as_ref(), upper.as_ref())
                .map_err(|error| StoreError::Other(error.into()))?;
            let now = now();
            let moved: Result<Option<Row>, StoreError> = self
                .run(async |conn, persistent| {
                    sqlx::query_as(concat!(
                        "update tasks set position = $3, version = version + 1,
                            updated_at = greatest($4, updated_at + interval '1 microsecond')
                         where user_id = $1 and id = $2
                         returning ",
                        task_columns!()
                    ))
                    .persistent(persistent)
                    .bind(owner.as_str())
                    .bind(id.get())
                    .bind(position.as_str())
                    .bind(now)
                    .fetch_optional(conn)
                    .await
                })
                .await;
            match moved {
                Err(error) if is_unique_violation(&error) => continue,
                result => return row::found(result?),
            }
        }
        Err(position_contention())
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
        self.fold_unfolded_rows().await
    }

    async fn shared_key(&self, name: &str) -> Result<[u8; 32], StoreError> {
        let candidate = super::random_key()?;
        let key: Vec<u8> = self
            .run(async |conn, persistent| {
                sqlx::query(
                    "insert into service_keys (name, key) values ($1, $2)
                     on conflict (name) do nothing",
                )
                .persistent(persistent)
                .bind(name)
                .bind(candidate.as_slice())
                .execute(&mut *conn)
                .await?;
                sqlx::query_scalar("select key from service_keys where name = $1")
                    .persistent(persistent)
                    .bind(name)
                    .fetch_one(&mut *conn)
                    .await
            })
            .await?;
        super::key_from(key)
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

impl super::Positions for PgStore {
    async fn position_of(&self, owner: &UserId, id: TaskId) -> Result<Position, StoreError> {
        let position: Option<String> = self
            .run(async |conn, persistent| {
                sqlx::query_scalar("select position from tasks where user_id = $1 and id = $2")
                    .persistent(persistent)
                    .bind(owner.as_str())
                    .bind(id.get())
                    .fetch_optional(conn)
                    .await
            })
            .await?;
        super::stored_position(position.ok_or(StoreError::NotFound)?)
    }

    async fn neighbour(
        &self,
        owner: &UserId,
        moving: TaskId,
        from: Option<&Position>,
        above: bool,
    ) -> Result<Option<Position>, StoreError> {
        let position: Option<String> = self
            .run(async |conn, persistent| {
                let sql = match (above, from.is_some()) {
                    (true, true) => {
                        "select min(position) from tasks
                         where user_id = $1 and id <> $2 and position > $3"
                    }
                    (true, false) => {
                        "select min(position) from tasks
                         where user_id = $1 and id <> $2 and $3::text is null"
                    }
                    (false, true) => {
                        "select max(position) from tasks
                         where user_id = $1 and id <> $2 and position < $3"
                    }
                    (false, false) => {
                        "select max(position) from tasks
                         where user_id = $1 and id <> $2 and $3::text is null"
                    }
                };
                sqlx::query_scalar(sql)
                    .persistent(persistent)
                    .bind(owner.as_str())
                    .bind(moving.get())
                    .bind(from.map(Position::as_str))
                    .fetch_one(conn)
                    .await
            })
            .await?;
        position.map(super::stored_position).transpose()
    }
}

impl PgStore {
    /// Fills in the folded title and description of rows written before those columns
    /// existed. A maintenance pass over all owners, run at start-up; every instance computes
    /// the same values, so running it on several at once is harmless.
    async fn fold_unfolded_rows(&self) -> Result<(), StoreError> {
        loop {
            let rows: Vec<(i64, String, Option<String>)> = self
                .run(async |conn, persistent| {
                    sqlx::query_as(
                        "select id, title, description from tasks
                         where title_key is null limit 500",
                    )
                    .persistent(persistent)
                    .fetch_all(conn)
                    .await
                })
                .await?;
            if rows.is_empty() {
                return Ok(());
            }
            for (id, title, description) in rows {
                self.run(async |conn, persistent| {
                    sqlx::query(
                        "update tasks set title_key = $2, description_key = $3 where id = $1",
                    )
                    .persistent(persistent)
                    .bind(id)
                    .bind(fold(&title))
                    .bind(description.as_deref().map(fold))
                    .execute(conn)
                    .await
                })
                .await?;
            }
        }
    }
}
