//! The SQLite store: the embedded default, so the service runs with no database server.

mod calendars;
mod sharing;

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
use super::row::{
    self, ChangeRow, ListRow, NodeRow, ReplayRow, TaskRow, list_columns, task_columns,
};
use super::statements::{
    Cascade, FeedBounds, FeedRows, InvitationRequest, Node, Purge, Statements, Write,
    admitted_versions, now,
};
use super::tasks::{OrderRow, position_after, rekeyed_order};

use super::{PoolSettings, PoolStatus, StoreError, text};
use crate::domain::list::{Accepted, CreateList, Invitation, Member, UpdateList};
use crate::domain::query::{Assignee, Parent};
use crate::domain::{
    ChangeCursor, CreateTask, Expect, Filter, IdempotencyKey, List, ListId, Outcome, Placement,
    Position, Recurrence, Role, SortValue, Tags, Task, TaskId, TaskQuery, TaskStatus, TaskUid,
    Timestamp, UpdateTask, UserId,
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
    /// The ids of the caller's live lists that `filter` reads (the one it names, or all), in
    /// id order: what [`push_filter`] writes out.
    async fn live_lists(&self, owner: &UserId, filter: &Filter) -> Result<Vec<i64>, StoreError> {
        sqlx::query_scalar(
            "select m.list_id from list_members m join lists l on l.id = m.list_id
             where m.user_id = ?1 and l.deleted_at is null and (?2 is null or m.list_id = ?2)
             order by m.list_id",
        )
        .bind(owner.as_str())
        .bind(filter.list.map(ListId::get))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)
    }

    /// Gathers the statistics SQLite's planner lacks, where they are missing or stale, within a
    /// bounded effort (SQLite's advice for long-lived connections). Without them it guesses
    /// the size of each list, and may scan every task to find a few.
    async fn optimize(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(db_error)?;
        sqlx::query("pragma analysis_limit = 1000")
            .execute(&mut *conn)
            .await
            .map_err(db_error)?;
        sqlx::query("pragma optimize = 0x10002")
            .execute(&mut *conn)
            .await
            .map_err(db_error)?;
        Ok(())
    }

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

pub(super) fn to_micros(time: chrono::DateTime<chrono::Utc>) -> i64 {
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

/// Whether the search of `filter` reads the trigram index (three characters at least: a
/// shorter query has no trigram to look up).
fn searches_by_index(filter: &Filter) -> bool {
    filter
        .search
        .as_ref()
        .is_some_and(|search| search.chars().count() >= 3)
}

/// At most this many lists are read list by list and merged; a caller with more has their
/// page sorted from every match (SQLite caps the terms of a compound select at 500).
const MERGED_LISTS: usize = 32;

/// `where` with `lists` (of the caller's, those `filter` reads: [`SqliteStore::live_lists`])
/// and every filter of `filter`.
///
/// The ids are written out so that SQLite's planner reads each list through its indexes: given
/// the subquery alone it guesses many lists and scans the whole table. The subquery stays too,
/// so that the membership holds at the moment this statement reads, whatever happened since
/// the ids were read.
fn push_filter(query: &mut QueryBuilder<Sqlite>, owner: &UserId, lists: &[i64], filter: &Filter) {
    query.push(" where list_id in (");
    let mut ids = query.separated(", ");
    for list in lists {
        ids.push_bind(*list);
    }
    query
        // The live lists: a list in the trash takes its tasks with it, out of every view
        // (the trash of tasks included) until it is restored.
        .push(
            ") and list_id in (select m.list_id from list_members m join lists l \
             on l.id = m.list_id where l.deleted_at is null and m.user_id = ",
        )
        .push_bind(owner.as_str().to_owned())
        .push(")");
    match &filter.assignee {
        None => {}
        Some(Assignee::Nobody) => {
            query.push(" and assignee_id is null");
        }
        Some(Assignee::Me) => {
            query
                .push(" and assignee_id = ")
                .push_bind(owner.as_str().to_owned());
        }
        Some(Assignee::User(user)) => {
            query
                .push(" and assignee_id = ")
                .push_bind(user.as_str().to_owned());
        }
    }
    match filter.parent {
        None => {}
        Some(Parent::Nobody) => {
            query.push(" and parent_id is null");
        }
        Some(Parent::Task(parent)) => {
            query.push(" and parent_id = ").push_bind(parent.get());
        }
    }
    if let Some(uid) = &filter.uid {
        query.push(" and uid = ").push_bind(uid.as_str().to_owned());
    }
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
        if searches_by_index(filter) {
            // The trigram index: a quoted phrase of trigrams in a row is the substring, within
            // one column, exactly as instr() finds it.
            query
                .push(" and tasks.id in (select rowid from tasks_search where tasks_search match ")
                .push_bind(format!("\"{}\"", search.replace('"', "\"\"")))
                .push(")");
        } else {
            // Too short for a trigram: instr() is an exact substring test, no pattern
            // characters to escape.
            query
                .push(" and (instr(title_key, ")
                .push_bind(search.clone())
                .push(") > 0 or instr(coalesce(description_key, ''), ")
                .push_bind(search.clone())
                .push(") > 0)");
        }
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

/// `list_id` is one of the live lists the caller (`?1`) may write.
macro_rules! writable {
    () => {
        "list_id in (select m.list_id from list_members m join lists l on l.id = m.list_id
            where m.user_id = ?1 and m.role <> 'viewer' and l.deleted_at is null)"
    };
}

/// `list_id` is one of the lists the caller (`?1`) is a member of.
macro_rules! readable {
    () => {
        "list_id in (select list_id from list_members where user_id = ?1)"
    };
}

/// The next feed position, taken (SQLite has one writer: the counter is in commit order).
pub(super) async fn next_position(conn: &mut SqliteConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("update feed_clock set last = last + 1 returning last")
        .fetch_one(conn)
        .await
}

/// The key after the last of the user's lists in their own order.
pub(super) async fn next_list_position(
    conn: &mut SqliteConnection,
    owner: &UserId,
) -> Result<Position, sqlx::Error> {
    let last: Option<String> =
        sqlx::query_scalar("select max(position) from list_members where user_id = ?1")
            .bind(owner.as_str())
            .fetch_one(&mut *conn)
            .await?;
    position_after(last, 0).map_err(|error| sqlx::Error::Protocol(error.to_string()))
}

/// The caller's Inbox, made if it is not there yet; `conn` must hold the write lock.
async fn inbox_for(conn: &mut SqliteConnection, owner: &UserId) -> Result<i64, sqlx::Error> {
    let found: Option<i64> = sqlx::query_scalar("select id from lists where inbox_of = ?1")
        .bind(owner.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    if let Some(found) = found {
        return Ok(found);
    }
    let now = to_micros(now());
    let pos = next_position(&mut *conn).await?;
    let id: i64 = sqlx::query_scalar(
        "insert into lists (owner_id, inbox_of, name, change_pos, last_pos, created_at,
            updated_at)
         values (?1, ?1, 'Inbox', ?2, ?2, ?3, ?3) returning id",
    )
    .bind(owner.as_str())
    .bind(pos)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    let position = next_list_position(&mut *conn, owner).await?;
    sqlx::query(
        "insert into list_members (list_id, user_id, role, position, joined_at, joined_pos,
            change_pos)
         values (?1, ?2, 'owner', ?3, ?4, 0, 0)",
    )
    .bind(id)
    .bind(owner.as_str())
    .bind(position.as_str())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(id)
}

