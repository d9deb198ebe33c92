//! The SQLite store: the embedded default, so the service runs with no database server.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};

use sqlx::{QueryBuilder, Sqlite};

use super::error::classify;
use super::row::{self, ChangeRow, ReplayRow, TaskRow, task_columns};
use super::statements::{FeedRows, Purge, Statements, Write, admitted_versions, now};
use super::tasks::{OrderRow, rekeyed_order};
use super::{PoolSettings, PoolStatus, StoreError, text};
use crate::domain::{
    ChangeCursor, CreateTask, Expect, Filter, IdempotencyKey, Outcome, Placement, Position,
    SortValue, Tags, Task, TaskId, TaskQuery, TaskStatus, UpdateTask, UserId,
};

/// Timestamps are integer microseconds since the Unix epoch; tags are JSON arrays.
type Row = TaskRow<i64, String>;
type FeedRow = ChangeRow<i64, String>;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a write waits for another connection's write to finish before giving up.
/// SQLite allows one writer at a time; this makes concurrent writes queue instead of fail.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Tasks in a SQLite file, through a connection pool.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Idempotency keys whose request is being processed (see [`SqliteStore::claim`]).
    in_flight: Arc<Mutex<HashSet<(String, String)>>>,
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
        Ok(SqliteStore {
            pool,
            in_flight: Arc::default(),
        })
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

/// Binds a sort value as SQLite compares it with its column.
fn push_sort_value(query: &mut QueryBuilder<Sqlite>, value: &SortValue) {
    match value {
        SortValue::Micros(micros) => {
            query.push_bind(*micros);
        }
        SortValue::Rank(rank) => {
            query.push_bind(*rank);
        }
        SortValue::Text(text) => {
            query.push_bind(text.clone());
        }
    }
}

/// `col in (?, ?, …)` for a non-empty list.
fn push_any<T>(query: &mut QueryBuilder<Sqlite>, column: &str, values: Vec<T>)
where
    T: for<'q> sqlx::Encode<'q, Sqlite> + sqlx::Type<Sqlite> + Send + 'static,
{
    query.push(format_args!(" and {column} in ("));
    let mut list = query.separated(", ");
    for value in values {
        list.push_bind(value);
    }
    query.push(")");
}

/// `where` with the owner and every filter of `filter`.
fn push_filter(query: &mut QueryBuilder<Sqlite>, owner: &UserId, filter: &Filter) {
    query
        .push(" where user_id = ")
        .push_bind(owner.as_str().to_owned());
    query.push(if filter.trashed {
        " and deleted_at is not null"
    } else {
        " and deleted_at is null"
    });
    if !filter.statuses.is_empty() {
        let statuses = filter.statuses.iter().map(|s| s.as_str()).collect();
        push_any::<&'static str>(query, "status", statuses);
    }
    for key in text::tag_keys(&filter.tags) {
        query
            .push(" and exists (select 1 from json_each(tasks.tag_keys) where value = ")
            .push_bind(key)
            .push(")");
    }
    if !filter.priorities.is_empty() {
        let ranks = filter
            .priorities
            .iter()
            .map(|p| i64::from(p.rank()))
            .collect();
        push_any::<i64>(query, "priority", ranks);
    }
    if let Some(search) = &filter.search {
        // instr() is an exact substring test: no pattern characters to escape.
        query
            .push(" and (instr(title_key, ")
            .push_bind(search.clone())
            .push(") > 0 or instr(coalesce(description_key, ''), ")
            .push_bind(search.clone())
            .push(") > 0)");
    }
    if let Some(before) = filter.due_before {
        query.push(" and due_at < ").push_bind(to_micros(before));
    }
    if let Some(after) = filter.due_after {
        query.push(" and due_at > ").push_bind(to_micros(after));
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
        query
            .push(" and updated_at >= ")
            .push_bind(to_micros(since));
    }
}

fn json_names(tags: &Tags) -> String {
    serde_json::Value::from(tags.names()).to_string()
}

fn json_keys(tags: &Tags) -> String {
    serde_json::Value::from(tags.keys()).to_string()
}

