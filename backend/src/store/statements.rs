//! What a backend supplies: its statements, each one round trip or one short transaction, with
//! its rows already turned into domain types. The control flow built on them (`tasks`,
//! `feed`, `upkeep`) is the same for every backend.

use std::future::Future;

use chrono::{DateTime, SubsecRound, Utc};

use super::row::ReplayRow;
use super::{PoolStatus, StoreError};
use crate::domain::{
    Change, ChangeCursor, CreateTask, Expect, Filter, IdempotencyKey, Outcome, Placement, Position,
    Task, TaskId, TaskQuery, UpdateTask, UserId,
};

/// A write to one task that may be made under an idempotency key.
#[derive(Debug, Clone, Copy)]
pub(super) enum Write<'a> {
    /// A new task at `position`; `None`: after the owner's last task, where the backend finds
    /// it in the insert itself ([`Statements::POSITION_IN_INSERT`]).
    Insert {
        task: &'a CreateTask,
        position: Option<&'a Position>,
    },
    /// A live task to `position`, if its version is one `expect` admits.
    Move {
        id: TaskId,
        position: &'a Position,
        expect: &'a Expect,
    },
    /// A live task by `placement` with every key of the owner rewritten (see
    /// [`super::tasks::rekeyed_order`]), if its version is one `expect` admits: one
    /// transaction that locks the owner's rows first.
    Rekey {
        id: TaskId,
        placement: Placement,
        expect: &'a Expect,
    },
}

impl Write<'_> {
    /// What the write does, as its idempotency record keeps it.
    pub fn outcome(&self) -> Outcome {
        match self {
            Write::Insert { .. } => Outcome::Created,
            Write::Move { .. } | Write::Rekey { .. } => Outcome::Moved,
        }
    }
}

/// Changes of the feed in order, and the owner's counters (`last_change`, `purged_through`).
pub(super) type FeedRows = (Vec<Change>, Option<(i64, i64)>);

/// Which rows a purge removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Purge {
    /// Tasks that went to the trash before the cutoff.
    Trashed,
    /// Idempotency records made before the cutoff.
    Keys,
}

