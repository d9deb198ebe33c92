//! The task domain: types that can only hold valid values.
//!
//! Request bodies deserialize straight into these types, so a handler that received a
//! `CreateTask` knows its title is 1–200 characters and not blank, and the storage layer never
//! sees text the database would refuse (such as a NUL character, which PostgreSQL cannot store).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::fields::{Priority, Tag, Tags, Timestamp};
use super::ids::{ListId, TaskId, TaskUid, UserId};
use super::position::Position;
use super::recurrence::Recurrence;
use super::text::is_invisible;

/// The most characters (Unicode scalar values) a title may have.
pub const TITLE_MAX_CHARS: usize = 200;
/// The most characters (Unicode scalar values) a description may have.
pub const DESCRIPTION_MAX_CHARS: usize = 2000;

/// Why a text value was refused. Its `Display` is the message the client sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextError {
    Blank,
    TooLong(usize),
    ContainsNul,
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TextError::Blank => f.write_str("must not be empty or blank"),
            TextError::TooLong(max) => write!(f, "must be at most {max} characters"),
            TextError::ContainsNul => f.write_str("must not contain NUL characters"),
        }
    }
}

pub(super) fn check_text(text: &str, max_chars: usize) -> Result<(), TextError> {
    if text.contains('\0') {
        return Err(TextError::ContainsNul);
    }
    // Characters, not bytes: "ü" is one character and two bytes.
    if text.chars().count() > max_chars {
        return Err(TextError::TooLong(max_chars));
    }
    Ok(())
}

/// A task title: 1 to 200 characters, at least one of them visible, no NUL.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct TaskTitle(String);

impl TryFrom<String> for TaskTitle {
    type Error = TextError;

    fn try_from(title: String) -> Result<Self, Self::Error> {
        if title.chars().all(is_invisible) {
            return Err(TextError::Blank);
        }
        check_text(&title, TITLE_MAX_CHARS)?;
        Ok(TaskTitle(title))
    }
}

impl TaskTitle {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A task description: at most 2000 characters, no NUL. May be empty.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct TaskDescription(String);

impl TryFrom<String> for TaskDescription {
    type Error = TextError;

    fn try_from(description: String) -> Result<Self, Self::Error> {
        check_text(&description, DESCRIPTION_MAX_CHARS)?;
        Ok(TaskDescription(description))
    }
}

impl TaskDescription {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a task stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
// Parsed from a string so that `null` or a number is a type error naming the field, and an
// unknown name gets a message listing the valid ones.
#[serde(rename_all = "snake_case", try_from = "String")]
pub enum TaskStatus {
    #[default]
    Pending,
    InProgress,
    Completed,
}

impl TaskStatus {
    /// The name stored in the database and sent over the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Pending => "pending",
            TaskStatus::InProgress => "in_progress",
            TaskStatus::Completed => "completed",
        }
    }
}

impl std::str::FromStr for TaskStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(TaskStatus::Pending),
            "in_progress" => Ok(TaskStatus::InProgress),
            "completed" => Ok(TaskStatus::Completed),
            other => Err(format!(
                "{other:?} is not one of pending, in_progress, completed"
            )),
        }
    }
}

impl TryFrom<String> for TaskStatus {
    type Error = String;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        name.parse()
    }
}