/// The insert of a new task at `position`.
async fn insert_task(
    conn: &mut SqliteConnection,
    owner: &UserId,
    task: &CreateTask,
    position: &Position,
) -> Result<Row, sqlx::Error> {
    let now = to_micros(now());
    let status = task.status.unwrap_or_default();
    let tags = task.tags.clone().unwrap_or_default();
    sqlx::query_as(concat!(
        "insert into tasks (user_id, title, title_key, description, description_key,
            status, created_at, updated_at, due_at, priority, tags, tag_keys, position,
            completed_at)
         values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         returning ",
        task_columns!()
    ))
    .bind(owner.as_str())
    .bind(task.title.as_str())
    .bind(text::title_key(&task.title))
    .bind(task.description.as_ref().map(|d| d.as_str()))
    .bind(text::description_key(task.description.as_ref()))
    .bind(status.as_str())
    .bind(now)
    .bind(task.due_at.map(|due| to_micros(due.get())))
    .bind(i64::from(task.priority.unwrap_or_default().rank()))
    .bind(json_names(&tags))
    .bind(json_keys(&tags))
    .bind(position.as_str())
    .bind((status == TaskStatus::Completed).then_some(now))
    .fetch_one(conn)
    .await
}

/// The move of a live task to `position`, if its version is one of `versions` (a JSON
/// array, or `None` for any).
async fn reposition(
    conn: &mut SqliteConnection,
    owner: &UserId,
    id: TaskId,
    position: &Position,
    versions: Option<&str>,
) -> Result<Option<Row>, sqlx::Error> {
    sqlx::query_as(concat!(
        "update tasks set position = ?3, version = version + 1,
            updated_at = max(?4, updated_at + 1)
         where user_id = ?1 and id = ?2 and deleted_at is null
            and (?5 is null or version in (select value from json_each(?5)))
         returning ",
        task_columns!()
    ))
    .bind(owner.as_str())
    .bind(id.get())
    .bind(position.as_str())
    .bind(to_micros(now()))
    .bind(versions)
    .fetch_optional(conn)
    .await
}

/// The move of a live task by `placement` with every key of the owner rewritten (see
/// [`rekeyed_order`]), if its version is one of `versions`; `conn` must be in a
/// transaction that holds the write lock.
async fn rekeyed_move(
    conn: &mut SqliteConnection,
    owner: &UserId,
    id: TaskId,
    placement: Placement,
    versions: Option<&str>,
) -> Result<Option<Row>, sqlx::Error> {
    let admitted: bool = sqlx::query_scalar(
        "select exists(select 1 from tasks
            where user_id = ?1 and id = ?2 and deleted_at is null
            and (?3 is null or version in (select value from json_each(?3))))",
    )
    .bind(owner.as_str())
    .bind(id.get())
    .bind(versions)
    .fetch_one(&mut *conn)
    .await?;
    let rows: Vec<OrderRow> = sqlx::query_as(
        "select id, position, deleted_at is null from tasks where user_id = ?1 order by position",
    )
    .bind(owner.as_str())
    .fetch_all(&mut *conn)
    .await?;
    let plan = rekeyed_order(&rows, id, placement)
        .map_err(|error| sqlx::Error::Decode(Box::new(error)))?;
    let Some(plan) = plan.filter(|_| admitted) else {
        return Ok(None);
    };
    let now = to_micros(now());
    for (task, key) in plan {
        sqlx::query(
            "update tasks set position = ?3, version = version + 1,
                updated_at = max(?4, updated_at + 1)
             where user_id = ?1 and id = ?2",
        )
        .bind(owner.as_str())
        .bind(task)
        .bind(key.as_str())
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query_as(concat!(
        "select ",
        task_columns!(),
        " from tasks where user_id = ?1 and id = ?2"
    ))
    .bind(owner.as_str())
    .bind(id.get())
    .fetch_optional(conn)
    .await
}

/// The versions a condition admits, as the JSON array the statements bind.
fn versions_json(expect: &Expect) -> Option<String> {
    admitted_versions(expect).map(|versions| serde_json::Value::from(versions).to_string())
}

/// `write` on `conn`.
async fn apply(
    conn: &mut SqliteConnection,
    owner: &UserId,
    write: Write<'_>,
) -> Result<Option<Row>, sqlx::Error> {
    match write {
        Write::Insert { task, position } => {
            // This backend finds no position in the insert: a create always brings one.
            let position = position
                .ok_or_else(|| sqlx::Error::Protocol("an insert without a position".into()))?;
            insert_task(conn, owner, task, position).await.map(Some)
        }
        Write::Move {
            id,
            position,
            expect,
        } => reposition(conn, owner, id, position, versions_json(expect).as_deref()).await,
        Write::Rekey {
            id,
            placement,
            expect,
        } => rekeyed_move(conn, owner, id, placement, versions_json(expect).as_deref()).await,
    }
}

