//! The one mapping from a stored row to a [`Task`], shared by both backends.
//!
//! The SQL differs per backend, and so do two column types: a timestamp (`timestamptz` in
//! PostgreSQL, integer microseconds in SQLite) and the tags (`text[]` in PostgreSQL, a JSON
//! array in SQLite); everything else about a row is the same.

use chrono::{DateTime, Utc};

use super::StoreError;
use super::statements::Node;
use crate::domain::calendar::CalendarChanges;
use crate::domain::{
    Change, ChangeCursor, List, ListId, Outcome, Position, Priority, Recurrence, Replay, Role,
    Tags, Task, TaskId, TaskUid, UserId,
};

/// The columns every task query returns, as a literal for `concat!`, so that each query
/// stays one static string (which the drivers' statement caches key on).
macro_rules! task_columns {
    () => {
        "id, user_id, list_id, assignee_id, title, description, status, created_at, \
         updated_at, due_at, priority, tags, position, completed_at, version, deleted_at, uid, \
         parent_id, recurrence, completed_count, last_completed_at"
    };
}
pub(super) use task_columns;

/// The columns of a list as the member `m` sees it (`lists l join list_members m`).
macro_rules! list_columns {
    () => {
        "l.id, l.name, l.color, m.position, l.inbox_of is not null as is_inbox, m.role, \
         l.owner_id, cast(l.member_count as bigint) as member_count, l.version, l.created_at, \
         l.updated_at, l.deleted_at"
    };
}
pub(super) use list_columns;

/// A list as one member sees it, with timestamps of the backend's type `T`.
#[derive(sqlx::FromRow)]
pub(super) struct ListRow<T> {
    id: i64,
    name: String,
    color: Option<String>,
    position: String,
    is_inbox: bool,
    role: String,
    owner_id: String,
    member_count: i64,
    version: i64,
    created_at: T,
    updated_at: T,
    deleted_at: Option<T>,
}

impl<T: StoredTime> TryFrom<ListRow<T>> for List {
    type Error = StoreError;

    fn try_from(row: ListRow<T>) -> Result<Self, Self::Error> {
        Ok(List {
            id: ListId::try_from(row.id).map_err(|_| corrupt(format!("list id {}", row.id)))?,
            name: row.name,
            color: row.color,
            position: Position::parse(row.position).map_err(|error| corrupt(error.to_string()))?,
            is_inbox: row.is_inbox,
            role: Role::parse(&row.role).ok_or_else(|| corrupt(format!("role {}", row.role)))?,
            owner_id: UserId::parse(row.owner_id).map_err(|error| corrupt(error.to_string()))?,
            member_count: row.member_count,
            version: row.version,
            created_at: row.created_at.into_utc()?,
            updated_at: row.updated_at.into_utc()?,
            deleted_at: row.deleted_at.map(StoredTime::into_utc).transpose()?,
        })
    }
}

/// Every list of a query.
pub(super) fn lists<T: StoredTime>(rows: Vec<ListRow<T>>) -> Result<Vec<List>, StoreError> {
    rows.into_iter().map(List::try_from).collect()
}

/// One feed entry that is not a task's row, as a backend reads it: a departure or a loss
/// (`task_id` set: the task's delete; `list_id` only: the list's), or a list row with its
/// position (`list`).
pub(super) fn task_delete(pos: i64, task_id: i64) -> Result<Change, StoreError> {
    Ok(Change::Delete {
        cursor: cursor_at(pos)?,
        id: TaskId::try_from(task_id).map_err(|_| corrupt(format!("task id {task_id}")))?,
    })
}

pub(super) fn list_delete(pos: i64, list_id: i64) -> Result<Change, StoreError> {
    Ok(Change::ListDelete {
        cursor: cursor_at(pos)?,
        list_id: ListId::try_from(list_id).map_err(|_| corrupt(format!("list id {list_id}")))?,
    })
}

/// A list row of the feed: its current state, or (in the trash) its delete.
pub(super) fn list_change<T: StoredTime>(pos: i64, row: ListRow<T>) -> Result<Change, StoreError> {
    let list = List::try_from(row)?;
    Ok(match list.deleted_at {
        Some(_) => Change::ListDelete {
            cursor: cursor_at(pos)?,
            list_id: list.id,
        },
        None => Change::ListUpsert {
            cursor: cursor_at(pos)?,
            list,
        },
    })
}