/// A stored task, as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Task {
    #[schema(value_type = i64, example = 42, minimum = 1)]
    pub id: TaskId,
    #[schema(example = "Buy milk", min_length = 1, max_length = 200)]
    pub title: String,
    #[schema(example = "Two litres, semi-skimmed", max_length = 2000)]
    pub description: Option<String>,
    pub status: TaskStatus,
    /// The creator: the `sub` claim of the token that created the task.
    #[schema(value_type = String, example = "user_2NNEqL")]
    pub user_id: UserId,
    /// The list the task is in.
    #[schema(value_type = i64, example = 3, minimum = 1)]
    pub list_id: ListId,
    /// The member of the list the task is assigned to, or `null`.
    #[schema(value_type = Option<String>, example = "user_2NNEqL")]
    pub assignee_id: Option<UserId>,
    /// When the task was created (RFC 3339, UTC).
    pub created_at: DateTime<Utc>,
    /// When the task last changed (RFC 3339, UTC).
    pub updated_at: DateTime<Utc>,
    /// When the task is due (RFC 3339, UTC), or `null`.
    pub due_at: Option<DateTime<Utc>>,
    pub priority: Priority,
    /// Up to 20 tags, in the order given; duplicates (ignoring case) collapsed.
    #[schema(value_type = Vec<String>, example = json!(["home", "errands"]))]
    pub tags: Tags,
    /// The manual order: an opaque key; tasks sort by it as a byte string.
    #[schema(value_type = String, example = "a0")]
    pub position: Position,
    /// When `status` last became `completed`; `null` unless it is completed. Read-only.
    pub completed_at: Option<DateTime<Utc>>,
    /// 1 at create, +1 on every change. Read-only; the task's ETag is derived from it.
    #[schema(minimum = 1, example = 1)]
    pub version: i64,
    /// When the task was moved to the trash; `null` unless it is there (`?deleted=true`).
    /// Read-only: `DELETE` sets it, `restore` clears it.
    pub deleted_at: Option<DateTime<Utc>>,
    /// The task's stable id, unique in its list: the client's own (at create) or a UUID.
    #[schema(value_type = String, example = "0b5e0c1c-6a43-4f5e-9a57-3f1c1e0f3a51", min_length = 1, max_length = 255, pattern = r"^[!-~]+$")]
    pub uid: TaskUid,
    /// The task this one is a subtask of (in the same list), or `null`.
    #[schema(value_type = Option<i64>, example = 41, minimum = 1)]
    pub parent_id: Option<TaskId>,
    /// How the task repeats, or `null`.
    pub recurrence: Option<Recurrence>,
    /// How many occurrences of a repeating task were completed. Read-only.
    #[schema(minimum = 0, example = 0)]
    pub completed_count: i64,
    /// When an occurrence was last completed, or `null`. Read-only.
    pub last_completed_at: Option<DateTime<Utc>>,
}

/// The body of `POST /api/tasks`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTask {
    #[schema(value_type = String, min_length = 1, max_length = 200, pattern = r"^[^\u0000]*[^\u0000-\u0020\u007F-\u00A0\u00AD\u034F\u061C\u115F\u1160\u1680\u17B4\u17B5\u180B-\u180F\u2000-\u200F\u2028-\u202F\u205F-\u206F\u2800\u3000\u3164\uFE00-\uFE0F\uFEFF\uFFA0][^\u0000]*$", example = "Buy milk")]
    pub title: TaskTitle,
    #[serde(default)]
    #[schema(value_type = Option<String>, max_length = 2000, pattern = r"^[^\u0000]*$")]
    pub description: Option<TaskDescription>,
    /// Defaults to `pending`; `null` is refused.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = TaskStatus)]
    pub status: Option<TaskStatus>,
    /// RFC 3339 with an offset; `null` or absent for none.
    #[serde(default)]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub due_at: Option<Timestamp>,
    /// Defaults to `none`; `null` is refused.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Priority)]
    pub priority: Option<Priority>,
    /// Defaults to none; `null` is refused.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Vec<Tag>, max_items = 20)]
    pub tags: Option<Tags>,
    /// The list to create the task in (editor or owner); the caller's Inbox by default.
    #[serde(default, deserialize_with = "list_id")]
    #[schema(value_type = Option<i64>, minimum = 1)]
    pub list_id: Option<ListId>,
    /// A member of the list to assign the task to; `null` or absent for nobody.
    #[serde(default)]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 255, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub assignee_id: Option<UserId>,
    /// The client's own stable id for the task (unique in the list: a second create with it
    /// is a 409 naming the first); a UUID when absent.
    #[serde(default)]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 255, pattern = r"^[!-~]+$")]
    pub uid: Option<TaskUid>,
    /// The task to create this one under (in the same list; with no `list_id`, in its list).
    #[serde(default, deserialize_with = "task_id")]
    #[schema(value_type = Option<i64>, minimum = 1)]
    pub parent_id: Option<TaskId>,
    /// How the task repeats (needs a `due_at`); `null` or absent for never.
    #[serde(default)]
    pub recurrence: Option<Recurrence>,
    /// The iCalendar object a calendar client wrote the task as (CalDAV only, never JSON):
    /// kept so that what the service does not model goes back to the client unchanged.
    #[serde(skip)]
    pub ical: Option<String>,
    /// The name a calendar client gave the task's resource, when not its uid (CalDAV only).
    #[serde(skip)]
    pub dav_name: Option<String>,
    /// When a calendar client says the task was completed (CalDAV only: the API's
    /// completions are stamped by the service).
    #[serde(skip)]
    pub completed_at: Option<DateTime<Utc>>,
}

