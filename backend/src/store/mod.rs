//! Where tasks live, split by what each part of the service needs from it: [`Tasks`] (the
//! handlers), [`ChangeFeed`] (the feed and the live streams), [`Upkeep`] (start-up and the
//! purge), [`Pool`] (`/ready` and the metrics). A PostgreSQL and a SQLite backend supply
//! their statements ([`statements::Statements`]); the control flow around them (retries,
//! conditional writes, idempotent writes, purges) is written once, in `tasks`, `feed` and
//! `upkeep`.
//!
//! Every operation takes the caller's [`UserId`], and every statement joins the caller's
//! membership of the list it reads or writes (with the role a write needs), so no code path
//! can read or change a task or a list of a list the caller is not in: a foreign task is
//! simply [`StoreError::NotFound`], exactly like a missing one, and a foreign list
//! [`StoreError::ListNotFound`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::calendar::{
    AppPassword, CalendarChanges, CalendarTags, NewAppPassword, StoredObject,
};
use crate::domain::list::{
    CreateInvitation, CreateList, Export, Invitation, Member, NewInvitation, UpdateList,
};
use crate::domain::{
    ChangeCursor, ChangePage, CreateTask, Expect, Filter, IdempotencyKey, List, ListId, Once,
    Placement, Role, Task, TaskId, TaskQuery, UpdateTask, UserId,
};

mod calendars;
mod error;
mod feed;
mod lists;
pub mod postgres;
mod row;
mod sql;
pub mod sqlite;
mod statements;
mod subtasks;
mod tasks;
mod text;
mod upkeep;
mod url;

pub use error::{StoreError, describe, worth_waiting_for};
pub use postgres::{PgStore, TransactionPooler};
pub use sqlite::SqliteStore;
pub use url::{Backend, DatabaseUrl};

/// Storage operations on the tasks of the lists a user is a member of.
///
/// A task in the trash is invisible to everything but [`Tasks::list`] of the trash,
/// [`Tasks::restore`] and the change feed: for the rest it is a missing task.
#[async_trait]
pub trait Tasks: Send + Sync + 'static {
    /// Stores a new task owned by `owner` and returns it. With `key`, the task and the
    /// outcome are recorded in one transaction, and a repeat of the same request within
    /// [`IDEMPOTENCY_KEY_LIFETIME`](crate::domain::sync::IDEMPOTENCY_KEY_LIFETIME) replays
    /// it instead.
    async fn create(
        &self,
        owner: &UserId,
        task: CreateTask,
        key: Option<&IdempotencyKey>,
    ) -> Result<Once<Task>, StoreError>;

    /// The owner's tasks that match `query.filter`, in its order, one page of them.
    async fn list(&self, owner: &UserId, query: &TaskQuery) -> Result<Vec<Task>, StoreError>;

    /// How many of the owner's tasks match `filter`.
    async fn count(&self, owner: &UserId, filter: &Filter) -> Result<i64, StoreError>;

    /// One of the owner's tasks.
    async fn get(&self, owner: &UserId, id: TaskId) -> Result<Task, StoreError>;

    /// Applies the fields present in `changes` if the task's version is one `expect` admits,
    /// checked in the writing statement; `updated_at` moves and `version` grows by one,
    /// `created_at` never moves. Changes that change nothing return the task untouched.
    async fn update(
        &self,
        owner: &UserId,
        id: TaskId,
        changes: UpdateTask,
        expect: &Expect,
    ) -> Result<Task, StoreError>;

    /// Gives the task a position by `placement`, rewriting no other task (unless the new key
    /// would be too long: then the owner's order is re-keyed in the same transaction);
    /// `expect` and `key` as for [`Tasks::update`] and [`Tasks::create`].
    async fn move_task(
        &self,
        owner: &UserId,
        id: TaskId,
        placement: Placement,
        expect: &Expect,
        key: Option<&IdempotencyKey>,
    ) -> Result<Once<Task>, StoreError>;

    /// Moves one of the owner's tasks to the trash. Its id is never handed out again.
    async fn delete(&self, owner: &UserId, id: TaskId, expect: &Expect) -> Result<(), StoreError>;

    /// Brings a task back from the trash (`version` +1); a task that is not in the trash is
    /// returned as it is.
    async fn restore(&self, owner: &UserId, id: TaskId) -> Result<Task, StoreError>;
}

