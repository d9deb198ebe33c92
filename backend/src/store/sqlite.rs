//! The SQLite store: the embedded default, so the service runs with no database server.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};

use sqlx::{QueryBuilder, Sqlite};

use super::row::{self, ChangeRow, ReplayRow, TaskRow, task_columns};
use super::{
    POSITION_ATTEMPTS, PoolSettings, PoolStatus, Purged, StoreError, TaskStore, classify,
    is_unique_violation, now, position_after, position_contention, text,
};
use crate::domain::query::fold;
use crate::domain::{
    ChangeCursor, ChangePage, CreateTask, Expect, Filter, IdempotencyKey, Once, Placement,
    Position, SortValue, Tags, Task, TaskId, TaskQuery, TaskStatus, UpdateTask, UserId,
};

/// Timestamps are integer microseconds since the Unix epoch; tags are JSON arrays.
type Row = TaskRow<i64, String>;
type FeedRow = ChangeRow<i64, String>;

/// How many rows one purge statement removes.
const PURGE_BATCH: i64 = 500;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a write waits for another connection's write to finish before giving up.
/// SQLite allows one writer at a time; this makes concurrent writes queue instead of fail.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Tasks in a SQLite file, through a connection pool.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Idempotency keys whose request is being processed (see [`SqliteStore::once`]).
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
/// [`super::rekeyed_order`]), if its version is one of `versions`; `conn` must be in a
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
    let rows: Vec<super::OrderRow> = sqlx::query_as(
        "select id, position, deleted_at is null from tasks where user_id = ?1 order by position",
    )
    .bind(owner.as_str())
    .fetch_all(&mut *conn)
    .await?;
    let Some(plan) = super::rekeyed_order(&rows, id, placement).filter(|_| admitted) else {
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
    super::admitted_versions(expect).map(|versions| serde_json::Value::from(versions).to_string())
}

/// An idempotency key being processed by this process, released when dropped.
struct InFlight<'a> {
    keys: &'a Mutex<HashSet<(String, String)>>,
    entry: (String, String),
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Ok(mut keys) = self.keys.lock() {
            keys.remove(&self.entry);
        }
    }
}

impl SqliteStore {
    /// Runs `write` and records its outcome under `key`, in one transaction (see the
    /// PostgreSQL store). The database file belongs to this process, so the keys in flight
    /// are known here; `BEGIN IMMEDIATE` takes the write lock first, so that the check and
    /// the write cannot be overtaken by another connection.
    async fn once(
        &self,
        owner: &UserId,
        key: &IdempotencyKey,
        status: u16,
        write: impl AsyncFnOnce(&mut SqliteConnection) -> Result<Option<Row>, sqlx::Error>,
    ) -> Result<Option<Once<Task>>, StoreError> {
        let _in_flight = self.claim(owner, key)?;
        let now = now();
        let mut transaction = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db_error)?;
        let outcome = async {
            let recorded: Option<ReplayRow> = sqlx::query_as(
                "select fingerprint, status, body, task_id, version from idempotency_keys
                 where user_id = ?1 and key = ?2 and created_at > ?3",
            )
            .bind(owner.as_str())
            .bind(key.key())
            .bind(to_micros(super::keys_valid_after(now)))
            .fetch_optional(&mut *transaction)
            .await
            .map_err(db_error)?;
            if let Some(recorded) = recorded {
                return super::replay(recorded, key).map(Some);
            }
            let Some(row) = write(&mut transaction).await.map_err(db_error)? else {
                return Ok(None);
            };
            let task = Task::try_from(row)?;
            sqlx::query(
                "insert or replace into idempotency_keys
                    (user_id, key, fingerprint, status, body, task_id, version, created_at)
                 values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .bind(owner.as_str())
            .bind(key.key())
            .bind(key.fingerprint().as_slice())
            .bind(i64::from(status))
            .bind(super::recorded_body(&task)?)
            .bind(task.id.get())
            .bind(task.version)
            .bind(to_micros(now))
            .execute(&mut *transaction)
            .await
            .map_err(db_error)?;
            Ok(Some(Once::Done(task)))
        }
        .await;
        match outcome {
            Ok(Some(Once::Done(task))) => {
                transaction.commit().await.map_err(db_error)?;
                Ok(Some(Once::Done(task)))
            }
            other => {
                // At once: until then the connection would hold the database's write lock.
                let _ = transaction.rollback().await;
                other
            }
        }
    }