/// The body of `PUT /api/tasks/{task_id}`: every field optional, absent fields unchanged.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTask {
    /// A new title; `null` is refused (a task always has a title).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, min_length = 1, max_length = 200, pattern = r"^[^\u0000]*[^\u0000-\u0020\u007F-\u00A0\u00AD\u034F\u061C\u115F\u1160\u1680\u17B4\u17B5\u180B-\u180F\u2000-\u200F\u2028-\u202F\u205F-\u206F\u2800\u3000\u3164\uFE00-\uFE0F\uFEFF\uFFA0][^\u0000]*$")]
    pub title: Option<TaskTitle>,
    /// A new description; `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 2000, pattern = r"^[^\u0000]*$")]
    pub description: Option<Option<TaskDescription>>,
    /// A new status; `null` is refused.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = TaskStatus)]
    pub status: Option<TaskStatus>,
    /// A new due date; `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub due_at: Option<Option<Timestamp>>,
    /// A new priority; `null` is refused.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Priority)]
    pub priority: Option<Priority>,
    /// New tags, replacing the old; `[]` clears them, `null` is refused.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Vec<Tag>, max_items = 20)]
    pub tags: Option<Tags>,
    /// Another list to move the task to, at its end (write access to both lists); `null` is
    /// refused.
    #[serde(default, deserialize_with = "list_id")]
    #[schema(value_type = i64, minimum = 1)]
    pub list_id: Option<ListId>,
    /// A member of the task's list (its new list, with `list_id`); `null` unassigns.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 255, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub assignee_id: Option<Option<UserId>>,
    /// A new parent in the task's list (its new list, with `list_id`); `null` makes it a
    /// top-level task.
    #[serde(default, deserialize_with = "nullable_task_id")]
    #[schema(value_type = Option<i64>, minimum = 1)]
    pub parent_id: Option<Option<TaskId>>,
    /// A new recurrence (needs a `due_at`); `null` stops it repeating.
    #[serde(default, deserialize_with = "nullable")]
    pub recurrence: Option<Option<Recurrence>>,
    /// A new iCalendar object from a calendar client (CalDAV only, never JSON).
    #[serde(skip)]
    pub ical: Option<String>,
    /// A new name of the task's resource for calendar clients; `None` inside: its uid.
    #[serde(skip)]
    pub dav_name: Option<Option<String>>,
    /// When a calendar client says the task was completed, for a change of `status` to
    /// completed (CalDAV only: the API's completions are stamped by the service).
    #[serde(skip)]
    pub completed_at: Option<DateTime<Utc>>,
}

impl UpdateTask {
    /// True when the body named no field at all, so nothing changes.
    pub fn is_empty(&self) -> bool {
        self.title.is_none()
            && self.description.is_none()
            && self.status.is_none()
            && self.due_at.is_none()
            && self.priority.is_none()
            && self.tags.is_none()
            && self.list_id.is_none()
            && self.assignee_id.is_none()
            && self.parent_id.is_none()
            && self.recurrence.is_none()
            && self.ical.is_none()
            && self.dav_name.is_none()
    }
}

/// Where `POST /api/tasks/{task_id}/move` puts a task: right after one task (`after`), right
/// before one (`before`), at the top (`after: null`) or at the bottom (`before: null`).
///
/// The move body deserializes straight into it, so a handler that holds one knows the body
/// named exactly one neighbour, a valid task id or `null`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "MoveTask")]
pub enum Placement {
    After(Option<TaskId>),
    Before(Option<TaskId>),
}

/// The body of `POST /api/tasks/{task_id}/move`: where the task goes, and (`list_id`) the list
/// it goes to, when that is another list than its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "MoveTask")]
pub struct Move {
    pub placement: Placement,
    pub list: Option<ListId>,
}

impl Placement {
    /// The neighbour it names, if any.
    pub fn anchor(self) -> Option<TaskId> {
        match self {
            Placement::After(anchor) | Placement::Before(anchor) => anchor,
        }
    }
}

impl TryFrom<MoveTask> for Move {
    type Error = &'static str;

    fn try_from(body: MoveTask) -> Result<Self, Self::Error> {
        let list = body.list_id;
        Ok(Move {
            placement: Placement::try_from(body)?,
            list,
        })
    }
}

/// The body of `POST /api/tasks/{task_id}/move` as sent; [`Placement`] checks that it names
/// exactly one of `after` and `before`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MoveTask {
    /// Another list to move the task to (write access to both); the neighbour is in it.
    #[serde(default, deserialize_with = "list_id")]
    list_id: Option<ListId>,
    /// Put the task right after this one; `null` for the top of the list.
    #[serde(default, deserialize_with = "neighbour")]
    after: Option<Option<TaskId>>,
    /// Put the task right before this one; `null` for the bottom of the list.
    #[serde(default, deserialize_with = "neighbour")]
    before: Option<Option<TaskId>>,
}