/// A new list owned by `owner`, at the end of their order: its id, or `None` past the
/// limit. `conn` must hold the write lock.
async fn insert_list(
    conn: &mut SqliteConnection,
    owner: &UserId,
    list: &CreateList,
) -> Result<Option<i64>, sqlx::Error> {
    let count: i64 = sqlx::query_scalar("select count(*) from list_members where user_id = ?1")
        .bind(owner.as_str())
        .fetch_one(&mut *conn)
        .await?;
    if count >= crate::domain::list::MAX_LISTS_PER_USER {
        return Ok(None);
    }
    let now = to_micros(now());
    let pos = next_position(&mut *conn).await?;
    let id: i64 = sqlx::query_scalar(
        "insert into lists (owner_id, name, color, change_pos, last_pos, created_at, updated_at)
         values (?1, ?2, ?3, ?4, ?4, ?5, ?5) returning id",
    )
    .bind(owner.as_str())
    .bind(list.name.as_str())
    .bind(list.color.as_ref().map(|c| c.as_str()))
    .bind(pos)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    let position = next_list_position(&mut *conn, owner).await?;
    sqlx::query(
        "insert into list_members (list_id, user_id, role, position, joined_at, joined_pos,
            change_pos)
         values (?1, ?2, 'owner', ?3, ?4, 0, 0)",
    )
    .bind(id)
    .bind(owner.as_str())
    .bind(position.as_str())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(Some(id))
}