    /// Marks `key` as in flight, or tells that it already is.
    fn claim(&self, owner: &UserId, key: &IdempotencyKey) -> Result<InFlight<'_>, StoreError> {
        let entry = (owner.as_str().to_owned(), key.key().to_owned());
        let mut keys = self
            .in_flight
            .lock()
            .map_err(|_| StoreError::Other("the idempotency key registry is poisoned".into()))?;
        if !keys.insert(entry.clone()) {
            return Err(StoreError::KeyInFlight);
        }
        Ok(InFlight {
            keys: &self.in_flight,
            entry,
        })
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
impl TaskStore for SqliteStore {
    async fn create(
        &self,
        owner: &UserId,
        task: CreateTask,
        key: Option<&IdempotencyKey>,
    ) -> Result<Once<Task>, StoreError> {
        for attempt in 0..POSITION_ATTEMPTS {
            let last: Option<String> =
                sqlx::query_scalar("select max(position) from tasks where user_id = ?1")
                    .bind(owner.as_str())
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db_error)?;
            let position = &position_after(last, attempt)?;
            let inserted = match key {
                None => {
                    async {
                        let mut conn = self.pool.acquire().await.map_err(db_error)?;
                        let row = insert_task(&mut conn, owner, &task, position)
                            .await
                            .map_err(db_error)?;
                        Ok(Once::Done(row.try_into()?))
                    }
                    .await
                }
                Some(key) => self
                    .once(owner, key, 201, async |conn| {
                        insert_task(conn, owner, &task, position).await.map(Some)
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
        let mut sql = QueryBuilder::new(concat!("select ", task_columns!(), " from tasks"));
        push_filter(&mut sql, owner, &query.filter);
        super::push_page(&mut sql, query, push_sort_value);
        let rows: Vec<Row> = sql
            .build_query_as()
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        row::all(rows)
    }

    async fn count(&self, owner: &UserId, filter: &Filter) -> Result<i64, StoreError> {
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

    async fn get(&self, owner: &UserId, id: TaskId) -> Result<Task, StoreError> {
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
        match row {
            Some(row) => row.try_into(),
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
        let versions = versions_json(expect);
        let versions = versions.as_deref();
        for _ in 0..POSITION_ATTEMPTS {
            let Some((lower, upper)) = super::bounds(self, owner, id, placement).await? else {
                return Ok(Once::Done(self.unwritten(owner, id, expect).await?));
            };
            let position = &Position::between(lower.as_ref(), upper.as_ref())
                .map_err(|error| StoreError::Other(error.into()))?;
            // A key past the limit: every key of the owner is rewritten, in one transaction.
            let rekey = position.is_too_long();
            let write = async |conn: &mut SqliteConnection| match rekey {
                true => rekeyed_move(conn, owner, id, placement, versions).await,
                false => reposition(conn, owner, id, position, versions).await,
            };
            let moved = match key {
                None => {
                    async {
                        let mut transaction = self
                            .pool
                            .begin_with("BEGIN IMMEDIATE")
                            .await
                            .map_err(db_error)?;
                        let row = write(&mut transaction).await.map_err(db_error)?;
                        transaction.commit().await.map_err(db_error)?;
                        row.map(|row| Ok(Once::Done(row.try_into()?))).transpose()
                    }
                    .await
                }
                Some(key) => self.once(owner, key, 200, write).await,
            };
            match moved {
                Err(error) if is_unique_violation(&error) => continue,
                Err(error) => return Err(error),
                Ok(Some(once)) => return Ok(once),
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
        match result.rows_affected() {
            0 => self
                .unwritten(owner, id, expect)
                .await
                .and(Err(StoreError::NotFound)),
            _ => Ok(()),
        }
    }

    async fn restore(&self, owner: &UserId, id: TaskId) -> Result<Task, StoreError> {
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
        let rows: Vec<FeedRow> = sqlx::query_as(concat!(
            "select ",
            task_columns!(),
            ", change_seq from tasks where user_id = ?1 and change_seq > ?2
             order by change_seq limit ?3"
        ))
        .bind(owner.as_str())
        .bind(since.get())
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        let counters: Option<(i64, i64)> = sqlx::query_as(
            "select last_change, purged_through from task_owners where user_id = ?1",
        )
        .bind(owner.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        super::feed_page(rows, since, limit, counters)
    }

    async fn purge(
        &self,
        trashed_before: DateTime<Utc>,
        keys_before: DateTime<Utc>,
    ) -> Result<Purged, StoreError> {
        let mut purged = Purged::default();
        // In batches, so that no single write holds SQLite's one write lock for long.
        for (sql, before, total) in [
            (
                "delete from tasks where id in (
                    select id from tasks where deleted_at < ?1 limit ?2)",
                trashed_before,
                &mut purged.tasks,
            ),
            (
                "delete from idempotency_keys where rowid in (
                    select rowid from idempotency_keys where created_at < ?1 limit ?2)",
                keys_before,
                &mut purged.keys,
            ),
        ] {
            loop {
                let batch = sqlx::query(sql)
                    .bind(to_micros(before))
                    .bind(PURGE_BATCH)
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)?
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
        let owners = serde_json::to_string(&owners.iter().map(UserId::as_str).collect::<Vec<_>>())
            .map_err(|error| StoreError::Other(error.into()))?;
        let rows = sqlx::query_as(
            "select user_id, last_change from task_owners
             where user_id in (select value from json_each(?1))",
        )
        .bind(owners)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(super::counters(rows))
    }

    async fn announce(&self, _owners: &[UserId]) -> Result<(), StoreError> {
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("select 1")
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let before: Vec<i64> = sqlx::query_scalar(
            "select version from _sqlx_migrations
             where exists (select 1 from sqlite_master where name = '_sqlx_migrations')",
        )
        .fetch_all(&self.pool)
        .await
        .unwrap_or_default();
        MIGRATOR.run(&self.pool).await?;
        super::report_migrations(&MIGRATOR, &before);
        self.fold_unfolded_rows().await
    }

    async fn shared_key(&self, name: &str) -> Result<[u8; 32], StoreError> {
        let candidate = super::random_key()?;
        sqlx::query("insert into service_keys (name, key) values (?1, ?2) on conflict do nothing")
            .bind(name)
            .bind(candidate.as_slice())
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        let key: Vec<u8> = sqlx::query_scalar("select key from service_keys where name = ?1")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
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

impl super::Positions for SqliteStore {
    async fn position_of(&self, owner: &UserId, id: TaskId) -> Result<Position, StoreError> {
        let position: Option<String> = sqlx::query_scalar(
            "select position from tasks where user_id = ?1 and id = ?2 and deleted_at is null",
        )
        .bind(owner.as_str())
        .bind(id.get())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        super::stored_position(position.ok_or(StoreError::NotFound)?)
    }

    async fn neighbour(
        &self,
        owner: &UserId,
        moving: TaskId,
        from: Option<&Position>,
        above: bool,
    ) -> Result<Option<Position>, StoreError> {
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
        let position: Option<String> = sqlx::query_scalar(sql)
            .bind(owner.as_str())
            .bind(moving.get())
            .bind(from.map(Position::as_str))
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        position.map(super::stored_position).transpose()
    }
}

impl SqliteStore {
    /// Fills in the folded title and description of rows written before those columns
    /// existed (see the PostgreSQL store).
    async fn fold_unfolded_rows(&self) -> Result<(), StoreError> {
        loop {
            let rows: Vec<(i64, String, Option<String>)> = sqlx::query_as(
                "select id, title, description from tasks where title_key is null limit 500",
            )
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
            if rows.is_empty() {
                return Ok(());
            }
            for (id, title, description) in rows {
                sqlx::query("update tasks set title_key = ?2, description_key = ?3 where id = ?1")
                    .bind(id)
                    .bind(fold(&title))
                    .bind(description.as_deref().map(fold))
                    .execute(&self.pool)
                    .await
                    .map_err(db_error)?;
            }
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