/// One page of a feed from its four sources, each already in position order and cut at
/// `limit`: merged into one order and cut at `limit` again.
pub(super) fn merge_feed<T: StoredTime, L: StoredTags>(
    tasks: Vec<ChangeRow<T, L>>,
    departures: Vec<(i64, i64)>,
    losses: Vec<(i64, i64, Option<i64>)>,
    lists: Vec<(i64, ListRow<T>)>,
    limit: i64,
) -> Result<Vec<Change>, StoreError> {
    let mut changes = changes(tasks)?;
    for (pos, task) in departures {
        changes.push(task_delete(pos, task)?);
    }
    for (pos, list, task) in losses {
        changes.push(match task {
            Some(task) => task_delete(pos, task)?,
            None => list_delete(pos, list)?,
        });
    }
    for (pos, list) in lists {
        changes.push(list_change(pos, list)?);
    }
    changes.sort_by_key(Change::cursor);
    changes.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(changes)
}

fn cursor_at(pos: i64) -> Result<ChangeCursor, StoreError> {
    ChangeCursor::from_stored(pos).ok_or_else(|| corrupt(format!("change position {pos}")))
}

/// A task as a query returns it, with timestamps of the backend's type `T` and tags of its
/// type `L`.
#[derive(sqlx::FromRow)]
pub(super) struct TaskRow<T, L> {
    id: i64,
    user_id: String,
    list_id: i64,
    assignee_id: Option<String>,
    title: String,
    description: Option<String>,
    status: String,
    created_at: T,
    updated_at: T,
    due_at: Option<T>,
    priority: i32,
    tags: L,
    position: String,
    completed_at: Option<T>,
    version: i64,
    deleted_at: Option<T>,
    uid: String,
    parent_id: Option<i64>,
    /// JSON, as [`Recurrence`] serializes.
    recurrence: Option<String>,
    completed_count: i64,
    last_completed_at: Option<T>,
}

/// A backend's tags column type.
pub(super) trait StoredTags {
    fn into_names(self) -> Result<Vec<String>, StoreError>;
}

impl StoredTags for Vec<String> {
    fn into_names(self) -> Result<Vec<String>, StoreError> {
        Ok(self)
    }
}

/// SQLite: a JSON array of strings.
impl StoredTags for String {
    fn into_names(self) -> Result<Vec<String>, StoreError> {
        serde_json::from_str(&self).map_err(|error| corrupt(format!("tags: {error}")))
    }
}

/// A backend's timestamp column type.
pub(super) trait StoredTime {
    fn into_utc(self) -> Result<DateTime<Utc>, StoreError>;
}

impl StoredTime for DateTime<Utc> {
    fn into_utc(self) -> Result<DateTime<Utc>, StoreError> {
        Ok(self)
    }
}

/// SQLite: microseconds since the Unix epoch.
impl StoredTime for i64 {
    fn into_utc(self) -> Result<DateTime<Utc>, StoreError> {
        DateTime::from_timestamp_micros(self)
            .ok_or_else(|| corrupt(format!("timestamp out of range: {self}")))
    }
}

impl<T: StoredTime, L: StoredTags> TryFrom<TaskRow<T, L>> for Task {
    type Error = StoreError;