/// Storage operations on the caller's lists. A list the caller is not a member of is
/// [`StoreError::ListNotFound`], exactly like a missing one.
#[async_trait]
pub trait Lists: Send + Sync + 'static {
    /// The caller's live lists, in their own order.
    async fn lists_of(&self, owner: &UserId) -> Result<Vec<List>, StoreError>;

    /// The lists the caller owns that are in the trash.
    async fn trashed_lists(&self, owner: &UserId) -> Result<Vec<List>, StoreError>;

    /// One live list of the caller's.
    async fn get_list(&self, owner: &UserId, list: ListId) -> Result<List, StoreError>;

    /// A new list, owned by the caller, at the end of their order. With `key`, as a task's
    /// creation: the list and the outcome in one transaction, a repeat replayed.
    async fn create_list(
        &self,
        owner: &UserId,
        list: CreateList,
        key: Option<&IdempotencyKey>,
    ) -> Result<Once<List>, StoreError>;

    /// Renames or recolours a list (owner or editor); unchanged, it is returned as it is.
    async fn update_list(
        &self,
        owner: &UserId,
        list: ListId,
        changes: UpdateList,
    ) -> Result<List, StoreError>;

    /// Moves a list (owner only; not an Inbox) to the trash with its tasks.
    async fn delete_list(&self, owner: &UserId, list: ListId) -> Result<(), StoreError>;

    /// Brings a list back from the trash with the tasks that went with it.
    async fn restore_list(&self, owner: &UserId, list: ListId) -> Result<List, StoreError>;

    /// Gives a list a new place in the caller's own order, right after `after` or right
    /// before `before` (`None` inside: the top, or the bottom).
    async fn move_list(
        &self,
        owner: &UserId,
        list: ListId,
        after: Option<Option<ListId>>,
        before: Option<Option<ListId>>,
    ) -> Result<List, StoreError>;

    /// The members of a list the caller is a member of.
    async fn members(&self, owner: &UserId, list: ListId) -> Result<Vec<Member>, StoreError>;

    /// A new invitation to a list the caller owns (not an Inbox), with its secret token,
    /// shown this once: only its hash is kept.
    async fn invite(
        &self,
        owner: &UserId,
        list: ListId,
        invitation: CreateInvitation,
    ) -> Result<NewInvitation, StoreError>;

    /// The invitations of a list the caller owns, without their tokens.
    async fn invitations(
        &self,
        owner: &UserId,
        list: ListId,
    ) -> Result<Vec<Invitation>, StoreError>;

    /// Revokes an invitation of a list the caller owns.
    async fn revoke(&self, owner: &UserId, list: ListId, invitation: i64)
    -> Result<(), StoreError>;

    /// Joins the caller to the list an invitation's token is for (a member already: nothing
    /// changes). Every token that cannot be used is the same [`StoreError::Missing`].
    async fn accept(&self, owner: &UserId, token: &str) -> Result<List, StoreError>;

    /// Gives a member a new role (the owner only; the owner's own role moves by transfer).
    async fn set_role(
        &self,
        owner: &UserId,
        list: ListId,
        member: &UserId,
        role: Role,
    ) -> Result<Member, StoreError>;

    /// Removes a member (the owner, anyone but themself) or leaves (anyone but the owner).
    async fn remove(&self, owner: &UserId, list: ListId, member: &UserId)
    -> Result<(), StoreError>;

    /// Hands the list to a member; the caller, its owner, becomes an editor.
    async fn transfer(
        &self,
        owner: &UserId,
        list: ListId,
        member: &UserId,
    ) -> Result<List, StoreError>;

    /// Everything of the caller's: their lists with members and tasks, their memberships,
    /// the tasks they created elsewhere.
    async fn export(&self, owner: &UserId) -> Result<Export, StoreError>;

    /// Deletes the caller's lists, memberships, invitations, idempotency records and history.
    async fn erase(&self, owner: &UserId) -> Result<(), StoreError>;
}

/// The change feed: each owner's changes in the order they committed.
#[async_trait]
pub trait ChangeFeed: Send + Sync + 'static {
    /// Up to `limit` changes the caller can see after `since` (the tasks of every list they
    /// can read; with `lists`, the lists too), in the order they committed.
    /// [`StoreError::HistoryExpired`] when changes after `since` have been purged.
    async fn changes(
        &self,
        owner: &UserId,
        since: ChangeCursor,
        limit: u32,
        lists: bool,
    ) -> Result<ChangePage, StoreError>;

    /// The newest feed position of each of `owners` that can read anything, in one query:
    /// how live streams learn that something they follow changed.
    async fn change_counters(&self, owners: &[UserId]) -> Result<Vec<(UserId, i64)>, StoreError>;

    /// Tells the instances listening on this database that `owners` wrote (PostgreSQL
    /// `NOTIFY`, sent after the writes committed and outside their transactions). SQLite has
    /// no other instances: nothing to do.
    async fn announce(&self, owners: &[UserId]) -> Result<(), StoreError>;
}

