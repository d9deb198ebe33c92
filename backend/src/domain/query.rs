//! What a list asks for: the filters, the sort, and where a keyset page starts.

use chrono::{DateTime, Utc};

use super::fields::{Priority, Tag};
use super::ids::TaskId;
use super::ids::{ListId, TaskUid, UserId};
use super::task::{Task, TaskStatus};

/// The most characters a search (`q`) may have.
pub const MAX_SEARCH_CHARS: usize = 200;

/// The filters of a list, combined with AND. Empty sets mean "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Any of these statuses.
    pub statuses: Vec<TaskStatus>,
    /// All of these tags.
    pub tags: Vec<Tag>,
    /// Any of these priorities.
    pub priorities: Vec<Priority>,
    /// A case-insensitive substring of the title or the description, already folded with
    /// [`fold`].
    pub search: Option<String>,
    pub due_before: Option<DateTime<Utc>>,
    pub due_after: Option<DateTime<Utc>>,
    pub has_due: Option<bool>,
    pub updated_since: Option<DateTime<Utc>>,
    /// The trash instead of the live tasks (`deleted=true`).
    pub trashed: bool,
    /// Only this list's tasks (`list_id=N`); without it, every list the caller can read.
    pub list: Option<ListId>,
    /// Only tasks assigned to someone, or to nobody (`assignee=`).
    pub assignee: Option<Assignee>,
    /// Only the subtasks of one task, or only top-level tasks (`parent_id=`).
    pub parent: Option<Parent>,
    /// Only the task with this uid (`uid=`): one per list.
    pub uid: Option<TaskUid>,
}

/// The `parent_id` filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parent {
    /// The direct subtasks of this task.
    Task(TaskId),
    /// Top-level tasks (`none`).
    Nobody,
}

/// The `assignee` filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assignee {
    /// The caller (`me`).
    Me,
    User(UserId),
    /// Unassigned tasks (`none`).
    Nobody,
}

/// What text is compared in, for search and for the title sort: Unicode lowercase (so `É`
/// matches `é`, `ß` matches only `ß`). Both backends store text folded by this one function,
/// so they agree on every letter.
pub fn fold(text: &str) -> String {
    text.to_lowercase()
}

/// The fields a list can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortField {
    CreatedAt,
    UpdatedAt,
    DueAt,
    Priority,
    Title,
    Position,
}

impl SortField {
    pub fn name(self) -> &'static str {
        match self {
            SortField::CreatedAt => "created_at",
            SortField::UpdatedAt => "updated_at",
            SortField::DueAt => "due_at",
            SortField::Priority => "priority",
            SortField::Title => "title",
            SortField::Position => "position",
        }
    }

    const ALL: [SortField; 6] = [
        SortField::CreatedAt,
        SortField::UpdatedAt,
        SortField::DueAt,
        SortField::Priority,
        SortField::Title,
        SortField::Position,
    ];
}

/// A sort: a field and a direction; ties are broken by `id` in the same direction, and
/// missing values (a task with no `due_at`) come last either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SortKey {
    pub field: SortField,
    pub descending: bool,
}

impl Default for SortKey {
    /// Newest first, as in Part one.
    fn default() -> Self {
        SortKey {
            field: SortField::CreatedAt,
            descending: true,
        }
    }
}

impl std::str::FromStr for SortKey {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let (descending, name) = match raw.strip_prefix('-') {
            Some(name) => (true, name),
            None => (false, raw),
        };
        SortField::ALL
            .into_iter()
            .find(|field| field.name() == name)
            .map(|field| SortKey { field, descending })
            .ok_or_else(|| {
                let names: Vec<&str> = SortField::ALL.iter().map(|f| f.name()).collect();
                format!(
                    "must be one of {}, optionally with a leading -",
                    names.join(", ")
                )
            })
    }
}

impl std::fmt::Display for SortKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.descending {
            f.write_str("-")?;
        }
        f.write_str(self.field.name())
    }
}

/// The value of the sort field of the last task of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortValue {
    /// A timestamp, as microseconds since the epoch; `None` for a missing `due_at`.
    Micros(Option<i64>),
    /// A priority's rank.
    Rank(i64),
    /// A folded title or a position key.
    Text(String),
}

impl SortValue {
    /// The value `task` has in `field`.
    pub fn of(task: &Task, field: SortField) -> SortValue {
        match field {
            SortField::CreatedAt => SortValue::Micros(Some(task.created_at.timestamp_micros())),
            SortField::UpdatedAt => SortValue::Micros(Some(task.updated_at.timestamp_micros())),
            SortField::DueAt => SortValue::Micros(task.due_at.map(|due| due.timestamp_micros())),
            SortField::Priority => SortValue::Rank(i64::from(task.priority.rank())),
            SortField::Title => SortValue::Text(fold(&task.title)),
            SortField::Position => SortValue::Text(task.position.as_str().to_owned()),
        }
    }
}

/// Where a keyset page starts: after the task with this sort value and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyset {
    pub value: SortValue,
    pub id: TaskId,
}

impl TaskQuery {
    /// The first `limit` tasks after skipping `offset`, newest first, unfiltered: Part one's
    /// list.
    pub fn page(limit: u32, offset: i64) -> TaskQuery {
        TaskQuery {
            filter: Filter::default(),
            sort: SortKey::default(),
            limit,
            offset,
            after: None,
        }
    }
}

/// A whole list request, as the store runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskQuery {
    pub filter: Filter,
    pub sort: SortKey,
    pub limit: u32,
    pub offset: i64,
    /// Start after this task instead of at `offset`.
    pub after: Option<Keyset>,
}
