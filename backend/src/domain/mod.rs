//! The types every layer shares: who owns a task, which task, and what a task is.
//!
//! This module sits at the bottom of the crate: it imports nothing from the rest of it, so the
//! HTTP layer, the handlers and the stores can all depend on it without depending on each other.

pub mod calendar;
mod fields;
mod ids;
pub mod list;
mod position;
pub mod query;
pub mod recurrence;
pub mod sync;
pub mod task;
mod text;

pub use fields::{MAX_TAGS, Priority, TAG_MAX_CHARS, Tag, Tags, Timestamp};
pub use ids::{
    InvalidTaskId, InvalidUserId, ListId, MAX_UID_CHARS, MAX_USER_ID_CHARS, TaskId, TaskUid, UserId,
};
pub use list::{List, Role};
pub use position::{Position, PositionError};
pub use query::{Filter, Keyset, SortField, SortKey, SortValue, TaskQuery};
pub use recurrence::{Completion, Recurrence, RepeatFrom};
pub use sync::{
    Change, ChangeCursor, ChangePage, Expect, FeedLimit, IdempotencyKey, InvalidCursor, Once,
    Outcome, Replay,
};
pub use task::{
    CreateTask, DESCRIPTION_MAX_CHARS, Move, Page, Placement, TITLE_MAX_CHARS, Task,
    TaskDescription, TaskStatus, TaskTitle, TextError, UpdateTask,
};
