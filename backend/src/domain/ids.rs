//! Identifiers that can only hold valid values: a task's id, a list's id and a user's id.

use std::fmt;

use serde::Serialize;

/// The most characters a user id (`sub`) may have; mirrors the `tasks.user_id` check.
pub const MAX_USER_ID_CHARS: usize = 255;

/// The id of a user: the `sub` claim of a verified token. Every storage call is scoped to one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct UserId(String);

impl TryFrom<String> for UserId {
    type Error = InvalidUserId;

    fn try_from(sub: String) -> Result<Self, Self::Error> {
        UserId::parse(sub)
    }
}

/// Why a user id was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a user id must be 1 to {MAX_USER_ID_CHARS} characters without control characters")]
pub struct InvalidUserId;

impl UserId {
    /// Accepts a non-empty id of at most 255 characters without control characters
    /// (PostgreSQL cannot store NUL, and control characters have no business in an id).
    pub fn parse(sub: impl Into<String>) -> Result<Self, InvalidUserId> {
        let sub = sub.into();
        let length = sub.chars().count();
        if length == 0 || length > MAX_USER_ID_CHARS || sub.chars().any(char::is_control) {
            return Err(InvalidUserId);
        }
        Ok(UserId(sub))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The most characters a task's `uid` may have.
pub const MAX_UID_CHARS: usize = 255;

/// A task's stable id, the one a client (or a calendar app) knows it by: 1 to 255 visible
/// ASCII characters (`!` to `~`), unique in its list. A UUID unless the client chose one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct TaskUid(String);

/// Why a uid was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be 1 to {MAX_UID_CHARS} visible ASCII characters (no spaces or control characters)")]
pub struct InvalidUid;

impl TryFrom<String> for TaskUid {
    type Error = InvalidUid;

    fn try_from(uid: String) -> Result<Self, Self::Error> {
        TaskUid::parse(uid)
    }
}

impl TaskUid {
    pub fn parse(uid: impl Into<String>) -> Result<Self, InvalidUid> {
        let uid = uid.into();
        let visible = uid.bytes().all(|byte| (b'!'..=b'~').contains(&byte));
        match visible && (1..=MAX_UID_CHARS).contains(&uid.len()) {
            true => Ok(TaskUid(uid)),
            false => Err(InvalidUid),
        }
    }

    /// A new random one: a version 4 UUID.
    pub fn random() -> Self {
        TaskUid(uuid::Uuid::new_v4().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A task's id: a positive integer, written in its canonical decimal form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct TaskId(i64);

/// Why a task id was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be a positive integer without sign or leading zeros")]
pub struct InvalidTaskId;

impl TaskId {
    pub fn get(self) -> i64 {
        self.0
    }
}

impl TryFrom<i64> for TaskId {
    type Error = InvalidTaskId;

    fn try_from(id: i64) -> Result<Self, Self::Error> {
        if id > 0 {
            Ok(TaskId(id))
        } else {
            Err(InvalidTaskId)
        }
    }
}

impl std::str::FromStr for TaskId {
    type Err = InvalidTaskId;

    /// Only the canonical spelling: `1`, never `+1`, `01` or ` 1`, so that every task has
    /// exactly one URL (caches and logs then agree on which task a path names).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let canonical = s.bytes().all(|b| b.is_ascii_digit()) && !s.starts_with('0');
        if !canonical {
            return Err(InvalidTaskId);
        }
        s.parse::<i64>()
            .map_err(|_| InvalidTaskId)
            .and_then(TaskId::try_from)
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A list's id: a positive integer in its canonical decimal form, as a task's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ListId(i64);

impl ListId {
    pub fn get(self) -> i64 {
        self.0
    }
}

impl TryFrom<i64> for ListId {
    type Error = InvalidTaskId;

    fn try_from(id: i64) -> Result<Self, Self::Error> {
        TaskId::try_from(id).map(|id| ListId(id.get()))
    }
}

impl std::str::FromStr for ListId {
    type Err = InvalidTaskId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<TaskId>().map(|id| ListId(id.get()))
    }
}

impl fmt::Display for ListId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_are_bounded_and_printable() {
        assert!(UserId::parse("alice").is_ok());
        assert!(UserId::parse("u".repeat(255)).is_ok());
        assert!(UserId::parse("ü".repeat(255)).is_ok());
        for bad in [String::new(), "u".repeat(256), "a\0b".into(), "a\nb".into()] {
            assert_eq!(UserId::parse(bad.clone()), Err(InvalidUserId), "{bad:?}");
        }
    }

    #[test]
    fn task_ids_are_positive_and_canonical() {
        assert_eq!("1".parse::<TaskId>().map(TaskId::get), Ok(1));
        assert_eq!(
            "9223372036854775807".parse::<TaskId>().map(TaskId::get),
            Ok(i64::MAX)
        );
        for bad in [
            "0",
            "-1",
            "+1",
            "01",
            "00001",
            "abc",
            "",
            "1.5",
            "9223372036854775808",
            " 1",
            "1 ",
            "１",
        ] {
            assert!(bad.parse::<TaskId>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ids_read_back_from_storage_must_be_positive() {
        assert_eq!(TaskId::try_from(7).map(TaskId::get), Ok(7));
        assert!(TaskId::try_from(0).is_err());
        assert!(TaskId::try_from(-3).is_err());
    }

    #[test]
    fn ids_serialize_as_bare_values() {
        let json = serde_json::to_string(&(TaskId(3), UserId("bob".into()))).expect("serializes");
        assert_eq!(json, r#"[3,"bob"]"#);
    }
}
