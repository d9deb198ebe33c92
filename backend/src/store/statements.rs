//! What a backend supplies: its statements, each one round trip or one short transaction, with
//! its rows already turned into domain types. The control flow built on them (`tasks`,
//! `feed`, `upkeep`) is the same for every backend.

use std::future::Future;

use chrono::{DateTime, SubsecRound, Utc};

use super::row::ReplayRow;
use super::{PoolStatus, StoreError};
use crate::domain::list::{Accepted, Invitation, Member};
use crate::domain::{
    Change, ChangeCursor, CreateTask, Expect, Filter, IdempotencyKey, List, ListId, Outcome,
    Placement, Position, Role, Task, TaskId, TaskQuery, UpdateTask, UserId,
};

/// A write to one task that may be made under an idempotency key.
#[derive(Debug, Clone, Copy)]
pub(super) enum Write<'a> {
    /// A new task in `list` (`None`: the caller's Inbox, made if need be) at `position`;
    /// `None`: after the list's last task, where the backend finds it in the insert itself
    /// ([`Statements::POSITION_IN_INSERT`]). Only into a live list the caller may write, with
    /// an assignee who is a member of it.
    Insert {
        task: &'a CreateTask,
        list: Option<ListId>,
        position: Option<&'a Position>,
    },
    /// A live task of `list` (which the caller may write) to `position`, if its version is
    /// one `expect` admits and its key is still `from`, the one its new key was found from
    /// (a re-key of the list in between moves every key, and the gap with them).
    Move {
        id: TaskId,
        list: ListId,
        position: &'a Position,
        from: &'a str,
        expect: &'a Expect,
    },
    /// A live task of `list` by `placement` with every key of the list rewritten (see
    /// [`super::tasks::rekeyed_order`]), if its version is one `expect` admits: one
    /// transaction that locks the list's rows first.
    Rekey {
        id: TaskId,
        list: ListId,
        placement: Placement,
        expect: &'a Expect,
    },
}

/// A task in a subtree or a chain of ancestors ([`Statements::family`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub id: i64,
    pub parent_id: Option<i64>,
    /// Levels below (or, up a chain, above) the task it was found from.
    pub depth: i64,
    pub list_id: i64,
    pub completed: bool,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// A change that follows another to the tasks below or above it, each task at a new version