/// An idempotency key being processed by this process, released when dropped.
pub struct InFlight {
    keys: Arc<Mutex<HashSet<(String, String)>>>,
    entry: (String, String),
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut keys) = self.keys.lock() {
            keys.remove(&self.entry);
        }
    }
}

fn task(row: Option<Row>) -> Result<Option<Task>, StoreError> {
    row.map(Task::try_from).transpose()
}

/// The database file belongs to this process, so the keys in flight are known here
/// ([`SqliteStore::claim`]); `BEGIN IMMEDIATE` takes the write lock first, so that the check
/// and the write of a keyed request cannot be overtaken by another connection.
impl Statements for SqliteStore {
    type Transaction = sqlx::Transaction<'static, Sqlite>;
    type Claim = InFlight;

    const POSITION_IN_INSERT: bool = false;

    async fn select_page(
        &self,
        owner: &UserId,
        query: &TaskQuery,
    ) -> Result<Vec<Task>, StoreError> {
        let mut sql = QueryBuilder::new(concat!("select ", task_columns!(), " from tasks"));
        push_filter(&mut sql, owner, &query.filter);
        super::sql::push_page(&mut sql, query, push_sort_value);
        let rows: Vec<Row> = sql
            .build_query_as()
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        row::all(rows)
    }

