//! What many devices need to stay in step: versions to write against, keys that make a
//! retried request safe, and the change feed an offline client catches up from.

use std::fmt;
use std::time::Duration;

use serde::{Serialize, Serializer};
use utoipa::ToSchema;

use super::ids::{ListId, TaskId};
use super::list::List;
use super::task::Task;

/// How long the outcome of a request with an `Idempotency-Key` is kept: a repeat within this
/// time gets the original response, a later one is a new request.
pub const IDEMPOTENCY_KEY_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// The longest `Idempotency-Key`, in bytes (it is printable ASCII).
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 255;

/// What a conditional write requires of the task's current version (`If-Match`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Expect {
    /// No condition, or `*`: the task only has to exist, as every write requires anyway.
    #[default]
    Any,
    /// One of these versions; an empty list never matches (tags of other tasks, weak tags).
    OneOf(Vec<i64>),
}

impl Expect {
    /// Whether a task at `version` satisfies the condition.
    pub fn admits(&self, version: i64) -> bool {
        match self {
            Expect::Any => true,
            Expect::OneOf(versions) => versions.contains(&version),
        }
    }
}

/// A request's `Idempotency-Key` and the fingerprint of the request it was sent with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    key: String,
    fingerprint: [u8; 32],
}

impl IdempotencyKey {
    /// `key` as validated by the HTTP layer (1–255 printable ASCII characters).
    pub fn new(key: String, fingerprint: [u8; 32]) -> Self {
        IdempotencyKey { key, fingerprint }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn fingerprint(&self) -> &[u8; 32] {
        &self.fingerprint
    }
}

/// What a write made under an `Idempotency-Key` did, as its record keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A task was created.
    Created,
    /// A task was moved.
    Moved,
    /// A list was created.
    ListCreated,
}

/// The recorded outcome of a request made with an `Idempotency-Key`, sent again on a repeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    pub outcome: Outcome,
    /// The original response body, byte for byte.
    pub body: String,
    /// The task (or, for [`Outcome::ListCreated`], the list) the request created or changed,
    /// for `Location` and `ETag`.
    pub id: TaskId,
    pub version: i64,
}

/// The result of a write that may have been made before under the same key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Once<T> {
    /// The write happened now.
    Done(T),
    /// The same request was made before: its original outcome.
    Replayed(Replay),
}

/// A position in a user's change feed: every change (to a task, a list, a membership) takes
/// one, unique in the database and in the order the changes commit; 0 is the start, before
/// any change. Positions below [`ChangeCursor::FIRST`] were handed out before lists existed
/// (per-user counters), and are no longer served.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChangeCursor(i64);

/// A `since` that is not a cursor the service hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be a cursor from a previous page (next_cursor) or an event id")]
pub struct InvalidCursor;

impl ChangeCursor {
    pub const START: ChangeCursor = ChangeCursor(0);

    /// The first position of the feed as it is now (2^39): older cursors counted each user's
    /// changes on their own, and must start again.
    pub const FIRST: i64 = 1 << 39;

    /// A cursor handed out before lists existed, which can no longer be served.
    pub fn is_from_before_lists(self) -> bool {
        self != ChangeCursor::START && self.0 < ChangeCursor::FIRST
    }

    pub fn get(self) -> i64 {
        self.0
    }

    /// A cursor read back from storage.
    pub fn from_stored(seq: i64) -> Option<Self> {
        (seq >= 0).then_some(ChangeCursor(seq))
    }
}

impl std::str::FromStr for ChangeCursor {
    type Err = InvalidCursor;

    /// Digits only, as the service writes them.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidCursor);
        }
        s.parse().map(ChangeCursor).map_err(|_| InvalidCursor)
    }
}

impl fmt::Display for ChangeCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Cursors go over the wire as strings: clients must not do arithmetic on them.
impl Serialize for ChangeCursor {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// One entry of the change feed: the task as it now is, or the news that it was deleted; with
/// `include=lists`, also a list as it now is, or the news that the caller lost it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(tag = "op", rename_all = "lowercase")]
// Nearly every entry is a task's upsert, the largest: boxing it would add an allocation to
// each entry to make the rare small ones smaller.
#[allow(clippy::large_enum_variant)]
pub enum Change {
    /// The task was created or changed (restored and moved included): store this copy.
    Upsert {
        #[schema(value_type = String, example = "42")]
        cursor: ChangeCursor,
        task: Task,
    },
    /// The task was deleted: drop it.
    Delete {
        #[schema(value_type = String, example = "43")]
        cursor: ChangeCursor,
        #[schema(value_type = i64, example = 7)]
        id: TaskId,
    },
    /// The list was created, joined or changed: store this copy.
    #[serde(rename = "upsert")]
    ListUpsert {
        #[schema(value_type = String, example = "44")]
        cursor: ChangeCursor,
        list: List,
    },
    /// The caller lost the list (left, removed, list deleted): drop it and its tasks.
    #[serde(rename = "delete")]
    ListDelete {
        #[schema(value_type = String, example = "45")]
        cursor: ChangeCursor,
        #[schema(value_type = i64, example = 3)]
        list_id: ListId,
    },
}

impl Change {
    pub fn cursor(&self) -> ChangeCursor {
        match self {
            Change::Upsert { cursor, .. }
            | Change::Delete { cursor, .. }
            | Change::ListUpsert { cursor, .. }
            | Change::ListDelete { cursor, .. } => *cursor,
        }
    }

    /// Whether this entry is about a list rather than a task.
    pub fn is_about_a_list(&self) -> bool {
        matches!(self, Change::ListUpsert { .. } | Change::ListDelete { .. })
    }
}

/// One page of the change feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ChangePage {
    /// In feed order; each task appears once, in its latest state.
    pub changes: Vec<Change>,
    /// Where the next page starts: send it back as `since`.
    #[schema(value_type = String, example = "43")]
    pub next_cursor: ChangeCursor,
    /// Whether more changes follow right away.
    pub has_more: bool,
    /// Whether a change has committed that cannot be read yet (an older transaction is still
    /// open): a live stream reads again shortly instead of waiting for the next wake.
    #[serde(skip)]
    pub settling: bool,
}

/// How much of the feed a page holds.
pub struct FeedLimit;

impl FeedLimit {
    pub const DEFAULT: u32 = 100;
    pub const MAX: u32 = 1000;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_plain_digits() {
        assert_eq!("0".parse(), Ok(ChangeCursor::START));
        assert_eq!("17".parse::<ChangeCursor>().map(ChangeCursor::get), Ok(17));
        for bad in ["", "-1", "+1", "1.0", "x", "99999999999999999999", " 1"] {
            assert_eq!(bad.parse::<ChangeCursor>(), Err(InvalidCursor), "{bad:?}");
        }
        assert_eq!(
            serde_json::to_string(&ChangeCursor(5)).ok().as_deref(),
            Some("\"5\"")
        );
    }

    #[test]
    fn a_condition_admits_only_its_versions() {
        assert!(Expect::Any.admits(3));
        assert!(Expect::OneOf(vec![2, 3]).admits(3));
        assert!(!Expect::OneOf(vec![2]).admits(3));
        assert!(!Expect::OneOf(vec![]).admits(1));
    }
}