impl TryFrom<MoveTask> for Placement {
    /// What is wrong with the body as a whole; a neighbour that is not a task id is refused
    /// earlier, while its own field is read, so that the error names the field.
    type Error = &'static str;

    fn try_from(body: MoveTask) -> Result<Self, Self::Error> {
        match (body.after, body.before) {
            (Some(after), None) => Ok(Placement::After(after)),
            (None, Some(before)) => Ok(Placement::Before(before)),
            (Some(_), Some(_)) => Err("give either `after` or `before`, not both"),
            (None, None) => Err("give `after` or `before`"),
        }
    }
}

/// How the OpenAPI document describes a move: one of two shapes.
#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(untagged)]
#[schema(as = MoveTask)]
pub enum MoveTaskSchema {
    /// Right after the task `after`; `null` for the top of the list.
    #[serde(deny_unknown_fields)]
    After {
        #[schema(required = true, minimum = 1)]
        after: Option<i64>,
        /// Another list to move the task to (write access to both lists); `after` is then a
        /// task of that list.
        #[schema(minimum = 1)]
        list_id: Option<i64>,
    },
    /// Right before the task `before`; `null` for the bottom of the list.
    #[serde(deny_unknown_fields)]
    Before {
        #[schema(required = true, minimum = 1)]
        before: Option<i64>,
        /// Another list to move the task to (write access to both lists); `before` is then a
        /// task of that list.
        #[schema(minimum = 1)]
        list_id: Option<i64>,
    },
}

/// A neighbour in a move, present: a task id, or `null` for an end of the list. Written as an
/// integer only: `4.0` and `4e0` are refused, as `04` is in a path, so that an id has one
/// spelling everywhere.
fn neighbour<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<TaskId>>, D::Error> {
    let Some(number) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(Some(None));
    };
    number
        .as_i64()
        .and_then(|raw| TaskId::try_from(raw).ok())
        .map(|id| Some(Some(id)))
        .ok_or_else(|| D::Error::custom("must be a positive task id or null"))
}

/// A list id in a body: an integer only (`3.0` and `3e0` are refused), present, not `null`.
fn list_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ListId>, D::Error> {
    let number = serde_json::Number::deserialize(d)?;
    number
        .as_i64()
        .and_then(|raw| ListId::try_from(raw).ok())
        .map(Some)
        .ok_or_else(|| D::Error::custom("must be a positive list id"))
}

/// A task id in a body: an integer only, present, not `null`.
fn task_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<TaskId>, D::Error> {
    let number = serde_json::Number::deserialize(d)?;
    number
        .as_i64()
        .and_then(|raw| TaskId::try_from(raw).ok())
        .map(Some)
        .ok_or_else(|| D::Error::custom("must be a positive task id"))
}

/// A task id in a body that may be `null`.
fn nullable_task_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<TaskId>>, D::Error> {
    neighbour(d).map_err(|_| D::Error::custom("must be a positive task id or null"))
}

/// A field that may be absent but, when present, must not be `null`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// A field where absent (`None`) and `null` (`Some(None)`) mean different things.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Which slice of a user's tasks to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: u32,
    pub offset: i64,
}

impl Page {
    pub const DEFAULT_LIMIT: u32 = 50;
    pub const MAX_LIMIT: u32 = 100;
}

