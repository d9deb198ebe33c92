//! What calendar clients need beyond tasks and lists: the app passwords they sign in with,
//! and a list's changes as a CalDAV collection's sync report reads them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ids::{ListId, TaskId};
use super::list::ListName;
use super::sync::ChangeCursor;
use super::task::Task;

/// The most app passwords one user may have.
pub const MAX_APP_PASSWORDS: i64 = 50;

/// An app password, as it is listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AppPassword {
    #[schema(minimum = 1, example = 1)]
    pub id: i64,
    /// What the user called it (the device or app it is for).
    #[schema(example = "Thunderbird at work")]
    pub name: String,
    pub created_at: DateTime<Utc>,
    /// The last time a calendar client signed in with it (to the minute); `null` if never.
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A new app password with its secret, shown this once: only its hash is kept.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NewAppPassword {
    #[serde(flatten)]
    pub app_password: AppPassword,
    /// The user name to pair with the password in a calendar app: the caller's user id.
    #[schema(example = "user_2NNEqL")]
    pub username: String,
    /// The secret, 43 URL-safe characters (256 random bits).
    #[schema(example = "q3VJ0hZ6c1mV9YdT7kq2oS8wqvN5xkQW1j3rT0uYb9E")]
    pub password: String,
}

/// The body of `POST /api/app-passwords`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAppPassword {
    /// 1 to 100 characters, at least one visible.
    #[schema(value_type = String, min_length = 1, max_length = 100, pattern = r"^[^\u0000]*[^\u0000-\u0020\u007F-\u00A0\u00AD\u034F\u061C\u115F\u1160\u1680\u17B4\u17B5\u180B-\u180F\u2000-\u200F\u2028-\u202F\u205F-\u206F\u2800\u3000\u3164\uFE00-\uFE0F\uFEFF\uFFA0][^\u0000]*$", example = "Thunderbird at work")]
    pub name: ListName,
}

/// What calendar clients wrote of a task: its iCalendar object, and the name of its resource
/// when that is not its uid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub task: TaskId,
    pub ical: Option<String>,
    pub name: Option<String>,
}

/// A list as a calendar: its change tag, the newest sync token safe to hand out, and the name
/// a client gave it when it made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarTags {
    pub list: ListId,
    pub tag: i64,
    pub token: i64,
    pub name: Option<String>,
}

/// A list's changes after a sync token, for a calendar client: the tasks to fetch again and
/// the resource names of those that left the collection (trashed, or moved to another list).
#[derive(Debug, Clone, PartialEq)]
pub struct CalendarChanges {
    pub changed: Vec<Task>,
    pub removed: Vec<String>,
    /// The token to sync from next.
    pub next: ChangeCursor,
    /// Whether more changes follow `next` (the report was cut short).
    pub truncated: bool,
}