/// The insert of a new task into `list` (without one, the caller's Inbox) at `position`
/// (without one, after the list's last task): only into a live list the caller may write,
/// with an assignee who is a member of it.
async fn insert_task(
    conn: &mut SqliteConnection,
    owner: &UserId,
    task: &CreateTask,
    list: Option<ListId>,
    position: Option<&Position>,
) -> Result<Option<Row>, sqlx::Error> {
    let list = match list {
        Some(list) => list.get(),
        None => inbox_for(&mut *conn, owner).await?,
    };
    let position = match position {
        Some(position) => position.clone(),
        None => {
            let last: Option<String> =
                sqlx::query_scalar("select max(position) from tasks where list_id = ?1")
                    .bind(list)
                    .fetch_one(&mut *conn)
                    .await?;
            position_after(last, 0).map_err(|error| sqlx::Error::Protocol(error.to_string()))?
        }
    };
    let now = to_micros(now());
    let status = task.status.unwrap_or_default();
    let tags = task.tags.clone().unwrap_or_default();
    let uid = task.uid.clone().unwrap_or_else(TaskUid::random);
    // A parent must be a live task of the list with fewer than three ancestors (a fourth
    // level at most).
    sqlx::query_as(concat!(
        "insert into tasks (user_id, title, title_key, description, description_key,
            status, created_at, updated_at, due_at, priority, tags, tag_keys, position,
            completed_at, list_id, assignee_id, uid, parent_id, recurrence, ical, dav_name)
         select ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
            ?17, ?18, ?19, ?20
         where ?14 in (select m.list_id from list_members m join lists l on l.id = m.list_id
                where m.user_id = ?1 and m.role <> 'viewer' and l.deleted_at is null)
            and (?15 is null or exists (
                select 1 from list_members a where a.list_id = ?14 and a.user_id = ?15))
            and (?17 is null or exists (
                select 1 from tasks p where p.id = ?17 and p.list_id = ?14
                    and p.deleted_at is null
                    and (select g.parent_id from tasks a join tasks g on g.id = a.parent_id
                        where a.id = p.parent_id) is null))
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
    .bind((status == TaskStatus::Completed).then(|| task.completed_at.map_or(now, to_micros)))
    .bind(list)
    .bind(task.assignee_id.as_ref().map(UserId::as_str))
    .bind(uid.as_str())
    .bind(task.parent_id.map(TaskId::get))
    .bind(task.recurrence.as_ref().map(|recurrence| {
        recurrence
            .starting(task.due_at.map(Timestamp::get), 0)
            .to_stored()
    }))
    .bind(task.ical.as_deref())
    .bind(task.dav_name.as_deref())
    .fetch_optional(conn)
    .await
}

/// The update of `changes` to a live task the caller may write, at a version `expect` admits,
/// if some field really differs (or `completes`: an occurrence is completed, its count goes up).
async fn update_row(
    conn: &mut SqliteConnection,
    owner: &UserId,
    id: TaskId,
    (changes, expect, completes): (&UpdateTask, &Expect, bool),
) -> Result<Option<Row>, StoreError> {
    let description = changes.description.as_ref().map(|d| d.as_ref());
    let parent = changes.parent_id.map(|parent| parent.map(TaskId::get));
    let recurrence = changes
        .recurrence
        .as_ref()
        .map(|recurrence| recurrence.as_ref().map(Recurrence::to_stored));
    // Into another list: after its last task.
    let target_position = match changes.list_id {
        None => None,
        Some(list) => Some(
            position_after(last_position_in(&mut *conn, list).await?, 0)?
                .as_str()
                .to_owned(),
        ),
    };
    // As in the PostgreSQL store: only a real change at an expected version moves
    // `version` and `updated_at`.
    sqlx::query_as(concat!(
        "update tasks set
            title = coalesce(?3, title),
            title_key = coalesce(?4, title_key),
            description = case when ?5 then ?6 else description end,
            description_key = case when ?5 then ?7 else description_key end,
            status = coalesce(?8, status),
            completed_at = case
                when ?8 is null or ?8 = status then completed_at
                when ?8 = 'completed' then coalesce(?28, ?9)
                else null end,
            due_at = case when ?10 then ?11 else due_at end,
            priority = coalesce(?12, priority),
            tags = coalesce(?13, tags),
            tag_keys = coalesce(?14, tag_keys),
            list_id = coalesce(?16, list_id),
            position = case when ?16 is null or ?16 = list_id then position else ?19 end,
            assignee_id = case when ?17 then ?18
                when ?16 is null or ?16 = list_id then assignee_id
                when exists (select 1 from list_members a
                    where a.list_id = ?16 and a.user_id = assignee_id) then assignee_id
                else null end,
            parent_id = case when ?20 then ?21
                when ?16 is null or ?16 = list_id then parent_id
                else null end,
            recurrence = case when ?22 then ?23 else recurrence end,
            ical = coalesce(?25, ical),
            dav_name = case when ?26 then ?27 else dav_name end,
            completed_count = completed_count + ?24,
            last_completed_at = case when ?24 then ?9 else last_completed_at end,
            updated_at = max(?9, updated_at + 1),
            version = version + 1
         where id = ?2 and deleted_at is null and ",
        writable!(),
        " and (?15 is null or version in (select value from json_each(?15)))
            and (?16 is null or ?16 in (
                select m.list_id from list_members m join lists l on l.id = m.list_id
                where m.user_id = ?1 and m.role <> 'viewer' and l.deleted_at is null))
            and (not ?17 or ?18 is null or exists (
                select 1 from list_members a
                where a.list_id = coalesce(?16, tasks.list_id) and a.user_id = ?18))
            and (title is not coalesce(?3, title)
            or (?5 and description is not ?6)
            or status is not coalesce(?8, status)
            or (?10 and due_at is not ?11)
            or priority is not coalesce(?12, priority)
            or tags is not coalesce(?13, tags)
            or list_id is not coalesce(?16, list_id)
            or (?17 and assignee_id is not ?18)
            or (?20 and parent_id is not ?21)
            or (?22 and recurrence is not ?23)
            or ical is not coalesce(?25, ical)
            or (?26 and dav_name is not ?27)
            or ?24)
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
    .bind(changes.list_id.map(ListId::get))
    .bind(changes.assignee_id.is_some())
    .bind(
        changes
            .assignee_id
            .as_ref()
            .and_then(|a| a.as_ref())
            .map(UserId::as_str),
    )
    .bind(target_position)
    .bind(parent.is_some())
    .bind(parent.flatten())
    .bind(recurrence.is_some())
    .bind(recurrence.flatten())
    .bind(completes)
    .bind(changes.ical.as_deref())
    .bind(changes.dav_name.is_some())
    .bind(changes.dav_name.as_ref().and_then(|name| name.as_deref()))
    .bind(changes.completed_at.map(to_micros))
    .fetch_optional(conn)
    .await
    .map_err(db_error)
}

/// The key of the last task of `list`, as `conn` sees it.
async fn last_position_in(
    conn: &mut SqliteConnection,
    list: ListId,
) -> Result<Option<String>, StoreError> {
    sqlx::query_scalar("select max(position) from tasks where list_id = ?1")
        .bind(list.get())
        .fetch_one(conn)
        .await
        .map_err(db_error)
}

/// The move of a live task from the key `from` to `position`, if its version is one of
/// `versions` (a JSON array, or `None` for any).
async fn reposition(
    conn: &mut SqliteConnection,
    owner: &UserId,
    id: TaskId,
    list: ListId,
    position: &Position,
    from: &str,
    versions: Option<&str>,
) -> Result<Option<Row>, sqlx::Error> {
    sqlx::query_as(concat!(
        "update tasks set position = ?3, version = version + 1,
            updated_at = max(?4, updated_at + 1)
         where id = ?2 and list_id = ?6 and position = ?7 and deleted_at is null
            and (?5 is null or version in (select value from json_each(?5))) and ",
        writable!(),
        " returning ",
        task_columns!()
    ))
    .bind(owner.as_str())
    .bind(id.get())
    .bind(position.as_str())
    .bind(to_micros(now()))
    .bind(versions)
    .bind(list.get())
    .bind(from)
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
    list: ListId,
    placement: Placement,
    versions: Option<&str>,
) -> Result<Option<Row>, sqlx::Error> {
    let admitted: bool = sqlx::query_scalar(concat!(
        "select exists(select 1 from tasks
            where id = ?2 and list_id = ?4 and deleted_at is null
            and (?3 is null or version in (select value from json_each(?3))) and ",
        writable!(),
        ")"
    ))
    .bind(owner.as_str())
    .bind(id.get())
    .bind(versions)
    .bind(list.get())
    .fetch_one(&mut *conn)
    .await?;
    let rows: Vec<OrderRow> = sqlx::query_as(
        "select id, position, deleted_at is null from tasks where list_id = ?1 order by position",
    )
    .bind(list.get())
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
             where list_id = ?1 and id = ?2",
        )
        .bind(list.get())
        .bind(task)
        .bind(key.as_str())
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query_as(concat!(
        "select ",
        task_columns!(),
        " from tasks where list_id = ?1 and id = ?2"
    ))
    .bind(list.get())
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
        Write::Insert {
            task,
            list,
            position,
        } => insert_task(conn, owner, task, list, position).await,
        Write::Move {
            id,
            list,
            position,
            from,
            expect,
        } => {
            let versions = versions_json(expect);
            reposition(conn, owner, id, list, position, from, versions.as_deref()).await
        }
        Write::Rekey {
            id,
            list,
            placement,
            expect,
        } => {
            let versions = versions_json(expect);
            rekeyed_move(conn, owner, id, list, placement, versions.as_deref()).await
        }
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

/// A list row of the feed with its position.
#[derive(sqlx::FromRow)]
struct ListFeedRow {
    pos: i64,
    #[sqlx(flatten)]
    list: ListRow<i64>,
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
        let lists = self.live_lists(owner, &query.filter).await?;
        if lists.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = QueryBuilder::new(concat!("select ", task_columns!(), " from "));
        // A search by the index finds few tasks, all at once: one statement sorts them, where
        // each list's part would look them all up again.
        if lists.len() == 1 || lists.len() > MERGED_LISTS || searches_by_index(&query.filter) {
            sql.push("tasks");
            push_filter(&mut sql, owner, &lists, &query.filter);
            super::sql::push_page(&mut sql, query, push_sort_value);
        } else {
            // List by list, each through its own index in the page's order and only as far as
            // the page reaches, then merged: sorting every match of every list costs the
            // whole of them.
            sql.push("(");
            for (n, list) in lists.iter().enumerate() {
                if n > 0 {
                    sql.push(" union all ");
                }
                // title_key too: the title sort orders the merge by it.
                sql.push(concat!(
                    "select * from (select ",
                    task_columns!(),
                    ", title_key from tasks"
                ));
                push_filter(&mut sql, owner, &[*list], &query.filter);
                super::sql::push_keyset(&mut sql, query, push_sort_value);
                super::sql::push_order(&mut sql, query);
                sql.push(" limit ")
                    .push_bind(i64::from(query.limit).saturating_add(query.offset))
                    .push(")");
            }
            sql.push(")");
            super::sql::push_order(&mut sql, query);
            sql.push(" limit ").push_bind(i64::from(query.limit));
            sql.push(" offset ").push_bind(query.offset);
        }
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
                "select coalesce(sum(l.live_tasks), 0)
                 from list_members m join lists l on l.id = m.list_id where m.user_id = ?1",
            )
            .bind(owner.as_str())
            .fetch_one(&self.pool)
            .await
            .map_err(db_error);
        }
        let lists = self.live_lists(owner, filter).await?;
        if lists.is_empty() {
            return Ok(0);
        }
        let mut sql = QueryBuilder::new("select count(*) from tasks");
        push_filter(&mut sql, owner, &lists, filter);
        sql.build_query_scalar()
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)
    }

    async fn select_task(&self, owner: &UserId, id: TaskId) -> Result<Option<Task>, StoreError> {
        let row: Option<Row> = sqlx::query_as(concat!(
            "select ",
            task_columns!(),
            " from tasks where id = ?2 and deleted_at is null and ",
            readable!()
        ))
        .bind(owner.as_str())
        .bind(id.get())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        task(row)
    }

    async fn list_of_task(&self, owner: &UserId, id: TaskId) -> Result<Option<ListId>, StoreError> {
        let list: Option<i64> = sqlx::query_scalar(concat!(
            "select list_id from tasks where id = ?2 and ",
            readable!()
        ))
        .bind(owner.as_str())
        .bind(id.get())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        list.map(|list| {
            ListId::try_from(list)
                .map_err(|_| StoreError::Other(format!("corrupt list id {list}").into()))
        })
        .transpose()
    }

    async fn role_in(&self, owner: &UserId, list: ListId) -> Result<Option<Role>, StoreError> {
        let role: Option<String> = sqlx::query_scalar(
            "select m.role from list_members m join lists l on l.id = m.list_id
             where m.user_id = ?1 and m.list_id = ?2 and l.deleted_at is null",
        )
        .bind(owner.as_str())
        .bind(list.get())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(role.as_deref().and_then(Role::parse))
    }

    async fn is_member(&self, list: ListId, user: &UserId) -> Result<bool, StoreError> {
        sqlx::query_scalar(
            "select exists (select 1 from list_members where list_id = ?1 and user_id = ?2)",
        )
        .bind(list.get())
        .bind(user.as_str())
        .fetch_one(&self.pool)
        .await
        .map_err(db_error)
    }

    async fn last_position(&self, list: ListId) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("select max(position) from tasks where list_id = ?1")
            .bind(list.get())
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)
    }

    async fn position_of(
        &self,
        owner: &UserId,
        id: TaskId,
    ) -> Result<Option<(ListId, String)>, StoreError> {
        let row: Option<(i64, String)> = sqlx::query_as(concat!(
            "select list_id, position from tasks where id = ?2 and deleted_at is null and ",
            readable!()
        ))
        .bind(owner.as_str())
        .bind(id.get())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        row.map(|(list, key)| {
            ListId::try_from(list)
                .map(|list| (list, key))
                .map_err(|_| StoreError::Other(format!("corrupt list id {list}").into()))
        })
        .transpose()
    }

    async fn neighbour(
        &self,
        list: ListId,
        moving: TaskId,
        from: Option<&Position>,
        above: bool,
    ) -> Result<Option<String>, StoreError> {
        let sql = match (above, from.is_some()) {
            (true, true) => {
                "select min(position) from tasks where list_id = ?1 and id <> ?2 and position > ?3"
            }
            (false, true) => {
                "select max(position) from tasks where list_id = ?1 and id <> ?2 and position < ?3"
            }
            (true, false) => {
                "select min(position) from tasks where list_id = ?1 and id <> ?2 and ?3 is null"
            }
            (false, false) => {
                "select max(position) from tasks where list_id = ?1 and id <> ?2 and ?3 is null"
            }
        };
        sqlx::query_scalar(sql)
            .bind(list.get())
            .bind(moving.get())
            .bind(from.map(Position::as_str))
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)
    }

    async fn inbox(&self, owner: &UserId) -> Result<ListId, StoreError> {
        self.ensure_inbox(owner).await?;
        let id: i64 = sqlx::query_scalar("select id from lists where inbox_of = ?1")
            .bind(owner.as_str())
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)?;
        ListId::try_from(id).map_err(|_| StoreError::Other(format!("corrupt list id {id}").into()))
    }

    async fn ensure_inbox(&self, owner: &UserId) -> Result<(), StoreError> {
        let exists: bool =
            sqlx::query_scalar("select exists (select 1 from lists where inbox_of = ?1)")
                .bind(owner.as_str())
                .fetch_one(&self.pool)
                .await
                .map_err(db_error)?;
        if exists {
            return Ok(());
        }
        let mut transaction = self.begin().await?;
        inbox_for(&mut transaction, owner).await.map_err(db_error)?;
        transaction.commit().await.map_err(db_error)
    }

    async fn select_lists(&self, owner: &UserId) -> Result<Vec<List>, StoreError> {
        let rows: Vec<ListRow<i64>> = sqlx::query_as(concat!(
            "select ",
            list_columns!(),
            " from list_members m join lists l on l.id = m.list_id
             where m.user_id = ?1 and l.deleted_at is null order by m.position"
        ))
        .bind(owner.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        row::lists(rows)
    }

    async fn select_list(
        &self,
        owner: &UserId,
        list: ListId,
        trashed: bool,
    ) -> Result<Option<List>, StoreError> {
        let row: Option<ListRow<i64>> = sqlx::query_as(concat!(
            "select ",
            list_columns!(),
            " from list_members m join lists l on l.id = m.list_id
             where m.user_id = ?1 and l.id = ?2 and (l.deleted_at is not null) = ?3"
        ))
        .bind(owner.as_str())
        .bind(list.get())
        .bind(trashed)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        row.map(List::try_from).transpose()
    }

    async fn insert_list(
        &self,
        owner: &UserId,
        list: &CreateList,
    ) -> Result<Option<List>, StoreError> {
        let mut transaction = self.begin().await?;
        let id = insert_list(&mut transaction, owner, list)
            .await
            .map_err(db_error)?;
        transaction.commit().await.map_err(db_error)?;
        match id.map(ListId::try_from) {
            Some(Ok(id)) => self.select_list(owner, id, false).await,
            _ => Ok(None),
        }
    }

    async fn insert_list_in(
        &self,
        transaction: &mut Self::Transaction,
        owner: &UserId,
        list: &CreateList,
    ) -> Result<Option<List>, StoreError> {
        let Some(id) = insert_list(transaction, owner, list)
            .await
            .map_err(db_error)?
        else {
            return Ok(None);
        };
        let row: Option<ListRow<i64>> = sqlx::query_as(concat!(
            "select ",
            list_columns!(),
            " from list_members m join lists l on l.id = m.list_id
             where m.user_id = ?1 and l.id = ?2"
        ))
        .bind(owner.as_str())
        .bind(id)
        .fetch_optional(&mut **transaction)
        .await
        .map_err(db_error)?;
        row.map(List::try_from).transpose()
    }

    async fn update_list(
        &self,
        owner: &UserId,
        list: ListId,
        changes: &UpdateList,
        expect: &Expect,
    ) -> Result<Option<List>, StoreError> {
        let color = changes.color.as_ref();
        let result = sqlx::query(
            "update lists set name = coalesce(?3, name),
                color = case when ?4 then ?5 else color end,
                version = version + 1,
                updated_at = max(?6, updated_at + 1)
             where id = ?2 and deleted_at is null
                and (?7 is null or version in (select value from json_each(?7)))
                and (name is not coalesce(?3, name) or (?4 and color is not ?5))
                and exists (select 1 from list_members
                    where list_id = ?2 and user_id = ?1 and role <> 'viewer')",
        )
        .bind(owner.as_str())
        .bind(list.get())
        .bind(changes.name.as_ref().map(|n| n.as_str()))
        .bind(color.is_some())
        .bind(color.and_then(|c| c.as_ref()).map(|c| c.as_str()))
        .bind(to_micros(now()))
        .bind(versions_json(expect))
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        match result.rows_affected() {
            0 => Ok(None),
            _ => self.select_list(owner, list, false).await,
        }
    }

    async fn trash_list(
        &self,
        owner: &UserId,
        list: ListId,
        restore: bool,
    ) -> Result<bool, StoreError> {
        let now = to_micros(now());
        let mut transaction = self.begin().await?;
        let done = async {
            let before: Option<Option<i64>> = sqlx::query_scalar(
                "select deleted_at from lists
                 where id = ?2 and inbox_of is null and (deleted_at is null) <> ?3
                    and exists (select 1 from list_members
                        where list_id = ?2 and user_id = ?1 and role = 'owner')",
            )
            .bind(owner.as_str())
            .bind(list.get())
            .bind(restore)
            .fetch_optional(&mut *transaction)
            .await?;
            let Some(before) = before else {
                return Ok(false);
            };
            sqlx::query(
                "update lists set deleted_at = case when ?2 then null else ?3 end,
                    version = version + 1, updated_at = max(?3, updated_at + 1)
                 where id = ?1",
            )
            .bind(list.get())
            .bind(restore)
            .bind(now)
            .execute(&mut *transaction)
            .await?;
            let tasks = match restore {
                true => sqlx::query(
                    "update tasks set deleted_at = null, version = version + 1,
                        updated_at = max(?3, updated_at + 1)
                     where list_id = ?1 and deleted_at = ?2",
                )
                .bind(list.get())
                .bind(before)
                .bind(now),
                false => sqlx::query(
                    "update tasks set deleted_at = ?2 where list_id = ?1 and deleted_at is null",
                )
                .bind(list.get())
                .bind(now),
            };
            tasks.execute(&mut *transaction).await?;
            Ok::<_, sqlx::Error>(true)
        }
        .await
        .map_err(db_error)?;
        transaction.commit().await.map_err(db_error)?;
        Ok(done)
    }

    async fn reposition_list(
        &self,
        owner: &UserId,
        list: ListId,
        position: &Position,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "update list_members set position = ?3
             where user_id = ?1 and list_id = ?2
                and list_id in (select id from lists where deleted_at is null)",
        )
        .bind(owner.as_str())
        .bind(list.get())
        .bind(position.as_str())
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(result.rows_affected() > 0)
    }

    async fn list_neighbour(
        &self,
        owner: &UserId,
        moving: ListId,
        from: Option<&Position>,
        above: bool,
    ) -> Result<Option<String>, StoreError> {
        let sql = match (above, from.is_some()) {
            (true, true) => {
                "select min(position) from list_members
                 where user_id = ?1 and list_id <> ?2 and position > ?3"
            }
            (false, true) => {
                "select max(position) from list_members
                 where user_id = ?1 and list_id <> ?2 and position < ?3"
            }
            (true, false) => {
                "select min(position) from list_members
                 where user_id = ?1 and list_id <> ?2 and ?3 is null"
            }
            (false, false) => {
                "select max(position) from list_members
                 where user_id = ?1 and list_id <> ?2 and ?3 is null"
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
            // Several statements that must see one state: the re-key, and a create that may
            // make the caller's Inbox first.
            Write::Rekey { .. } | Write::Insert { list: None, .. } => {
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
        transaction: &mut Self::Transaction,
        owner: &UserId,
        id: TaskId,
        changes: &UpdateTask,
        expect: &Expect,
        completes: bool,
    ) -> Result<Option<Task>, StoreError> {
        task(update_row(transaction, owner, id, (changes, expect, completes)).await?)
    }

    async fn update_fields_alone(
        &self,
        owner: &UserId,
        id: TaskId,
        changes: &UpdateTask,
        expect: &Expect,
    ) -> Result<Option<Task>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(db_error)?;
        task(update_row(&mut conn, owner, id, (changes, expect, false)).await?)
    }

    async fn trash(
        &self,
        transaction: &mut Self::Transaction,
        owner: &UserId,
        id: TaskId,
        expect: &Expect,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(concat!(
            "update tasks set deleted_at = ?3
                 where id = ?2 and deleted_at is null
                    and (?4 is null or version in (select value from json_each(?4))) and ",
            writable!()
        ))
        .bind(owner.as_str())
        .bind(id.get())
        .bind(to_micros(at))
        .bind(versions_json(expect))
        .execute(&mut **transaction)
        .await
        .map_err(db_error)?;
        Ok(result.rows_affected() > 0)
    }

    async fn untrash(
        &self,
        transaction: &mut Self::Transaction,
        owner: &UserId,
        id: TaskId,
    ) -> Result<Option<Task>, StoreError> {
        let row: Option<Row> = sqlx::query_as(concat!(
            "update tasks set deleted_at = null, version = version + 1,
                updated_at = max(?3, updated_at + 1)
             where id = ?2 and deleted_at is not null and ",
            writable!(),
            " returning ",
            task_columns!()
        ))
        .bind(owner.as_str())
        .bind(id.get())
        .bind(to_micros(now()))
        .fetch_optional(&mut **transaction)
        .await
        .map_err(db_error)?;
        task(row)
    }

    async fn family(
        &self,
        transaction: &mut Self::Transaction,
        id: TaskId,
        up: bool,
    ) -> Result<Vec<Node>, StoreError> {
        // One join each way, so that each level is an index lookup (by id, or by parent);
        // bounded by depth, so that even a corrupt cycle ends.
        macro_rules! family {
            ($join:literal) => {
                concat!(
                    "with recursive family (id, parent_id, depth, list_id, completed, deleted_at)
                     as (select id, parent_id, 0, list_id, status = 'completed', deleted_at
                        from tasks where id = ?1
                        union all
                        select t.id, t.parent_id, f.depth + 1, t.list_id,
                            t.status = 'completed', t.deleted_at
                        from family f join tasks t on ",
                    $join,
                    " where f.depth < 5)
                     select id, parent_id, depth, list_id, completed, deleted_at from family
                     order by depth, id"
                )
            };
        }
        let sql = match up {
            true => family!("t.id = f.parent_id"),
            false => family!("t.parent_id = f.id"),
        };
        let rows: Vec<NodeRow<i64>> = sqlx::query_as(sql)
            .bind(id.get())
            .fetch_all(&mut **transaction)
            .await
            .map_err(db_error)?;
        rows.into_iter().map(Node::try_from).collect()
    }

    async fn lock_parents(
        &self,
        _transaction: &mut Self::Transaction,
        _list: ListId,
    ) -> Result<(), StoreError> {
        // `BEGIN IMMEDIATE` already holds the database's one write lock.
        Ok(())
    }

    async fn cascade(
        &self,
        transaction: &mut Self::Transaction,
        cascade: Cascade<'_>,
    ) -> Result<(), StoreError> {
        let conn = &mut **transaction;
        let now = to_micros(now());
        match cascade {
            Cascade::Complete { ids, at } => {
                sqlx::query(
                    "update tasks set status = 'completed', completed_at = ?2,
                        version = version + 1, updated_at = max(?2, updated_at + 1)
                     where id in (select value from json_each(?1))
                        and status <> 'completed' and deleted_at is null",
                )
                .bind(serde_json::json!(ids).to_string())
                .bind(to_micros(at))
                .execute(conn)
                .await
                .map_err(db_error)?;
            }
            Cascade::Trash { ids, at } => {
                sqlx::query(
                    "update tasks set deleted_at = ?2
                     where id in (select value from json_each(?1)) and deleted_at is null",
                )
                .bind(serde_json::json!(ids).to_string())
                .bind(to_micros(at))
                .execute(conn)
                .await
                .map_err(db_error)?;
            }
            Cascade::Restore { ids } => {
                sqlx::query(
                    "update tasks set deleted_at = null, version = version + 1,
                        updated_at = max(?2, updated_at + 1)
                     where id in (select value from json_each(?1)) and deleted_at is not null",
                )
                .bind(serde_json::json!(ids).to_string())
                .bind(now)
                .execute(conn)
                .await
                .map_err(db_error)?;
            }
            Cascade::Relist { ids, list } => {
                let mut last = last_position_in(conn, list).await?;
                for id in ids {
                    let position = position_after(last, 0)?;
                    sqlx::query(
                        "update tasks set list_id = ?2, position = ?3,
                            assignee_id = case when exists (select 1 from list_members a
                                where a.list_id = ?2 and a.user_id = assignee_id)
                                then assignee_id end,
                            version = version + 1, updated_at = max(?4, updated_at + 1)
                         where id = ?1 and list_id <> ?2",
                    )
                    .bind(id)
                    .bind(list.get())
                    .bind(position.as_str())
                    .bind(now)
                    .execute(&mut *conn)
                    .await
                    .map_err(db_error)?;
                    last = Some(position.as_str().to_owned());
                }
            }
        }
        Ok(())
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
        id: i64,
        version: i64,
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
        .bind(id)
        .bind(version)
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

    async fn select_members(
        &self,
        owner: &UserId,
        list: ListId,
    ) -> Result<Option<Vec<Member>>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(db_error)?;
        match sharing::members(&mut conn, owner, list)
            .await
            .map_err(db_error)?
        {
            None => Ok(None),
            Some(rows) => rows
                .into_iter()
                .map(sharing::member)
                .collect::<Result<_, _>>()
                .map(Some)
                .map_err(db_error),
        }
    }

    async fn insert_invitation(
        &self,
        owner: &UserId,
        list: ListId,
        invitation: &InvitationRequest,
    ) -> Result<Option<Invitation>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(db_error)?;
        sharing::invite(&mut conn, owner, list, invitation)
            .await
            .and_then(|row| row.map(sharing::invitation).transpose())
            .map_err(db_error)
    }

    async fn select_invitations(
        &self,
        owner: &UserId,
        list: ListId,
    ) -> Result<Option<Vec<Invitation>>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(db_error)?;
        match sharing::invitations(&mut conn, owner, list)
            .await
            .map_err(db_error)?
        {
            None => Ok(None),
            Some(rows) => rows
                .into_iter()
                .map(sharing::invitation)
                .collect::<Result<_, _>>()
                .map(Some)
                .map_err(db_error),
        }
    }

    async fn revoke_invitation(
        &self,
        owner: &UserId,
        list: ListId,
        invitation: i64,
    ) -> Result<bool, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(db_error)?;
        sharing::revoke(&mut conn, owner, list, invitation)
            .await
            .map_err(db_error)
    }

    async fn accept_invitation(
        &self,
        owner: &UserId,
        token_hash: &[u8; 32],
    ) -> Result<Accepted, StoreError> {
        let mut transaction = self.begin().await?;
        let accepted = sharing::accept(&mut transaction, owner, token_hash)
            .await
            .map_err(db_error)?;
        transaction.commit().await.map_err(db_error)?;
        Ok(accepted)
    }

    async fn change_role(
        &self,
        owner: &UserId,
        list: ListId,
        member: &UserId,
        role: Role,
    ) -> Result<Option<Member>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(db_error)?;
        sharing::change_role(&mut conn, owner, list, member, role)
            .await
            .and_then(|row| row.map(sharing::member).transpose())
            .map_err(db_error)
    }

    async fn remove_member(
        &self,
        owner: &UserId,
        list: ListId,
        member: &UserId,
    ) -> Result<bool, StoreError> {
        let mut transaction = self.begin().await?;
        let removed = sharing::remove(&mut transaction, owner, list, member)
            .await
            .map_err(db_error)?;
        transaction.commit().await.map_err(db_error)?;
        Ok(removed)
    }

    async fn transfer_list(
        &self,
        owner: &UserId,
        list: ListId,
        member: &UserId,
    ) -> Result<bool, StoreError> {
        let mut transaction = self.begin().await?;
        let done = sharing::transfer(&mut transaction, owner, list, member)
            .await
            .map_err(db_error)?;
        transaction.commit().await.map_err(db_error)?;
        Ok(done)
    }

    async fn every_list(&self, owner: &UserId) -> Result<Vec<List>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(db_error)?;
        let rows = sharing::every_list(&mut conn, owner)
            .await
            .map_err(db_error)?;
        row::lists(rows)
    }

    async fn members_of(&self, list: ListId) -> Result<Vec<Member>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(db_error)?;
        sharing::members_of(&mut conn, list)
            .await
            .and_then(|rows| rows.into_iter().map(sharing::member).collect())
            .map_err(db_error)
    }

    async fn owned_and_created_tasks(&self, owner: &UserId) -> Result<Vec<Task>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(db_error)?;
        let rows = sharing::owned_and_created_tasks(&mut conn, owner)
            .await
            .map_err(db_error)?;
        row::all(rows)
    }

    async fn erase_user(&self, owner: &UserId) -> Result<(), StoreError> {
        let mut transaction = self.begin().await?;
        sharing::erase(&mut transaction, owner)
            .await
            .map_err(db_error)?;
        transaction.commit().await.map_err(db_error)?;
        Ok(())
    }

    async fn feed_rows(
        &self,
        owner: &UserId,
        since: ChangeCursor,
        limit: i64,
        lists: bool,
    ) -> Result<FeedRows, StoreError> {
        // One read transaction: one snapshot for the rows and the bounds.
        let mut transaction = self.pool.begin().await.map_err(db_error)?;
        let read = async {
            let (last, purged_through, head): (i64, i64, Option<i64>) = sqlx::query_as(
                "select last, purged_through, max(
                    coalesce((select max(max(l.last_pos, m.change_pos))
                        from list_members m join lists l on l.id = m.list_id
                        where m.user_id = ?1), 0),
                    coalesce((select max(pos) from feed_losses where user_id = ?1), 0))
                 from feed_clock",
            )
            .bind(owner.as_str())
            .fetch_one(&mut *transaction)
            .await?;
            // One writer at a time: everything counted so far has committed.
            let bounds = FeedBounds {
                horizon: last + 1,
                frontier: last + 1,
                purged_through,
                head: head.unwrap_or(0),
            };
            let since = since.get();
            let tasks: Vec<FeedRow> = sqlx::query_as(concat!(
                "select ",
                task_columns!(),
                ", change_pos from tasks where change_pos > ?2 and ",
                readable!(),
                " order by change_pos limit ?3"
            ))
            .bind(owner.as_str())
            .bind(since)
            .bind(limit)
            .fetch_all(&mut *transaction)
            .await?;
            let departures: Vec<(i64, i64)> = sqlx::query_as(concat!(
                "select pos, task_id from task_departures where pos > ?2 and ",
                readable!(),
                " order by pos limit ?3"
            ))
            .bind(owner.as_str())
            .bind(since)
            .bind(limit)
            .fetch_all(&mut *transaction)
            .await?;
            let losses: Vec<(i64, i64, Option<i64>)> = sqlx::query_as(
                "select pos, list_id, task_id from feed_losses
                 where user_id = ?1 and pos > ?2 and (?4 or task_id is not null)
                 order by pos limit ?3",
            )
            .bind(owner.as_str())
            .bind(since)
            .bind(limit)
            .bind(lists)
            .fetch_all(&mut *transaction)
            .await?;
            let list_rows: Vec<ListFeedRow> = match lists {
                false => Vec::new(),
                true => {
                    sqlx::query_as(concat!(
                        "select max(l.change_pos, m.change_pos) as pos, ",
                        list_columns!(),
                        " from list_members m join lists l on l.id = m.list_id
                         where m.user_id = ?1 and max(l.change_pos, m.change_pos) > ?2
                         order by 1 limit ?3"
                    ))
                    .bind(owner.as_str())
                    .bind(since)
                    .bind(limit)
                    .fetch_all(&mut *transaction)
                    .await?
                }
            };
            Ok::<_, sqlx::Error>((tasks, departures, losses, list_rows, bounds))
        }
        .await
        .map_err(db_error)?;
        transaction.commit().await.map_err(db_error)?;
        let (tasks, departures, losses, list_rows, bounds) = read;
        let list_rows = list_rows
            .into_iter()
            .map(|row| (row.pos, row.list))
            .collect();
        let changes = row::merge_feed(tasks, departures, losses, list_rows, limit)?;
        Ok((changes, bounds))
    }

    async fn feed_horizon(&self) -> Result<i64, StoreError> {
        // As a read's bounds: one writer at a time, so every position counted has committed.
        sqlx::query_scalar("select last + 1 from feed_clock")
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)
    }

    async fn counter_rows(&self, owners: &[UserId]) -> Result<Vec<(String, i64)>, StoreError> {
        let owners = serde_json::to_string(&owners.iter().map(UserId::as_str).collect::<Vec<_>>())
            .map_err(|error| StoreError::Other(error.into()))?;
        sqlx::query_as(
            "select user_id, max(pos) from (
                select m.user_id, max(l.last_pos, m.change_pos) as pos
                from list_members m join lists l on l.id = m.list_id
                where m.user_id in (select value from json_each(?1))
                union all
                select user_id, pos from feed_losses
                where user_id in (select value from json_each(?1))
             ) group by user_id",
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
        // (table, key, age column, position column): a removed feed entry raises the
        // horizon under which cursors must start again.
        let targets: &[(&str, &str, &str, Option<&str>)] = match what {
            Purge::Trashed => &[("tasks", "id", "deleted_at", Some("change_pos"))],
            Purge::Lists => &[("lists", "id", "deleted_at", Some("change_pos"))],
            Purge::History => &[
                ("task_departures", "rowid", "departed_at", Some("pos")),
                ("feed_losses", "rowid", "lost_at", Some("pos")),
            ],
            Purge::Keys => &[("idempotency_keys", "rowid", "created_at", None)],
        };
        let mut transaction = self.begin().await?;
        let mut removed = 0;
        for (table, key, age, position) in targets {
            // Only lists whose tasks are all gone.
            let extra = match *table {
                "lists" => " and not exists (select 1 from tasks where list_id = lists.id)",
                _ => "",
            };
            let chosen = format!("select {key} from {table} where {age} < ?1{extra} limit ?2");
            if let Some(position) = position {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "update feed_clock set purged_through = max(purged_through, coalesce(
                        (select max({position}) from {table} where {key} in ({chosen})), 0))"
                )))
                .bind(to_micros(before))
                .bind(limit)
                .execute(&mut *transaction)
                .await
                .map_err(db_error)?;
            }
            let result = sqlx::query(sqlx::AssertSqlSafe(format!(
                "delete from {table} where {key} in ({chosen})"
            )))
            .bind(to_micros(before))
            .bind(limit)
            .execute(&mut *transaction)
            .await
            .map_err(db_error)?;
            removed = removed.max(result.rows_affected());
        }
        transaction.commit().await.map_err(db_error)?;
        // The last step of the hourly purge: the planner's statistics brought up to date.
        if matches!(what, Purge::Keys) && (removed as i64) < limit {
            self.optimize().await?;
        }
        Ok(removed)
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
        self.optimize().await?;
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