impl Default for Page {
    fn default() -> Self {
        Page {
            limit: Self::DEFAULT_LIMIT,
            offset: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_accepts_200_characters_and_refuses_201() {
        assert!(TaskTitle::try_from("a".repeat(200)).is_ok());
        assert_eq!(
            TaskTitle::try_from("a".repeat(201)),
            Err(TextError::TooLong(200))
        );
    }

    #[test]
    fn title_length_counts_characters_not_bytes() {
        // 200 two-byte characters is 400 bytes but still a valid title.
        assert!(TaskTitle::try_from("ü".repeat(200)).is_ok());
        assert!(TaskTitle::try_from("😀".repeat(200)).is_ok());
        assert_eq!(
            TaskTitle::try_from("😀".repeat(201)),
            Err(TextError::TooLong(200))
        );
    }

    #[test]
    fn title_refuses_empty_and_blank() {
        for blank in [
            "",
            " ",
            "\t\n",
            "\u{3000}",
            "\u{200B}",
            "\u{200B}\u{200D}\u{FEFF}",
            "\u{1}\u{7f}",
            "\u{2066}\u{2069}",
            "\u{3164}",
        ] {
            assert_eq!(
                TaskTitle::try_from(blank.to_owned()),
                Err(TextError::Blank),
                "{blank:?}"
            );
        }
        assert!(TaskTitle::try_from(" a ".to_owned()).is_ok());
        assert!(TaskTitle::try_from("\u{200B}a".to_owned()).is_ok());
        assert!(TaskTitle::try_from("😀".to_owned()).is_ok());
    }

    #[test]
    fn request_schemas_carry_the_title_pattern() {
        use super::super::text::TITLE_PATTERN;
        use utoipa::PartialSchema;
        for schema in [CreateTask::schema(), UpdateTask::schema()] {
            let json = serde_json::to_value(schema).expect("serializes");
            assert_eq!(json["properties"]["title"]["pattern"], TITLE_PATTERN);
        }
    }

    #[test]
    fn text_refuses_nul() {
        assert_eq!(
            TaskTitle::try_from("a\0b".to_owned()),
            Err(TextError::ContainsNul)
        );
        assert_eq!(
            TaskDescription::try_from("\0".to_owned()),
            Err(TextError::ContainsNul)
        );
    }

    #[test]
    fn description_accepts_2000_characters_and_refuses_2001() {
        assert!(TaskDescription::try_from("d".repeat(2000)).is_ok());
        assert!(TaskDescription::try_from(String::new()).is_ok());
        assert_eq!(
            TaskDescription::try_from("d".repeat(2001)),
            Err(TextError::TooLong(2000))
        );
    }

    #[test]
    fn status_parses_only_the_three_names() {
        for status in [
            TaskStatus::Pending,
            TaskStatus::InProgress,
            TaskStatus::Completed,
        ] {
            assert_eq!(status.as_str().parse::<TaskStatus>(), Ok(status));
            let json = serde_json::to_string(&status).expect("serializes");
            assert_eq!(json, format!("\"{}\"", status.as_str()));
        }
        for bad in ["done", "Pending", "", "in-progress"] {
            assert!(bad.parse::<TaskStatus>().is_err(), "{bad}");
            assert!(serde_json::from_str::<TaskStatus>(&format!("\"{bad}\"")).is_err());
        }
    }

    #[test]
    fn create_task_defaults_and_rejects_unknown_fields() {
        let task: CreateTask = serde_json::from_str(r#"{"title":"x"}"#).expect("valid");
        assert_eq!(task.status, None);
        assert!(task.description.is_none());
        for body in [
            r#"{"title":"x","user_id":"mallory"}"#,
            r#"{"title":"x","id":7}"#,
            r#"{"title":"x","created_at":"2020-01-01T00:00:00Z"}"#,
            r#"{"description":"no title"}"#,
            r#"{"title":null}"#,
            r#"{"title":5}"#,
        ] {
            assert!(serde_json::from_str::<CreateTask>(body).is_err(), "{body}");
        }
    }

    #[test]
    fn update_task_tells_absent_from_null() {
        let absent: UpdateTask = serde_json::from_str("{}").expect("valid");
        assert!(absent.is_empty());
        let cleared: UpdateTask = serde_json::from_str(r#"{"description":null}"#).expect("valid");
        assert_eq!(cleared.description, Some(None));
        assert!(serde_json::from_str::<UpdateTask>(r#"{"title":null}"#).is_err());
        assert!(serde_json::from_str::<UpdateTask>(r#"{"status":null}"#).is_err());
    }

    #[test]
    fn a_move_body_names_exactly_one_neighbour() {
        let placement = |json: &str| serde_json::from_str::<Placement>(json);
        let id = |n| TaskId::try_from(n).ok();
        assert_eq!(
            placement(r#"{"after": 4}"#).ok(),
            Some(Placement::After(id(4)))
        );
        assert_eq!(
            placement(r#"{"before": null}"#).ok(),
            Some(Placement::Before(None))
        );
        for (json, why) in [
            (r#"{"after": 4, "before": 5}"#, "not both"),
            (r#"{"after": null, "before": null}"#, "not both"),
            ("{}", "give `after` or `before`"),
            (r#"{"after": 0}"#, "must be a positive task id or null"),
            (r#"{"before": 4.0}"#, "must be a positive task id or null"),
            (r#"{"after": "4"}"#, "expected a JSON number"),
            (r#"{"after": 4, "x": 1}"#, "unknown field `x`"),
        ] {
            let error = placement(json).expect_err(json).to_string();
            assert!(error.contains(why), "{json}: {error}");
        }
    }
}
