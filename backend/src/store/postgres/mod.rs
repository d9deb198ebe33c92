//! The PostgreSQL store: production (Neon or any PostgreSQL 13+).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Connection, Postgres, QueryBuilder, Transaction};
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

use super::row::{self, ChangeRow, ReplayRow, TaskRow, task_columns};
use super::{
    POSITION_ATTEMPTS, PoolSettings, PoolStatus, Purged, StoreError, TaskStore, classify,
    is_unique_violation, now, position_after, position_contention, text,
};
use crate::domain::query::fold;
use crate::domain::{
    ChangeCursor, ChangePage, CreateTask, Expect, Filter, IdempotencyKey, Once, Placement,
    Position, SortValue, Tags, Task, TaskId, TaskQuery, TaskStatus, Timestamp, UpdateTask, UserId,
};

mod pooler;

pub use pooler::TransactionPooler;

type Row = TaskRow<DateTime<Utc>, Vec<String>>;
type FeedRow = ChangeRow<DateTime<Utc>, Vec<String>>;

/// The channel writes are announced on, for instances that `LISTEN`.
pub const NOTIFY_CHANNEL: &str = "todo_changes";

/// How many rows one purge statement removes.
const PURGE_BATCH: i64 = 500;

/// Tasks in PostgreSQL, through a connection pool.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// One permit per pooled connection: a request waits here for its turn, and only then
    /// asks the pool. sqlx's acquire future is about 14 KiB (it holds, inline, the connect it
    /// may have to run), and with 1,000 clients on 10 connections nearly every request is
    /// waiting; this wait costs a few bytes.
    slots: Arc<Semaphore>,
    acquire_timeout: Duration,
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
            // No ping when a connection is taken out (and, with the vendored sqlx-core, none
            // when it goes back, only a drain of what a dropped request left): each would add a
            // round trip to every request. A connection that dies while idle fails one query
            // with a 503 and is then replaced.
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(|error| classify(error, transient))?;
        Ok(PgStore {
            pool,
            slots: Arc::new(Semaphore::new(settings.max_connections as usize)),
            acquire_timeout: settings.acquire_timeout,
            transaction_pooler,
        })
    }

    /// Waits for a connection's worth of room ([`PgStore::slots`]), and returns it with the
    /// deadline that also bounds taking the connection: the acquire timeout covers both waits
    /// together. Past it, the answer is the pool's own "timed out", a 503.
    async fn slot(&self) -> Result<(SemaphorePermit<'_>, Instant), StoreError> {
        let deadline = Instant::now() + self.acquire_timeout;
        match tokio::time::timeout_at(deadline, self.slots.acquire()).await {
            Ok(Ok(permit)) => Ok((permit, deadline)),
            // Elapsed, or closed (which the store never does).
            _ => Err(timed_out()),
        }
    }

    /// Opens a transaction, on a task of its own so that it cannot be abandoned half-open.
    ///
    /// sqlx 0.9.0 counts a transaction as open only once the server has answered `BEGIN`, and
    /// rolls back on drop only what it counts. A request dropped between the two (its client
    /// went away) would give the pool back a connection inside a transaction that nothing
    /// ends: every later query on it would run inside that transaction, hold its locks and
    /// never commit (transact-rs/sqlx#4393). Spawned, `BEGIN` is always answered; if nobody
    /// is left to take the transaction, it is dropped, and so rolled back, as any other.
    async fn begin(&self, deadline: Instant) -> Result<Transaction<'static, Postgres>, StoreError> {
        let pool = self.pool.clone();
        let begun = tokio::spawn(async move { pool.begin().await });
        tokio::time::timeout_at(deadline, begun)
            .await
            .map_err(|_| timed_out())?
            .map_err(|error| StoreError::Other(error.into()))?
            .map_err(db_error)
    }

    /// Runs `work` on one pooled connection, telling it whether statements may be prepared
    /// once and reused (`persistent`).
    ///
    /// Behind a transaction-mode pooler, sqlx's extended-protocol round trips (parse, then
    /// bind and execute) may each reach a different server connection unless they are inside
    /// a transaction, so there each call runs in one, with unnamed statements only. Outside a
    /// pooler, neither costs anything.
    ///
    /// The pool's acquire and `work` are boxed, so that a request still waiting for its
    /// [`PgStore::slot`] holds neither (see [`PgStore::slots`]). Holding a slot, a request
    /// nearly always finds an idle connection and takes it without the acquire (and the copy
    /// of its 14 KiB future into the box).
    async fn run<T>(
        &self,
        work: impl AsyncFnOnce(&mut PgConnection, bool) -> Result<T, sqlx::Error>,
    ) -> Result<T, StoreError> {
        let (_slot, deadline) = self.slot().await?;
        if self.transaction_pooler {
            let mut transaction = self.begin(deadline).await?;
            let value = Box::pin(work(&mut transaction, false))
                .await
                .map_err(db_error)?;
            transaction.commit().await.map_err(db_error)?;
            Ok(value)
        } else {
            // With a slot, an idle connection is there unless the pool has yet to open one (or
            // its reaper just closed one): then the pool's acquire, which opens it.
            let mut connection = match self.pool.try_acquire() {
                Some(connection) => connection,
                None => tokio::time::timeout_at(deadline, Box::pin(self.pool.acquire()))
                    .await
                    .map_err(|_| timed_out())?
                    .map_err(db_error)?,
            };
            Box::pin(work(&mut connection, true))
                .await
                .map_err(db_error)
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

/// No connection within the acquire timeout: what the pool itself says then.
fn timed_out() -> StoreError {
    db_error(sqlx::Error::PoolTimedOut)
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
    query.push(if filter.trashed {
        " and deleted_at is not null"
    } else {
        " and deleted_at is null"
    });
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

/// The insert of a new task, at `position` or, without one, after the owner's last task
/// (computed in the statement: one round trip).
async fn insert_task(
    conn: &mut PgConnection,
    persistent: bool,
    owner: &UserId,
    task: &CreateTask,
    position: Option<&Position>,
) -> Result<Row, sqlx::Error> {
    let now = now();
    let status = task.status.unwrap_or_default();
    let tags = task.tags.clone().unwrap_or_default();
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
    .bind(position.map(Position::as_str))
    .bind((status == TaskStatus::Completed).then_some(now))
    .fetch_one(conn)
    .await
}

/// The move of a live task to `position`, if its version is one of `versions`.
async fn reposition(
    conn: &mut PgConnection,
    persistent: bool,
    owner: &UserId,
    id: TaskId,
    position: &Position,
    versions: Option<&[i64]>,
) -> Result<Option<Row>, sqlx::Error> {
    sqlx::query_as(concat!(
        "update tasks set position = $3, version = version + 1,
            updated_at = greatest($4, updated_at + interval '1 microsecond')
         where user_id = $1 and id = $2 and deleted_at is null
            and ($5::bigint[] is null or version = any($5))
         returning ",
        task_columns!()
    ))
    .persistent(persistent)
    .bind(owner.as_str())
    .bind(id.get())
    .bind(position.as_str())
    .bind(now())
    .bind(versions)
    .fetch_optional(conn)
    .await
}

/// The move of a live task by `placement` with every key of the owner rewritten (see
/// [`super::rekeyed_order`]), if its version is one of `versions`; `conn` must be in a
/// transaction, in which the owner's rows are locked first.
async fn rekeyed_move(
    conn: &mut PgConnection,
    persistent: bool,
    owner: &UserId,
    id: TaskId,
    placement: Placement,
    versions: Option<&[i64]>,
) -> Result<Option<Row>, sqlx::Error> {
    let rows: Vec<(i64, String, bool, i64)> = sqlx::query_as(
        "select id, position, deleted_at is null, version from tasks
         where user_id = $1 order by position for update",
    )
    .persistent(persistent)
    .bind(owner.as_str())
    .fetch_all(&mut *conn)
    .await?;
    let admitted = rows.iter().any(|(task, _, live, version)| {
        *task == id.get() && *live && versions.is_none_or(|versions| versions.contains(version))
    });
    let rows: Vec<super::OrderRow> = rows
        .into_iter()
        .map(|(task, key, live, _)| (task, key, live))
        .collect();
    let Some(plan) = super::rekeyed_order(&rows, id, placement).filter(|_| admitted) else {
        return Ok(None);
    };
    let (ids, keys): (Vec<i64>, Vec<String>) = plan
        .into_iter()
        .map(|(task, key)| (task, key.as_str().to_owned()))
        .unzip();
    sqlx::query(
        "update tasks set position = new.position, version = tasks.version + 1,
            updated_at = greatest($4, tasks.updated_at + interval '1 microsecond')
         from unnest($2::bigint[], $3::text[]) as new(id, position)
         where tasks.user_id = $1 and tasks.id = new.id",
    )
    .persistent(persistent)
    .bind(owner.as_str())
    .bind(&ids)
    .bind(&keys)
    .bind(now())
    .execute(&mut *conn)
    .await?;
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
}

impl PgStore {
    /// Runs `work` in one transaction on one pooled connection (see [`PgStore::run`]).
    async fn transaction<T>(
        &self,
        work: impl AsyncFnOnce(&mut PgConnection, bool) -> Result<T, sqlx::Error>,
    ) -> Result<T, StoreError> {
        let persistent = !self.transaction_pooler;
        let (_slot, deadline) = self.slot().await?;
        let mut transaction = self.begin(deadline).await?;
        let value = Box::pin(work(&mut transaction, persistent))
            .await
            .map_err(db_error)?;
        transaction.commit().await.map_err(db_error)?;
        Ok(value)
    }

    /// Runs `write` and records its outcome under `key`, in one transaction; a request seen
    /// before under the key gets its recorded outcome instead. `Ok(None)` when `write`
    /// matched no task (nothing is recorded).
    ///
    /// Two requests with one key may arrive at once, on different instances: a transaction
    /// lock on the key lets the first proceed and tells the other it is in flight. The
    /// primary key on (user, key) stands behind it.
    async fn once(
        &self,
        owner: &UserId,
        key: &IdempotencyKey,
        status: u16,
        write: impl AsyncFnOnce(&mut PgConnection, bool) -> Result<Option<Row>, sqlx::Error>,
    ) -> Result<Option<Once<Task>>, StoreError> {
        let persistent = !self.transaction_pooler;
        let now = now();
        let (_slot, deadline) = self.slot().await?;
        let mut transaction = self.begin(deadline).await?;
        // Boxed, as in `run`.
        let outcome = Box::pin(async {
            let locked: bool =
                sqlx::query_scalar("select pg_try_advisory_xact_lock(hashtext($1), hashtext($2))")
                    .persistent(persistent)
                    .bind(owner.as_str())
                    .bind(key.key())
                    .fetch_one(&mut *transaction)
                    .await
                    .map_err(db_error)?;
            if !locked {
                return Err(StoreError::KeyInFlight);
            }
            let recorded: Option<ReplayRow> = sqlx::query_as(
                "select fingerprint, status, body, task_id, version from idempotency_keys
                 where user_id = $1 and key = $2 and created_at > $3",
            )
            .persistent(persistent)
            .bind(owner.as_str())
            .bind(key.key())
            .bind(super::keys_valid_after(now))
            .fetch_optional(&mut *transaction)
            .await
            .map_err(db_error)?;
            if let Some(recorded) = recorded {
                return super::replay(recorded, key).map(Some);
            }
            let Some(row) = write(&mut transaction, persistent)
                .await
                .map_err(db_error)?
            else {
                return Ok(None);
            };
            let task = Task::try_from(row)?;
            // An expired record of the key is replaced; a live one cannot be there (the lock).
            let recorded = sqlx::query(
                "insert into idempotency_keys
                    (user_id, key, fingerprint, status, body, task_id, version, created_at)
                 values ($1, $2, $3, $4, $5, $6, $7, $8)
                 on conflict (user_id, key) do update set
                    fingerprint = excluded.fingerprint, status = excluded.status,
                    body = excluded.body, task_id = excluded.task_id,
                    version = excluded.version, created_at = excluded.created_at
                 where idempotency_keys.created_at <= $9",
            )
            .persistent(persistent)
            .bind(owner.as_str())
            .bind(key.key())
            .bind(key.fingerprint().as_slice())
            .bind(i32::from(status))
            .bind(super::recorded_body(&task)?)
            .bind(task.id.get())
            .bind(task.version)
            .bind(now)
            .bind(super::keys_valid_after(now))
            .execute(&mut *transaction)
            .await
            .map_err(db_error)?;
            if recorded.rows_affected() == 0 {
                return Err(StoreError::KeyInFlight);
            }
            Ok(Some(Once::Done(task)))
        })
        .await;
        match outcome {
            Ok(Some(Once::Done(task))) => {
                transaction.commit().await.map_err(db_error)?;
                Ok(Some(Once::Done(task)))
            }
            other => {
                // At once, not when the pool next hands the connection out: until then the
                // key's lock would be held, and a retry of this very request would be told
                // that it is in flight.
                let _ = transaction.rollback().await;
                other
            }
        }
    }

    /// The task a conditional write matched nothing of: missing, or at another version.
    async fn unwritten(
        &self,
        owner: &UserId,
        id: TaskId,
        expect: &Expect,
    ) -> Result<Task, StoreError> {
        super::admitted(self.get(owner, id).await?, expect)
    }
}

#[async_trait]
impl TaskStore for PgStore {
    async fn create(
        &self,
        owner: &UserId,
        task: CreateTask,
        key: Option<&IdempotencyKey>,
    ) -> Result<Once<Task>, StoreError> {
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
            let position = position.as_ref();
            let inserted = match key {
                None => self
                    .run(async |conn, persistent| {
                        insert_task(conn, persistent, owner, &task, position).await
                    })
                    .await
                    .and_then(|row| Ok(Once::Done(row.try_into()?))),
                Some(key) => self
                    .once(owner, key, 201, async |conn, persistent| {
                        insert_task(conn, persistent, owner, &task, position)
                            .await
                            .map(Some)
                    })
                    .await
                    .and_then(|once| once.ok_or(StoreError::NotFound)),
            };
            match inserted {
                Err(error) if is_unique_violation(&error) => continue,
                result => return result,
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
                    "select coalesce((select tasks from task_owners where user_id = $1), 0)",
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
                    " from tasks where user_id = $1 and id = $2 and deleted_at is null"
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
        expect: &Expect,
    ) -> Result<Task, StoreError> {
        if changes.is_empty() {
            return self.unwritten(owner, id, expect).await;
        }
        let now = now();
        let description = changes.description.as_ref().map(|d| d.as_ref());
        let versions = super::admitted_versions(expect);
        // One statement: the row changes only when some field really differs and its version
        // is one the caller expects, so a change that changes nothing moves neither `version`
        // nor `updated_at`, and two writers holding the same version cannot both win.
        // `greatest(...)` keeps updated_at strictly increasing even within one microsecond or
        // when the clock steps back. `completed_at` follows `status` in the same statement.
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
                     where user_id = $1 and id = $2 and deleted_at is null
                        and ($15::bigint[] is null or version = any($15))
                        and (title is distinct from coalesce($3, title)
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
                .bind(versions.as_deref())
                .fetch_optional(conn)
                .await
            })
            .await?;
        match row {
            Some(row) => row.try_into(),
            // Missing, foreign, at another version, or unchanged: the task tells which.
            None => self.unwritten(owner, id, expect).await,
        }
    }

    async fn move_task(
        &self,
        owner: &UserId,
        id: TaskId,
        placement: Placement,
        expect: &Expect,
        key: Option<&IdempotencyKey>,
    ) -> Result<Once<Task>, StoreError> {
        let versions = super::admitted_versions(expect);
        let versions = versions.as_deref();
        for _ in 0..POSITION_ATTEMPTS {
            let Some((lower, upper)) = super::bounds(self, owner, id, placement).await? else {
                return Ok(Once::Done(self.unwritten(owner, id, expect).await?));
            };
            let position = Position::between(lower.as_ref(), upper.as_ref())
                .map_err(|error| StoreError::Other(error.into()))?;
            let position = &position;
            // A key past the limit: every key of the owner is rewritten, in one transaction.
            let rekey = position.is_too_long();
            let write = async |conn: &mut PgConnection, persistent| match rekey {
                true => rekeyed_move(conn, persistent, owner, id, placement, versions).await,
                false => reposition(conn, persistent, owner, id, position, versions).await,
            };
            let done = |row: Result<Option<Row>, StoreError>| {
                row.and_then(|row| row.map(Task::try_from).transpose())
                    .map(|task| task.map(Once::Done))
            };
            let moved = match (key, rekey) {
                (None, false) => done(self.run(write).await),
                (None, true) => done(self.transaction(write).await),
                (Some(key), _) => self.once(owner, key, 200, write).await,
            };
            match moved {
                Err(error) if is_unique_violation(&error) => continue,
                Err(error) => return Err(error),
                Ok(Some(once)) => return Ok(once),
                // Missing or at another version; one that matched was trashed in between.
                Ok(None) => {
                    return self
                        .unwritten(owner, id, expect)
                        .await
                        .and(Err(StoreError::NotFound));
                }
            }
        }
        Err(position_contention())
    }

    async fn delete(&self, owner: &UserId, id: TaskId, expect: &Expect) -> Result<(), StoreError> {
        let versions = super::admitted_versions(expect);
        let result = self
            .run(async |conn, persistent| {
                sqlx::query(
                    "update tasks set deleted_at = $3
                     where user_id = $1 and id = $2 and deleted_at is null
                        and ($4::bigint[] is null or version = any($4))",
                )
                .persistent(persistent)
                .bind(owner.as_str())
                .bind(id.get())
                .bind(now())
                .bind(versions.as_deref())
                .execute(conn)
                .await
            })
            .await?;
        match result.rows_affected() {
            // Missing or at another version; one that matched was trashed in between.
            0 => self
                .unwritten(owner, id, expect)
                .await
                .and(Err(StoreError::NotFound)),
            _ => Ok(()),
        }
    }

    async fn restore(&self, owner: &UserId, id: TaskId) -> Result<Task, StoreError> {
        let row: Option<Row> = self
            .run(async |conn, persistent| {
                sqlx::query_as(concat!(
                    "update tasks set deleted_at = null, version = version + 1,
                        updated_at = greatest($3, updated_at + interval '1 microsecond')
                     where user_id = $1 and id = $2 and deleted_at is not null
                     returning ",
                    task_columns!()
                ))
                .persistent(persistent)
                .bind(owner.as_str())
                .bind(id.get())
                .bind(now())
                .fetch_optional(conn)
                .await
            })
            .await?;
        match row {
            Some(row) => row.try_into(),
            None => self.get(owner, id).await,
        }
    }

    async fn changes(
        &self,
        owner: &UserId,
        since: ChangeCursor,
        limit: u32,
    ) -> Result<ChangePage, StoreError> {
        let (rows, counters): (Vec<FeedRow>, Option<(i64, i64)>) = self
            .run(async |conn, persistent| {
                let rows = sqlx::query_as(concat!(
                    "select ",
                    task_columns!(),
                    ", change_seq from tasks where user_id = $1 and change_seq > $2
                     order by change_seq limit $3"
                ))
                .persistent(persistent)
                .bind(owner.as_str())
                .bind(since.get())
                .bind(i64::from(limit) + 1)
                .fetch_all(&mut *conn)
                .await?;
                let counters = sqlx::query_as(
                    "select last_change, purged_through from task_owners where user_id = $1",
                )
                .persistent(persistent)
                .bind(owner.as_str())
                .fetch_optional(&mut *conn)
                .await?;
                Ok((rows, counters))
            })
            .await?;
        super::feed_page(rows, since, limit, counters)
    }

    async fn purge(
        &self,
        trashed_before: DateTime<Utc>,
        keys_before: DateTime<Utc>,
    ) -> Result<Purged, StoreError> {
        let mut purged = Purged::default();
        // In batches, skipping rows another instance's purge holds: many instances may purge
        // at once without waiting on each other or deleting anything twice.
        for (sql, before, total) in [
            (
                "delete from tasks where id in (
                    select id from tasks where deleted_at < $1
                    limit $2 for update skip locked)",
                trashed_before,
                &mut purged.tasks,
            ),
            (
                "delete from idempotency_keys where (user_id, key) in (
                    select user_id, key from idempotency_keys where created_at < $1
                    limit $2 for update skip locked)",
                keys_before,
                &mut purged.keys,
            ),
        ] {
            loop {
                let batch = self
                    .run(async |conn, persistent| {
                        sqlx::query(sql)
                            .persistent(persistent)
                            .bind(before)
                            .bind(PURGE_BATCH)
                            .execute(conn)
                            .await
                    })
                    .await?
                    .rows_affected();
                *total += batch;
                if batch < PURGE_BATCH as u64 {
                    break;
                }
            }
        }
        Ok(purged)
    }

    async fn change_counters(&self, owners: &[UserId]) -> Result<Vec<(UserId, i64)>, StoreError> {
        let owners: Vec<&str> = owners.iter().map(UserId::as_str).collect();
        let rows = self
            .run(async |conn, persistent| {
                sqlx::query_as(
                    "select user_id, last_change from task_owners where user_id = any($1)",
                )
                .persistent(persistent)
                .bind(&owners)
                .fetch_all(conn)
                .await
            })
            .await?;
        Ok(super::counters(rows))
    }

    async fn announce(&self, owners: &[UserId]) -> Result<(), StoreError> {
        // One statement for many writers; a payload is one user id, far below NOTIFY's
        // 8000-byte cap. Its own transaction, never a writer's: NOTIFY takes a database-wide
        // lock at commit.
        let owners: Vec<&str> = owners.iter().map(UserId::as_str).collect();
        self.run(async |conn, persistent| {
            sqlx::query("select pg_notify($1, owner) from unnest($2::text[]) as owner")
                .persistent(persistent)
                .bind(NOTIFY_CHANNEL)
                .bind(&owners)
                .execute(conn)
                .await
        })
        .await?;
        Ok(())
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
        let before: Vec<i64> = self
            .run(async |conn, persistent| {
                let exists: bool =
                    sqlx::query_scalar("select to_regclass('_sqlx_migrations') is not null")
                        .persistent(persistent)
                        .fetch_one(&mut *conn)
                        .await?;
                if !exists {
                    return Ok(Vec::new());
                }
                sqlx::query_scalar("select version from _sqlx_migrations")
                    .persistent(persistent)
                    .fetch_all(&mut *conn)
                    .await
            })
            .await?;
        if self.transaction_pooler {
            pooler::migrate(&migrator, &self.pool).await?;
        } else {
            migrator.run(&self.pool).await?;
        }
        super::report_migrations(&migrator, &before);
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

    fn pool_status(&self) -> PoolStatus {
        PoolStatus {
            open: self.pool.size(),
            idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
            max: self.pool.options().get_max_connections(),
        }
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

impl super::Positions for PgStore {
    async fn position_of(&self, owner: &UserId, id: TaskId) -> Result<Position, StoreError> {
        let position: Option<String> = self
            .run(async |conn, persistent| {
                sqlx::query_scalar(
                    "select position from tasks
                     where user_id = $1 and id = $2 and deleted_at is null",
                )
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