/// A backend's statements. Every method that reads or writes tasks takes the owner and
/// filters on it in SQL.
pub(super) trait Statements: Send + Sync + 'static {
    /// A transaction in progress, for a write under an idempotency key.
    type Transaction: Send;
    /// Held while a write under a key runs, where the backend needs more than the
    /// transaction to keep a second request with the key out.
    type Claim: Send;

    /// Whether [`Write::Insert`] without a position finds one in the insert itself.
    const POSITION_IN_INSERT: bool;

    /// One page of the owner's tasks matching `query`.
    fn select_page(
        &self,
        owner: &UserId,
        query: &TaskQuery,
    ) -> impl Future<Output = Result<Vec<Task>, StoreError>> + Send;

    /// How many of the owner's tasks match `filter`.
    fn count_matching(
        &self,
        owner: &UserId,
        filter: &Filter,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// One of the owner's live tasks.
    fn select_task(
        &self,
        owner: &UserId,
        id: TaskId,
    ) -> impl Future<Output = Result<Option<Task>, StoreError>> + Send;

    /// The largest position among the owner's tasks.
    fn last_position(
        &self,
        owner: &UserId,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// The position of one of the owner's live tasks.
    fn position_of(
        &self,
        owner: &UserId,
        id: TaskId,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// The nearest position above `from` (`above`) or below it, skipping the task `moving`;
    /// without `from`, the owner's first or last position.
    fn neighbour(
        &self,
        owner: &UserId,
        moving: TaskId,
        from: Option<&Position>,
        above: bool,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// `write`, on a connection of its own (a transaction where the write needs one).
    /// `None` when it matched no task.
    fn execute(
        &self,
        owner: &UserId,
        write: Write<'_>,
    ) -> impl Future<Output = Result<Option<Task>, StoreError>> + Send;

    /// The fields present in `changes`, if some field really differs and the version is one
    /// `expect` admits; `None` otherwise.
    fn update_fields(
        &self,
        owner: &UserId,
        id: TaskId,
        changes: &UpdateTask,
        expect: &Expect,
    ) -> impl Future<Output = Result<Option<Task>, StoreError>> + Send;

    /// Puts a live task at a version `expect` admits in the trash; whether one was.
    fn trash(
        &self,
        owner: &UserId,
        id: TaskId,
        expect: &Expect,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Takes a task out of the trash; `None` when it was not in the trash.
    fn untrash(
        &self,
        owner: &UserId,
        id: TaskId,
    ) -> impl Future<Output = Result<Option<Task>, StoreError>> + Send;

    /// Marks `key` as taken by this request in this process, or says it already is.
    fn claim(&self, owner: &UserId, key: &IdempotencyKey) -> Result<Self::Claim, StoreError>;

    /// Begins the transaction of a write under a key.
    fn begin(&self) -> impl Future<Output = Result<Self::Transaction, StoreError>> + Send;

    /// Takes the key's lock for the rest of `transaction`; `false` when another transaction
    /// holds it.
    fn lock_key(
        &self,
        transaction: &mut Self::Transaction,
        owner: &UserId,
        key: &IdempotencyKey,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The outcome recorded under `key` after `valid_after`.
    fn recorded(
        &self,
        transaction: &mut Self::Transaction,
        owner: &UserId,
        key: &IdempotencyKey,
        valid_after: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<ReplayRow>, StoreError>> + Send;

    /// `write` inside `transaction`.
    fn execute_in(
        &self,
        transaction: &mut Self::Transaction,
        owner: &UserId,
        write: Write<'_>,
    ) -> impl Future<Output = Result<Option<Task>, StoreError>> + Send;

    /// Records that `key` did `outcome` to `task` (its response body, `body`), replacing a
    /// record of the key older than `valid_after`; `false` when a live one is there.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        transaction: &mut Self::Transaction,
        owner: &UserId,
        key: &IdempotencyKey,
        outcome: Outcome,
        task: &Task,
        body: &str,
        now: DateTime<Utc>,
        valid_after: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn commit(
        &self,
        transaction: Self::Transaction,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Ends `transaction` at once: until then it may hold the key's lock, or the database's
    /// write lock.
    fn rollback(&self, transaction: Self::Transaction) -> impl Future<Output = ()> + Send;

    /// Up to `limit` changes of the owner after `since`, in feed order, and the owner's
    /// counters (`last_change`, `purged_through`), read after the changes.
    fn feed_rows(
        &self,
        owner: &UserId,
        since: ChangeCursor,
        limit: i64,
    ) -> impl Future<Output = Result<FeedRows, StoreError>> + Send;

    /// The change counters of those of `owners` that have written, as stored.
    fn counter_rows(
        &self,
        owners: &[UserId],
    ) -> impl Future<Output = Result<Vec<(String, i64)>, StoreError>> + Send;

    /// See [`super::ChangeFeed::announce`].
    fn announce(&self, owners: &[UserId]) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Removes up to `limit` rows of `what` older than `before`, without waiting on another
    /// instance's purge; how many.
    fn purge_batch(
        &self,
        what: Purge,
        before: DateTime<Utc>,
        limit: i64,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Applies the embedded migrations; the versions the database had before, and the
    /// migrator (to tell which were applied now).
    fn run_migrations(
        &self,
    ) -> impl Future<Output = Result<(Vec<i64>, &'static sqlx::migrate::Migrator), StoreError>> + Send;

    /// Up to `limit` tasks written before the folded columns existed: id, title, description.
    fn unfolded(
        &self,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<(i64, String, Option<String>)>, StoreError>> + Send;

    /// Sets a task's folded title and description.
    fn set_folded(
        &self,
        id: i64,
        title_key: String,
        description_key: Option<String>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Stores `key` under `name` unless a key is there already, then reads the one there.
    fn keep_key(
        &self,
        name: &str,
        key: [u8; 32],
    ) -> impl Future<Output = Result<Vec<u8>, StoreError>> + Send;

    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn close(&self) -> impl Future<Output = ()> + Send;

    fn pool_status(&self) -> PoolStatus;
}

/// The current time at the precision both databases store (microseconds), so that a task
/// returned by `create` is equal to the same task read back later.
pub(super) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// The versions a condition admits, as a list to bind (`None`: any).
pub(super) fn admitted_versions(expect: &Expect) -> Option<Vec<i64>> {
    match expect {
        Expect::Any => None,
        Expect::OneOf(versions) => Some(versions.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_has_microsecond_precision() {
        assert_eq!(now().timestamp_subsec_nanos() % 1_000, 0);
    }
}