/// What calendar clients (CalDAV) need besides tasks and lists: app passwords, the iCalendar
/// objects they wrote, and a list's changes by sync token.
#[async_trait]
pub trait Calendars: Send + Sync + 'static {
    /// A new app password for the caller, with its secret (shown once; only a hash is kept);
    /// [`StoreError::Conflict`] past [`MAX_APP_PASSWORDS`](crate::domain::calendar::MAX_APP_PASSWORDS).
    async fn create_app_password(
        &self,
        owner: &UserId,
        name: &str,
    ) -> Result<NewAppPassword, StoreError>;

    /// The caller's app passwords, oldest first, without their secrets.
    async fn app_passwords(&self, owner: &UserId) -> Result<Vec<AppPassword>, StoreError>;

    /// Revokes one of the caller's app passwords, at once.
    async fn revoke_app_password(&self, owner: &UserId, id: i64) -> Result<(), StoreError>;

    /// Whether `secret` is one of `user`'s app passwords (and notes its use, to the minute).
    async fn check_app_password(&self, user: &UserId, secret: &str) -> Result<bool, StoreError>;

    /// What calendar clients wrote of these tasks of a list the caller can read (tasks never
    /// written over CalDAV have nothing).
    async fn objects(
        &self,
        owner: &UserId,
        list: ListId,
        tasks: &[TaskId],
    ) -> Result<Vec<StoredObject>, StoreError>;

    /// The live tasks of a list the caller can read whose resources have these names (a
    /// name of its own, or else its uid): (name, task).
    async fn tasks_named(
        &self,
        owner: &UserId,
        list: ListId,
        names: &[String],
    ) -> Result<Vec<(String, TaskId)>, StoreError>;

    /// The live tasks of a list the caller can read, without a parent, whose stored objects
    /// mention `uid` (candidates for the subtasks of a task with it that arrived after them).
    async fn tasks_mentioning(
        &self,
        owner: &UserId,
        list: ListId,
        uid: &str,
    ) -> Result<Vec<TaskId>, StoreError>;

    /// Each live list the caller can read, as a calendar.
    async fn collection_tags(&self, owner: &UserId) -> Result<Vec<CalendarTags>, StoreError>;

    /// The live list the caller can read that a client made under this name.
    async fn list_named(&self, owner: &UserId, name: &str) -> Result<Option<ListId>, StoreError>;

    /// Gives a list the caller owns the name a client made it under.
    async fn name_list(&self, owner: &UserId, list: ListId, name: &str) -> Result<(), StoreError>;

    /// The changes of a list the caller can read after the sync token `since` (every task of
    /// it at the start), at most `limit` of each kind; [`StoreError::HistoryExpired`] for a
    /// token from before a purge or not from this database.
    async fn calendar_changes(
        &self,
        owner: &UserId,
        list: ListId,
        since: ChangeCursor,
        limit: u32,
    ) -> Result<CalendarChanges, StoreError>;
}

/// What keeps the database in shape: migrations, the purge, keys every instance shares.
#[async_trait]
pub trait Upkeep: Send + Sync + 'static {
    /// Removes, for every owner, tasks that went to the trash before `trashed_before` and
    /// idempotency records made before `keys_before`. Safe to run on many instances at once.
    async fn purge(
        &self,
        trashed_before: DateTime<Utc>,
        keys_before: DateTime<Utc>,
    ) -> Result<Purged, StoreError>;

    /// Applies the embedded migrations of this backend, then fills in what a migration could
    /// not (the folded text of rows written before it).
    async fn migrate(&self) -> Result<(), StoreError>;

    /// A random 32-byte key shared by every instance on this database, created on first use:
    /// what list cursors are signed with.
    async fn shared_key(&self, name: &str) -> Result<[u8; 32], StoreError>;
}

/// The connection pool.
#[async_trait]
pub trait Pool: Send + Sync + 'static {
    /// Checks that the database answers, for `/ready`.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Closes the pool, waiting for connections in use to be returned.
    async fn close(&self);

    /// The pool's connections now, for the metrics.
    fn pool_status(&self) -> PoolStatus;
}

/// The whole store, as [`open`] returns it: each part of the service takes the one capability
/// it uses (an `Arc<dyn Tasks>`, say), so that a test fake needs to implement only that.
pub trait TaskStore: Tasks + Lists + ChangeFeed + Calendars + Upkeep + Pool {}

impl<T: Tasks + Lists + ChangeFeed + Calendars + Upkeep + Pool> TaskStore for T {}

/// A pool's connections: open, idle among them, and the most it opens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStatus {
    pub open: u32,
    pub idle: u32,
    pub max: u32,
}

/// What a purge removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub tasks: u64,
    pub lists: u64,
    /// Departures and losses (feed entries of tasks and lists no longer readable).
    pub history: u64,
    pub keys: u64,
}

/// Pool settings shared by both backends.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    pub max_connections: u32,
    /// How long a request waits for a free connection before it gets a 503.
    pub acquire_timeout: Duration,
    /// PostgreSQL only: whether the server is behind a transaction-mode pooler.
    pub transaction_pooler: TransactionPooler,
}

/// Opens the store `url` names and applies its migrations.
pub async fn open(url: &DatabaseUrl, pool: PoolSettings) -> Result<Arc<dyn TaskStore>, StoreError> {
    let store: Arc<dyn TaskStore> = match url.target() {
        url::Target::Postgres(options) => {
            Arc::new(PgStore::connect_with((**options).clone(), pool).await?)
        }
        url::Target::Sqlite { options, in_memory } => {
            Arc::new(SqliteStore::connect_with((**options).clone(), *in_memory, pool).await?)
        }
    };
    store.migrate().await?;
    Ok(store)
}