    fn try_from(row: TaskRow<T, L>) -> Result<Self, Self::Error> {
        Ok(Task {
            id: TaskId::try_from(row.id).map_err(|_| corrupt(format!("task id {}", row.id)))?,
            user_id: UserId::parse(row.user_id).map_err(|error| corrupt(error.to_string()))?,
            list_id: ListId::try_from(row.list_id)
                .map_err(|_| corrupt(format!("list id {}", row.list_id)))?,
            assignee_id: row
                .assignee_id
                .map(UserId::parse)
                .transpose()
                .map_err(|error| corrupt(error.to_string()))?,
            title: row.title,
            description: row.description,
            status: row.status.parse().map_err(corrupt)?,
            created_at: row.created_at.into_utc()?,
            updated_at: row.updated_at.into_utc()?,
            due_at: row.due_at.map(StoredTime::into_utc).transpose()?,
            priority: Priority::from_rank(row.priority.into())
                .ok_or_else(|| corrupt(format!("priority {}", row.priority)))?,
            tags: Tags::from_stored(row.tags.into_names()?).map_err(corrupt)?,
            position: Position::parse(row.position).map_err(|error| corrupt(error.to_string()))?,
            completed_at: row.completed_at.map(StoredTime::into_utc).transpose()?,
            version: row.version,
            deleted_at: row.deleted_at.map(StoredTime::into_utc).transpose()?,
            uid: TaskUid::parse(row.uid).map_err(|error| corrupt(error.to_string()))?,
            parent_id: row
                .parent_id
                .map(|id| TaskId::try_from(id).map_err(|_| corrupt(format!("parent id {id}"))))
                .transpose()?,
            recurrence: row
                .recurrence
                .map(|json| Recurrence::stored(&json))
                .transpose()
                .map_err(|error| corrupt(format!("recurrence: {error}")))?,
            completed_count: row.completed_count,
            last_completed_at: row
                .last_completed_at
                .map(StoredTime::into_utc)
                .transpose()?,
        })
    }
}

/// A task of a subtree or of a chain of ancestors, as a backend reads it.
#[derive(sqlx::FromRow)]
pub(super) struct NodeRow<T> {
    id: i64,
    parent_id: Option<i64>,
    depth: i64,
    list_id: i64,
    completed: bool,
    deleted_at: Option<T>,
}

impl<T: StoredTime> TryFrom<NodeRow<T>> for Node {
    type Error = StoreError;

    fn try_from(row: NodeRow<T>) -> Result<Self, Self::Error> {
        Ok(Node {
            id: row.id,
            parent_id: row.parent_id,
            depth: row.depth,
            list_id: row.list_id,
            completed: row.completed,
            deleted_at: row.deleted_at.map(StoredTime::into_utc).transpose()?,
        })
    }
}

/// Every task of a query.
pub(super) fn all<T: StoredTime, L: StoredTags>(
    rows: Vec<TaskRow<T, L>>,
) -> Result<Vec<Task>, StoreError> {
    rows.into_iter().map(Task::try_from).collect()
}

/// Every change of a feed query.
pub(super) fn changes<T: StoredTime, L: StoredTags>(
    rows: Vec<ChangeRow<T, L>>,
) -> Result<Vec<Change>, StoreError> {
    rows.into_iter().map(Change::try_from).collect()
}

/// How an idempotency record stores what its request did. The column holds the status of
/// the first response, as it always has, so that records written before are read alike.
pub(super) fn outcome_code(outcome: Outcome) -> i32 {
    match outcome {
        Outcome::Created => 201,
        Outcome::Moved => 200,
        Outcome::ListCreated => LIST_CREATED,
    }
}

/// A list's creation: answered 201 like a task's, told apart by the thousands (`task_id`
/// then holds the list's id).
const LIST_CREATED: i32 = 1201;

/// A task with its place in the change feed.
#[derive(sqlx::FromRow)]
pub(super) struct ChangeRow<T, L> {
    #[sqlx(flatten)]
    task: TaskRow<T, L>,
    change_pos: i64,
}

impl<T: StoredTime, L: StoredTags> TryFrom<ChangeRow<T, L>> for Change {
    type Error = StoreError;

    /// A task in the trash is a deletion, for clients; anything else is its current state.
    fn try_from(row: ChangeRow<T, L>) -> Result<Self, Self::Error> {
        let cursor = ChangeCursor::from_stored(row.change_pos)
            .ok_or_else(|| corrupt(format!("change position {}", row.change_pos)))?;
        let task = Task::try_from(row.task)?;
        Ok(match task.deleted_at {
            Some(_) => Change::Delete {
                cursor,
                id: task.id,
            },
            None => Change::Upsert { cursor, task },
        })
    }
}