    async fn count_matching(&self, owner: &UserId, filter: &Filter) -> Result<i64, StoreError> {
        if *filter == Filter::default() {
            // Kept by triggers: one row, however many tasks.
            return sqlx::query_scalar(
                "select coalesce((select tasks from task_owners where user_id = ?1), 0)",
            )
            .bind(owner.as_str())
            .fetch_one(&self.pool)
            .await
            .map_err(db_error);
        }
        let mut sql = QueryBuilder::new("select count(*) from tasks");
        push_filter(&mut sql, owner, filter);
        sql.build_query_scalar()
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)
    }

    async fn select_task(&self, owner: &UserId, id: TaskId) -> Result<Option<Task>, StoreError> {
        let row: Option<Row> = sqlx::query_as(concat!(
            "select ",
            task_columns!(),
            " from tasks where user_id = ?1 and id = ?2 and deleted_at is null"
        ))
        .bind(owner.as_str())
        .bind(id.get())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        task(row)
    }

    async fn last_position(&self, owner: &UserId) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("select max(position) from tasks where user_id = ?1")
            .bind(owner.as_str())
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)
    }

    async fn position_of(&self, owner: &UserId, id: TaskId) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar(
            "select position from tasks where user_id = ?1 and id = ?2 and deleted_at is null",
        )
        .bind(owner.as_str())
        .bind(id.get())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)
    }

    async fn neighbour(
        &self,
        owner: &UserId,
        moving: TaskId,
        from: Option<&Position>,
        above: bool,
    ) -> Result<Option<String>, StoreError> {
        let sql = match (above, from.is_some()) {
            (true, true) => {
                "select min(position) from tasks where user_id = ?1 and id <> ?2 and position > ?3"
            }
            (false, true) => {
                "select max(position) from tasks where user_id = ?1 and id <> ?2 and position < ?3"
            }
            (true, false) => {
                "select min(position) from tasks where user_id = ?1 and id <> ?2 and ?3 is null"
            }
            (false, false) => {
                "select max(position) from tasks where user_id = ?1 and id <> ?2 and ?3 is null"
            }
        };
        sqlx::query_scalar(sql)
            .bind(owner.as_str())
            .bind(moving.get())
            .bind(from.map(Position::as_str))
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)
    }

    async fn execute(&self, owner: &UserId, write: Write<'_>) -> Result<Option<Task>, StoreError> {
        let row = match write {
            Write::Rekey { .. } => {
                let mut transaction = self.begin().await?;
                let row = apply(&mut transaction, owner, write)
                    .await
                    .map_err(db_error)?;
                transaction.commit().await.map_err(db_error)?;
                row
            }
            _ => {
                let mut conn = self.pool.acquire().await.map_err(db_error)?;
                apply(&mut conn, owner, write).await.map_err(db_error)?
            }
        };
        task(row)
    }

    async fn update_fields(
        &self,
        owner: &UserId,
        id: TaskId,
        changes: &UpdateTask,
        expect: &Expect,
    ) -> Result<Option<Task>, StoreError> {
        let description = changes.description.as_ref().map(|d| d.as_ref());
        // As in the PostgreSQL store: only a real change at an expected version moves
        // `version` and `updated_at`.
        let row: Option<Row> = sqlx::query_as(concat!(
            "update tasks set
                title = coalesce(?3, title),
                title_key = coalesce(?4, title_key),
                description = case when ?5 then ?6 else description end,
                description_key = case when ?5 then ?7 else description_key end,
                status = coalesce(?8, status),
                completed_at = case
                    when ?8 is null or ?8 = status then completed_at
                    when ?8 = 'completed' then ?9
                    else null end,
                due_at = case when ?10 then ?11 else due_at end,
                priority = coalesce(?12, priority),
                tags = coalesce(?13, tags),
                tag_keys = coalesce(?14, tag_keys),
                updated_at = max(?9, updated_at + 1),
                version = version + 1
             where user_id = ?1 and id = ?2 and deleted_at is null
                and (?15 is null or version in (select value from json_each(?15)))
                and (title is not coalesce(?3, title)
                or (?5 and description is not ?6)
                or status is not coalesce(?8, status)
                or (?10 and due_at is not ?11)
                or priority is not coalesce(?12, priority)
                or tags is not coalesce(?13, tags))
             returning ",
            task_columns!()
        ))
        .bind(owner.as_str())
        .bind(id.get())
        .bind(changes.title.as_ref().map(|t| t.as_str()))
        .bind(changes.title.as_ref().map(text::title_key))
        .bind(description.is_some())
        .bind(description.flatten().map(|d| d.as_str()))
        .bind(description.and_then(text::description_key))
        .bind(changes.status.map(|s| s.as_str()))
        .bind(to_micros(now()))
        .bind(changes.due_at.is_some())
        .bind(changes.due_at.flatten().map(|due| to_micros(due.get())))
        .bind(changes.priority.map(|p| i64::from(p.rank())))
        .bind(changes.tags.as_ref().map(json_names))
        .bind(changes.tags.as_ref().map(json_keys))
        .bind(versions_json(expect))
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        task(row)
    }

    async fn trash(&self, owner: &UserId, id: TaskId, expect: &Expect) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "update tasks set deleted_at = ?3
             where user_id = ?1 and id = ?2 and deleted_at is null
                and (?4 is null or version in (select value from json_each(?4)))",
        )
        .bind(owner.as_str())
        .bind(id.get())
        .bind(to_micros(now()))
        .bind(versions_json(expect))
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(result.rows_affected() > 0)
    }

    async fn untrash(&self, owner: &UserId, id: TaskId) -> Result<Option<Task>, StoreError> {
        let row: Option<Row> = sqlx::query_as(concat!(
            "update tasks set deleted_at = null, version = version + 1,
                updated_at = max(?3, updated_at + 1)
             where user_id = ?1 and id = ?2 and deleted_at is not null
             returning ",
            task_columns!()
        ))
        .bind(owner.as_str())
        .bind(id.get())
        .bind(to_micros(now()))
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        task(row)
    }

    fn claim(&self, owner: &UserId, key: &IdempotencyKey) -> Result<InFlight, StoreError> {
        let entry = (owner.as_str().to_owned(), key.key().to_owned());
        let mut keys = self
            .in_flight
            .lock()
            .map_err(|_| StoreError::Other("the idempotency key registry is poisoned".into()))?;
        if !keys.insert(entry.clone()) {
            return Err(StoreError::KeyInFlight);
        }
        Ok(InFlight {
            keys: self.in_flight.clone(),
            entry,
        })
    }

    async fn begin(&self) -> Result<Self::Transaction, StoreError> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db_error)
    }

    async fn lock_key(
        &self,
        _transaction: &mut Self::Transaction,
        _owner: &UserId,
        _key: &IdempotencyKey,
    ) -> Result<bool, StoreError> {
        // The claim and the write lock of `BEGIN IMMEDIATE` already keep others out.
        Ok(true)
    }

    async fn recorded(
        &self,
        transaction: &mut Self::Transaction,
        owner: &UserId,
        key: &IdempotencyKey,
        valid_after: DateTime<Utc>,
    ) -> Result<Option<ReplayRow>, StoreError> {
        sqlx::query_as(
            "select fingerprint, status, body, task_id, version from idempotency_keys
             where user_id = ?1 and key = ?2 and created_at > ?3",
        )
        .bind(owner.as_str())
        .bind(key.key())
        .bind(to_micros(valid_after))
        .fetch_optional(&mut **transaction)
        .await
        .map_err(db_error)
    }

    async fn execute_in(
        &self,
        transaction: &mut Self::Transaction,
        owner: &UserId,
        write: Write<'_>,
    ) -> Result<Option<Task>, StoreError> {
        task(apply(transaction, owner, write).await.map_err(db_error)?)
    }

    async fn record(
        &self,
        transaction: &mut Self::Transaction,
        owner: &UserId,
        key: &IdempotencyKey,
        outcome: Outcome,
        task: &Task,
        body: &str,
        now: DateTime<Utc>,
        _valid_after: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        // A live record would have been found in this transaction: what is there is expired.
        sqlx::query(
            "insert or replace into idempotency_keys
                (user_id, key, fingerprint, status, body, task_id, version, created_at)
             values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .bind(owner.as_str())
        .bind(key.key())
        .bind(key.fingerprint().as_slice())
        .bind(row::outcome_code(outcome))
        .bind(body)
        .bind(task.id.get())
        .bind(task.version)
        .bind(to_micros(now))
        .execute(&mut **transaction)
        .await
        .map_err(db_error)?;
        Ok(true)
    }

    async fn commit(&self, transaction: Self::Transaction) -> Result<(), StoreError> {
        transaction.commit().await.map_err(db_error)
    }

    async fn rollback(&self, transaction: Self::Transaction) {
        let _ = transaction.rollback().await;
    }

    async fn feed_rows(
        &self,
        owner: &UserId,
        since: ChangeCursor,
        limit: i64,
    ) -> Result<FeedRows, StoreError> {
        let rows: Vec<FeedRow> = sqlx::query_as(concat!(
            "select ",
            task_columns!(),
            ", change_seq from tasks where user_id = ?1 and change_seq > ?2
             order by change_seq limit ?3"
        ))
        .bind(owner.as_str())
        .bind(since.get())
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        let counters = sqlx::query_as(
            "select last_change, purged_through from task_owners where user_id = ?1",
        )
        .bind(owner.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        Ok((row::changes(rows)?, counters))
    }

    async fn counter_rows(&self, owners: &[UserId]) -> Result<Vec<(String, i64)>, StoreError> {
        let owners = serde_json::to_string(&owners.iter().map(UserId::as_str).collect::<Vec<_>>())
            .map_err(|error| StoreError::Other(error.into()))?;
        sqlx::query_as(
            "select user_id, last_change from task_owners
             where user_id in (select value from json_each(?1))",
        )
        .bind(owners)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)
    }

    async fn announce(&self, _owners: &[UserId]) -> Result<(), StoreError> {
        Ok(())
    }

    async fn purge_batch(
        &self,
        what: Purge,
        before: DateTime<Utc>,
        limit: i64,
    ) -> Result<u64, StoreError> {
        let sql = match what {
            Purge::Trashed => {
                "delete from tasks where id in (
                    select id from tasks where deleted_at < ?1 limit ?2)"
            }
            Purge::Keys => {
                "delete from idempotency_keys where rowid in (
                    select rowid from idempotency_keys where created_at < ?1 limit ?2)"
            }
        };
        let result = sqlx::query(sql)
            .bind(to_micros(before))
            .bind(limit)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(result.rows_affected())
    }

    async fn run_migrations(
        &self,
    ) -> Result<(Vec<i64>, &'static sqlx::migrate::Migrator), StoreError> {
        let before: Vec<i64> = sqlx::query_scalar(
            "select version from _sqlx_migrations
             where exists (select 1 from sqlite_master where name = '_sqlx_migrations')",
        )
        .fetch_all(&self.pool)
        .await
        .unwrap_or_default();
        MIGRATOR.run(&self.pool).await?;
        Ok((before, &MIGRATOR))
    }

    async fn unfolded(&self, limit: i64) -> Result<Vec<(i64, String, Option<String>)>, StoreError> {
        sqlx::query_as("select id, title, description from tasks where title_key is null limit ?1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)
    }

    async fn set_folded(
        &self,
        id: i64,
        title_key: String,
        description_key: Option<String>,
    ) -> Result<(), StoreError> {
        sqlx::query("update tasks set title_key = ?2, description_key = ?3 where id = ?1")
            .bind(id)
            .bind(title_key)
            .bind(description_key)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn keep_key(&self, name: &str, key: [u8; 32]) -> Result<Vec<u8>, StoreError> {
        sqlx::query("insert into service_keys (name, key) values (?1, ?2) on conflict do nothing")
            .bind(name)
            .bind(key.as_slice())
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        sqlx::query_scalar("select key from service_keys where name = ?1")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("select 1")
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    fn pool_status(&self) -> PoolStatus {
        PoolStatus {
            open: self.pool.size(),
            idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
            max: self.pool.options().get_max_connections(),
        }
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
