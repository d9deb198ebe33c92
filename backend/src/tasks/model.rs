//! The task domain: types that can only hold valid values.
//!
//! Request bodies deserialize straight into these types, so a handler that received a
//! `CreateTask` knows its title is 1–200 characters and not blank, and the storage layer never
//! sees text the database would refuse (such as a NUL character, which PostgreSQL cannot store).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The most characters (Unicode scalar values) a title may have.
pub const TITLE_MAX_CHARS: usize = 200;
/// The most characters (Unicode scalar values) a description may have.
pub const DESCRIPTION_MAX_CHARS: usize = 2000;

// Request schemas carry the text rules as OpenAPI (ECMA-262) patterns too, so that generated
// clients and fuzzers know them: no NUL anywhere, and a title needs one character that is not
// white space (exactly the characters Rust's `str::trim` removes).

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

fn check_text(text: &str, max_chars: usize) -> Result<(), TextError> {
    if text.contains('\0') {
        return Err(TextError::ContainsNul);
    }
    // Characters, not bytes: "ü" is one character and two bytes.
    if text.chars().count() > max_chars {
        return Err(TextError::TooLong(max_chars));
    }
    Ok(())
}

/// A task title: 1 to 200 characters, not only white space, no NUL.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct TaskTitle(String);

impl TryFrom<String> for TaskTitle {
    type Error = TextError;

    fn try_from(title: String) -> Result<Self, Self::Error> {
        if title.trim().is_empty() {
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

/// A task's id: a positive integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(i64);

impl TaskId {
    pub fn get(self) -> i64 {
        self.0
    }
}

impl std::str::FromStr for TaskId {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.parse::<i64>() {
            Ok(id) if id > 0 => Ok(TaskId(id)),
            _ => Err("must be a positive integer"),
        }
    }
}

impl From<i64> for TaskId {
    /// For ids read back from the database, which are always positive.
    fn from(id: i64) -> Self {
        TaskId(id)
    }
}

/// A stored task, as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Task {
    #[schema(example = 42, minimum = 1)]
    pub id: i64,
    #[schema(example = "Buy milk", min_length = 1, max_length = 200)]
    pub title: String,
    #[schema(example = "Two litres, semi-skimmed", max_length = 2000)]
    pub description: Option<String>,
    pub status: TaskStatus,
    /// The owner: the `sub` claim of the token that created the task.
    #[schema(example = "user_2NNEqL")]
    pub user_id: String,
    /// When the task was created (RFC 3339, UTC).
    pub created_at: DateTime<Utc>,
    /// When the task last changed (RFC 3339, UTC).
    pub updated_at: DateTime<Utc>,
}

/// The body of `POST /api/tasks`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTask {
    #[schema(value_type = String, min_length = 1, max_length = 200, pattern = r"^[^\u0000]*[^\u0000\t\n\u000B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\u0000]*$", example = "Buy milk")]
    pub title: TaskTitle,
    #[serde(default)]
    #[schema(value_type = Option<String>, max_length = 2000, pattern = r"^[^\u0000]*$")]
    pub description: Option<TaskDescription>,
    /// Defaults to `pending`; `null` is refused.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = TaskStatus)]
    pub status: Option<TaskStatus>,
}

/// The body of `PUT /api/tasks/{task_id}`: every field optional, absent fields unchanged.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTask {
    /// A new title; `null` is refused (a task always has a title).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, min_length = 1, max_length = 200, pattern = r"^[^\u0000]*[^\u0000\t\n\u000B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\u0000]*$")]
    pub title: Option<TaskTitle>,
    /// A new description; `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 2000, pattern = r"^[^\u0000]*$")]
    pub description: Option<Option<TaskDescription>>,
    /// A new status; `null` is refused.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = TaskStatus)]
    pub status: Option<TaskStatus>,
}

impl UpdateTask {
    /// True when the body named no field at all, so nothing changes.
    pub fn is_empty(&self) -> bool {
        self.title.is_none() && self.description.is_none() && self.status.is_none()
    }
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

/// The query string of `GET /api/tasks`. Unknown parameters are ignored (cache busters are
/// common); a known one with a bad value is a 422, never silently clamped.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// How many tasks to return, 1 to 100.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, default = 50)]
    limit: Option<Limit>,
    /// How many of the newest tasks to skip.
    #[param(value_type = Option<i64>, minimum = 0, default = 0)]
    offset: Option<Offset>,
}

impl From<ListQuery> for Page {
    fn from(query: ListQuery) -> Self {
        Page {
            limit: query
                .limit
                .map_or(Page::DEFAULT_LIMIT, |Limit(limit)| limit),
            offset: query.offset.map_or(0, |Offset(offset)| offset),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(try_from = "String")]
struct Limit(u32);

impl TryFrom<String> for Limit {
    type Error = String;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        match raw.parse::<u32>() {
            Ok(limit) if (1..=Page::MAX_LIMIT).contains(&limit) => Ok(Limit(limit)),
            _ => Err(format!("must be an integer from 1 to {}", Page::MAX_LIMIT)),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(try_from = "String")]
struct Offset(i64);

impl TryFrom<String> for Offset {
    type Error = &'static str;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        match raw.parse::<i64>() {
            Ok(offset) if offset >= 0 => Ok(Offset(offset)),
            _ => Err("must be a non-negative integer"),
        }
    }
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
        for blank in ["", " ", "\t\n", "\u{3000}"] {
            assert_eq!(
                TaskTitle::try_from(blank.to_owned()),
                Err(TextError::Blank),
                "{blank:?}"
            );
        }
        assert!(TaskTitle::try_from(" a ".to_owned()).is_ok());
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
    fn task_id_must_be_a_positive_integer() {
        assert_eq!("1".parse::<TaskId>().map(TaskId::get), Ok(1));
        assert_eq!(
            "9223372036854775807".parse::<TaskId>().map(TaskId::get),
            Ok(i64::MAX)
        );
        for bad in ["0", "-1", "abc", "", "1.5", "9223372036854775808", " 1"] {
            assert!(bad.parse::<TaskId>().is_err(), "{bad}");
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
}