/// A list's changes for a calendar client, from the rows read after `since` in one snapshot:
/// its live tasks that changed, and the resource names of those that left it (trashed, moved
/// out), at most `limit` of each. When either kind filled its limit, the report stops at the lower of
/// the two last positions, so that nothing before the next token is left out. A report
/// that read everything below the horizon hands out at least `floor` (a position below the
/// horizon, at or past the last purge), so that the token of a list nobody touches does not
/// fall behind a purge and stop working.
pub(super) fn calendar_changes<T: StoredTime, L: StoredTags>(
    tasks: Vec<ChangeRow<T, L>>,
    departures: Vec<(i64, String)>,
    (since, floor): (ChangeCursor, i64),
    limit: i64,
) -> Result<CalendarChanges, StoreError> {
    let full = |count: usize| i64::try_from(count).unwrap_or(i64::MAX) >= limit;
    let mut cut = i64::MAX;
    if full(tasks.len())
        && let Some(last) = tasks.last()
    {
        cut = cut.min(last.change_pos);
    }
    if full(departures.len())
        && let Some((last, _)) = departures.last()
    {
        cut = cut.min(*last);
    }
    let mut next = since.get();
    let mut changed = Vec::new();
    let mut removed = Vec::new();
    for row in tasks.into_iter().filter(|row| row.change_pos <= cut) {
        next = next.max(row.change_pos);
        changed.push(Task::try_from(row.task)?);
    }
    for (pos, name) in departures.into_iter().filter(|(pos, _)| *pos <= cut) {
        next = next.max(pos);
        removed.push(name);
    }
    if cut == i64::MAX {
        next = next.max(floor);
    }
    Ok(CalendarChanges {
        changed,
        removed,
        next: cursor_at(next)?,
        truncated: cut != i64::MAX,
    })
}

/// The recorded outcome of an idempotent request.
#[derive(sqlx::FromRow)]
pub(super) struct ReplayRow {
    pub fingerprint: Vec<u8>,
    status: i32,
    body: String,
    task_id: i64,
    version: i64,
}

impl TryFrom<ReplayRow> for Replay {
    type Error = StoreError;

    fn try_from(row: ReplayRow) -> Result<Self, Self::Error> {
        let outcome = match row.status {
            201 => Outcome::Created,
            200 => Outcome::Moved,
            LIST_CREATED => Outcome::ListCreated,
            other => return Err(corrupt(format!("recorded outcome {other}"))),
        };
        Ok(Replay {
            outcome,
            body: row.body,
            id: TaskId::try_from(row.task_id)
                .map_err(|_| corrupt(format!("recorded task id {}", row.task_id)))?,
            version: row.version,
        })
    }
}

/// A row the schema's checks should have made impossible.
fn corrupt(what: String) -> StoreError {
    StoreError::Other(format!("corrupt task row: {what}").into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, status: &str) -> TaskRow<i64, String> {
        TaskRow {
            id,
            user_id: "alice".into(),
            list_id: 1,
            assignee_id: None,
            title: "t".into(),
            description: None,
            status: status.into(),
            created_at: 1,
            updated_at: 2,
            due_at: None,
            priority: 2,
            tags: r#"["a","B"]"#.into(),
            position: "a0".into(),
            completed_at: None,
            version: 1,
            deleted_at: None,
            uid: "u-1".into(),
            parent_id: None,
            recurrence: None,
            completed_count: 0,
            last_completed_at: None,
        }
    }

    #[test]
    fn a_row_becomes_a_task() {
        let task = Task::try_from(row(7, "completed")).expect("valid row");
        assert_eq!(task.id.get(), 7);
        assert_eq!(task.user_id.as_str(), "alice");
        assert_eq!(task.updated_at.timestamp_micros(), 2);
        assert_eq!(task.priority, Priority::Medium);
        assert_eq!(task.tags.names(), ["a", "B"]);
    }

    #[test]
    fn impossible_rows_are_errors_not_tasks() {
        assert!(Task::try_from(row(0, "pending")).is_err());
        assert!(Task::try_from(row(1, "done")).is_err());
        let mut bad_priority = row(1, "pending");
        bad_priority.priority = 9;
        assert!(Task::try_from(bad_priority).is_err());
    }

    #[test]
    fn timestamps_round_trip_through_microseconds() {
        let time = super::super::statements::now();
        assert_eq!(time.timestamp_micros().into_utc().ok(), Some(time));
    }
}