/// (so in the feed and the event stream).
#[derive(Debug, Clone, Copy)]
pub enum Cascade<'a> {
    /// Completes those of `ids` that are live and open.
    Complete { ids: &'a [i64], at: DateTime<Utc> },
    /// Puts those of `ids` that are live in the trash at `at`.
    Trash { ids: &'a [i64], at: DateTime<Utc> },
    /// Takes those of `ids` that are in the trash out of it.
    Restore { ids: &'a [i64] },
    /// Moves `ids` to the end of `list`, in this order, unassigning those whose assignee is
    /// not a member there.
    Relist { ids: &'a [i64], list: ListId },
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

/// Changes of the feed in order, and where the feed stood when they were read.
pub(super) type FeedRows = (Vec<Change>, FeedBounds);

/// Where a user's feed stood when a page was read, in the same snapshot as its rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct FeedBounds {
    /// Positions from here on may still commit: the page stops short of it.
    pub horizon: i64,
    /// No position handed out so far reaches this: a cursor past it was never issued here.
    pub frontier: i64,
    /// The newest position a purge removed: a cursor before it may have missed a change.
    pub purged_through: i64,
    /// The newest position of anything the user can read (0: nothing).
    pub head: i64,
}

/// An invitation to store: its role, limits and the hash of its token.
#[derive(Debug, Clone)]
pub(super) struct InvitationRequest {
    pub role: Role,
    pub max_uses: i64,
    pub expires_at: DateTime<Utc>,
    pub token_hash: [u8; 32],
    pub now: DateTime<Utc>,
}

/// Which rows a purge removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Purge {
    /// Tasks that went to the trash before the cutoff.
    Trashed,
    /// Lists that went to the trash before the cutoff, once none of their tasks is left.
    Lists,
    /// Departures and losses of the feed older than the cutoff.
    History,
    /// Idempotency records made before the cutoff.
    Keys,
}

/// A backend's statements. Every method that reads or writes tasks takes the caller and joins
/// their membership of the task's list into the same statement: no statement touches a task
/// of a list the caller is not a member of, and none writes one without the right role.
pub(super) trait Statements: Send + Sync + 'static {
    /// A transaction in progress, for a write under an idempotency key.
    type Transaction: Send;
    /// Held while a write under a key runs, where the backend needs more than the
    /// transaction to keep a second request with the key out.
    type Claim: Send;

    /// Whether [`Write::Insert`] without a position finds one in the insert itself.
    const POSITION_IN_INSERT: bool;

    /// One page of the tasks the caller can read that match `query`.
    fn select_page(
        &self,
        owner: &UserId,
        query: &TaskQuery,
    ) -> impl Future<Output = Result<Vec<Task>, StoreError>> + Send;

    /// How many of the tasks the caller can read match `filter`.
    fn count_matching(
        &self,
        owner: &UserId,
        filter: &Filter,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// A live task the caller can read.
    fn select_task(
        &self,
        owner: &UserId,
        id: TaskId,
    ) -> impl Future<Output = Result<Option<Task>, StoreError>> + Send;

    /// The list of a task the caller can read, live or in the trash.
    fn list_of_task(
        &self,
        owner: &UserId,
        id: TaskId,
    ) -> impl Future<Output = Result<Option<ListId>, StoreError>> + Send;

    /// The caller's role in a live list; `None` when they are not a member.
    fn role_in(
        &self,
        owner: &UserId,
        list: ListId,
    ) -> impl Future<Output = Result<Option<Role>, StoreError>> + Send;

    /// Whether `user` is a member of `list`.
    fn is_member(
        &self,
        list: ListId,
        user: &UserId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The largest position in a list.
    fn last_position(
        &self,
        list: ListId,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// The list and position of a live task the caller can read.
    fn position_of(
        &self,
        owner: &UserId,
        id: TaskId,
    ) -> impl Future<Output = Result<Option<(ListId, String)>, StoreError>> + Send;

    /// The nearest position of `list` above `from` (`above`) or below it, skipping the task
    /// `moving`; without `from`, the list's first or last position.
    fn neighbour(
        &self,
        list: ListId,
        moving: TaskId,
        from: Option<&Position>,
        above: bool,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// The caller's Inbox, made if they have none yet.
    fn inbox(&self, owner: &UserId) -> impl Future<Output = Result<ListId, StoreError>> + Send;

    /// Makes the caller's Inbox if they have none yet.
    fn ensure_inbox(&self, owner: &UserId) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The caller's live lists, in their order.
    fn select_lists(
        &self,
        owner: &UserId,
    ) -> impl Future<Output = Result<Vec<List>, StoreError>> + Send;

    /// One list of the caller's, live or (`trashed`) in the trash.
    fn select_list(
        &self,
        owner: &UserId,
        list: ListId,
        trashed: bool,
    ) -> impl Future<Output = Result<Option<List>, StoreError>> + Send;

    /// A new list owned by the caller, at the end of their order; `None` past
    /// [`crate::domain::list::MAX_LISTS_PER_USER`].
    fn insert_list(
        &self,
        owner: &UserId,
        list: &crate::domain::list::CreateList,
    ) -> impl Future<Output = Result<Option<List>, StoreError>> + Send;

    /// [`Statements::insert_list`] inside `transaction`.
    fn insert_list_in(
        &self,
        transaction: &mut Self::Transaction,
        owner: &UserId,
        list: &crate::domain::list::CreateList,
    ) -> impl Future<Output = Result<Option<List>, StoreError>> + Send;

    /// Renames or recolours a live list the caller may write, if its version is one `expect`
    /// admits and something really changes; `None` otherwise.
    fn update_list(
        &self,
        owner: &UserId,
        list: ListId,
        changes: &crate::domain::list::UpdateList,
        expect: &Expect,
    ) -> impl Future<Output = Result<Option<List>, StoreError>> + Send;

    /// Puts a live list the caller owns (not an Inbox) in the trash with its live tasks, or
    /// (`restore`) takes it out with the tasks that went with it; whether it did.
    fn trash_list(
        &self,
        owner: &UserId,
        list: ListId,
        restore: bool,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Gives a list a new place in the caller's own order.
    fn reposition_list(
        &self,
        owner: &UserId,
        list: ListId,
        position: &Position,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The nearest of the caller's list positions above `from` (`above`) or below it,
    /// skipping `moving`; and the position of a list of theirs.
    fn list_neighbour(
        &self,
        owner: &UserId,
        moving: ListId,
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

    /// The fields present in `changes`, if some field really differs (or `completes`) and the
    /// version is one `expect` admits; `None` otherwise. `completes`: an occurrence of the
    /// task is completed (its count goes up, `last_completed_at` is now). A `parent_id` in
    /// `changes` was checked by the caller; a task moved to another list without one becomes
    /// a top-level task there.
    fn update_fields(
        &self,
        transaction: &mut Self::Transaction,
        owner: &UserId,
        id: TaskId,
        changes: &UpdateTask,
        expect: &Expect,
        completes: bool,
    ) -> impl Future<Output = Result<Option<Task>, StoreError>> + Send;

    /// [`Statements::update_fields`] on a connection of its own, for a change that touches
    /// only the task's own row (no list, parent, recurrence, due date or completion).
    fn update_fields_alone(
        &self,
        owner: &UserId,
        id: TaskId,
        changes: &UpdateTask,
        expect: &Expect,
    ) -> impl Future<Output = Result<Option<Task>, StoreError>> + Send;

    /// Puts a live task at a version `expect` admits in the trash at `at`; whether one was.
    fn trash(
        &self,
        transaction: &mut Self::Transaction,
        owner: &UserId,
        id: TaskId,
        expect: &Expect,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Takes a task out of the trash; `None` when it was not in the trash.
    fn untrash(
        &self,
        transaction: &mut Self::Transaction,
        owner: &UserId,
        id: TaskId,
    ) -> impl Future<Output = Result<Option<Task>, StoreError>> + Send;

    /// The task `id` (depth 0) and its subtree, trashed tasks included, in depth order; or
    /// (`up`) the task and its ancestors, nearest first. No access check: the caller has
    /// already read or written the task.
    fn family(
        &self,
        transaction: &mut Self::Transaction,
        id: TaskId,
        up: bool,
    ) -> impl Future<Output = Result<Vec<Node>, StoreError>> + Send;

    /// Keeps every other change of a parent in `list` out until `transaction` ends, so that
    /// two of them cannot make a cycle or a fifth level between them.
    fn lock_parents(
        &self,
        transaction: &mut Self::Transaction,
        list: ListId,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// What a change of a task does to its subtree or its ancestors.
    fn cascade(
        &self,
        transaction: &mut Self::Transaction,
        cascade: Cascade<'_>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

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

    /// Records that `key` did `outcome` to the task or list `id` at `version` (its response
    /// body, `body`), replacing a record of the key older than `valid_after`; `false` when a
    /// live one is there.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        transaction: &mut Self::Transaction,
        owner: &UserId,
        key: &IdempotencyKey,
        outcome: Outcome,
        id: i64,
        version: i64,
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

    /// The members of a live list the caller is a member of; `None` when they are not.
    fn select_members(
        &self,
        owner: &UserId,
        list: ListId,
    ) -> impl Future<Output = Result<Option<Vec<Member>>, StoreError>> + Send;

    /// A new invitation to a live list the caller owns (not an Inbox), stored by the hash of
    /// its token; `None` otherwise.
    fn insert_invitation(
        &self,
        owner: &UserId,
        list: ListId,
        invitation: &InvitationRequest,
    ) -> impl Future<Output = Result<Option<Invitation>, StoreError>> + Send;

    /// The invitations of a live list the caller owns; `None` when they do not own it.
    fn select_invitations(
        &self,
        owner: &UserId,
        list: ListId,
    ) -> impl Future<Output = Result<Option<Vec<Invitation>>, StoreError>> + Send;

    /// Revokes an invitation of a live list the caller owns (again: nothing changes);
    /// whether there was one.
    fn revoke_invitation(
        &self,
        owner: &UserId,
        list: ListId,
        invitation: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Joins the caller to the list of the invitation whose token hashes to `token_hash`,
    /// in one transaction that locks the list's row first.
    fn accept_invitation(
        &self,
        owner: &UserId,
        token_hash: &[u8; 32],
    ) -> impl Future<Output = Result<Accepted, StoreError>> + Send;

    /// Gives a member other than the owner a new role, if the caller owns the live list.
    fn change_role(
        &self,
        owner: &UserId,
        list: ListId,
        member: &UserId,
        role: Role,
    ) -> impl Future<Output = Result<Option<Member>, StoreError>> + Send;

    /// Removes a member other than the owner, if the caller is the owner or the member
    /// themself; whether one was.
    fn remove_member(
        &self,
        owner: &UserId,
        list: ListId,
        member: &UserId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Makes `member` the owner of a live list the caller owns, and the caller an editor;
    /// `false` when the caller does not own it or `member` is not a member.
    fn transfer_list(
        &self,
        owner: &UserId,
        list: ListId,
        member: &UserId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Every list the caller is a member of, in the trash too.
    fn every_list(
        &self,
        owner: &UserId,
    ) -> impl Future<Output = Result<Vec<List>, StoreError>> + Send;

    /// The members of a list, unchecked: only for a list the caller was found to own.
    fn members_of(
        &self,
        list: ListId,
    ) -> impl Future<Output = Result<Vec<Member>, StoreError>> + Send;

    /// The tasks of the lists the caller owns and the tasks they created elsewhere, in the
    /// trash too.
    fn owned_and_created_tasks(
        &self,
        owner: &UserId,
    ) -> impl Future<Output = Result<Vec<Task>, StoreError>> + Send;

    /// Deletes the caller's lists (their members lose them), memberships, invitations,
    /// idempotency records and change history, and unassigns them, in one transaction.
    fn erase_user(&self, owner: &UserId) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Up to `limit` changes the caller can see after `since` (with the list entries when
    /// `lists`), in feed order, and the feed's bounds, all read in one snapshot.
    fn feed_rows(
        &self,
        owner: &UserId,
        since: ChangeCursor,
        limit: i64,
        lists: bool,
    ) -> impl Future<Output = Result<FeedRows, StoreError>> + Send;

    /// The feed's horizon now (see [`FeedBounds::horizon`]): whether a read that was settling
    /// would now see its head.
    fn feed_horizon(&self) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// The newest feed position of each of `owners` that can read anything.
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
