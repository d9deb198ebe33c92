//! The SQLite store: the embedded default, so the service runs with no database server.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use sqlx::{QueryBuilder, Sqlite};

use super::row::{self, TaskRow, task_columns};
use super::{
    POSITION_ATTEMPTS, PoolSettings, StoreError, TaskStore, classify, is_unique_violation, now,
    position_after, position_contention, text,
};
use crate::domain::query::fold;
use crate::domain::{
    CreateTask, Filter, Placement, Position, SortValue, Tags, Task, TaskId, TaskQuery, TaskStatus,
    UpdateTask, UserId,
};

/// Timestamps are integer microseconds since the Unix epoch; tags are JSON arrays.
type Row = TaskRow<i64, String>;

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

#[async_trait]
impl TaskStore for SqliteStore {
    async fn create(&self, owner: &UserId, task: CreateTask) -> Result<Task, StoreError> {
        let now = to_micros(now());
        let status = task.status.unwrap_or_default();
        let tags = task.tags.unwrap_or_default();
        for attempt in 0..POSITION_ATTEMPTS {
            let last: Option<String> =
                sqlx::query_scalar("select max(position) from tasks where user_id = ?1")
                    .bind(owner.as_str())
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db_error)?;
            let position = position_after(last, attempt)?;
            let inserted: Result<Row, StoreError> = sqlx::query_as(concat!(
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
            .fetch_one(&self.pool)
            .await
            .map_err(db_error);
            match inserted {
                Err(error) if is_unique_violation(&error) => continue,
                result => return result?.try_into(),
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
                "select coalesce((select tasks from task_counts where user_id = ?1), 0)",
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
            " from tasks where user_id = ?1 and id = ?2"
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
        let description = changes.description.as_ref().map(|d| d.as_ref());
        // As in the PostgreSQL store: only a real change moves `version` and `updated_at`.
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
             where user_id = ?1 and id = ?2 and (
                title is not coalesce(?3, title)
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
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        match row {
            Some(row) => row.try_into(),
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
            let moved: Result<Option<Row>, StoreError> = sqlx::query_as(concat!(
                "update tasks set position = ?3, version = version + 1,
                    updated_at = max(?4, updated_at + 1)
                 where user_id = ?1 and id = ?2
                 returning ",
                task_columns!()
            ))
            .bind(owner.as_str())
            .bind(id.get())
            .bind(position.as_str())
            .bind(to_micros(now()))
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error);
            match moved {
                Err(error) if is_unique_violation(&error) => continue,
                result => return row::found(result?),
            }
        }
        Err(position_contention())
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

    async fn close(&self) {
        self.pool.close().await;
    }
}

impl super::Positions for SqliteStore {
    async fn position_of(&self, owner: &UserId, id: TaskId) -> Result<Position, StoreError> {
        let position: Option<String> =
            sqlx::query_scalar("select position from tasks where user_id = ?1 and id = ?2")
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
