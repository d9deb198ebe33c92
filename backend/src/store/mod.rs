//! Where tasks live: one [`TaskStore`] trait, a PostgreSQL and a SQLite implementation.
//!
//! Every method takes the owner's [`UserId`] and every query filters on it, so no code path
//! can read or change another user's task: a foreign task is simply [`StoreError::NotFound`],
//! exactly like a missing one.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};

use crate::domain::{
    ChangeCursor, ChangePage, CreateTask, Expect, Filter, IdempotencyKey, Once, Placement,
    Position, SortField, SortValue, Task, TaskId, TaskQuery, UpdateTask, UserId,
};

pub mod postgres;
mod row;
pub mod sqlite;
mod text;
mod url;

pub use postgres::{PgStore, TransactionPooler};
pub use sqlite::SqliteStore;
pub use url::{Backend, DatabaseUrl};

/// Storage operations on one user's tasks.
///
/// A task in the trash is invisible to everything but [`TaskStore::list`] of the trash,
/// [`TaskStore::restore`] and the change feed: for the rest it is a missing task.
#[async_trait]
pub trait TaskStore: Send + Sync + 'static {
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

    /// Gives the task a position by `placement`, rewriting no other task; `expect` and `key`
    /// as for [`TaskStore::update`] and [`TaskStore::create`].
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

    /// Up to `limit` changes after `since`, in the order they committed.
    /// [`StoreError::HistoryExpired`] when changes after `since` have been purged.
    async fn changes(
        &self,
        owner: &UserId,
        since: ChangeCursor,
        limit: u32,
    ) -> Result<ChangePage, StoreError>;

    /// The change counter (the cursor of the latest change) of each of `owners` that has
    /// ever written, in one query: how live streams learn that their user wrote.
    async fn change_counters(&self, owners: &[UserId]) -> Result<Vec<(UserId, i64)>, StoreError>;

    /// Tells the instances listening on this database that `owners` wrote (PostgreSQL
    /// `NOTIFY`, sent after the writes committed and outside their transactions). SQLite has
    /// no other instances: nothing to do.
    async fn announce(&self, owners: &[UserId]) -> Result<(), StoreError>;

    /// Removes, for every owner, tasks that went to the trash before `trashed_before` and
    /// idempotency records made before `keys_before`. Safe to run on many instances at once.
    async fn purge(
        &self,
        trashed_before: DateTime<Utc>,
        keys_before: DateTime<Utc>,
    ) -> Result<Purged, StoreError>;

    /// Checks that the database answers, for `/ready`.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Applies the embedded migrations of this backend, then fills in what a migration could
    /// not (the folded text of rows written before it).
    async fn migrate(&self) -> Result<(), StoreError>;

    /// A random 32-byte key shared by every instance on this database, created on first use:
    /// what list cursors are signed with.
    async fn shared_key(&self, name: &str) -> Result<[u8; 32], StoreError>;

    /// Closes the pool, waiting for connections in use to be returned.
    async fn close(&self);

    /// The pool's connections now, for the metrics.
    fn pool_status(&self) -> PoolStatus;
}

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
    pub keys: u64,
}

/// What can go wrong in storage, sorted by what the caller should do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such task for this owner (it may exist for someone else).
    #[error("task not found")]
    NotFound,
    /// The task exists, at a version the condition does not admit.
    #[error("the task has changed: it is at version {version}")]
    VersionMismatch { id: TaskId, version: i64 },
    /// A request with this idempotency key is still being processed.
    #[error("a request with this idempotency key is in progress")]
    KeyInFlight,
    /// The idempotency key was used for a different request.
    #[error("this idempotency key was used for a different request")]
    KeyReused,
    /// Changes after the cursor have been purged: the client must sync from scratch.
    #[error("changes after this cursor are no longer kept")]
    HistoryExpired,
    /// The database cannot be reached right now or is overloaded; retrying later may work.
    #[error("database unavailable: {}", describe(.0))]
    Unavailable(#[source] sqlx::Error),
    /// Anything else: a bug, a corrupt row, a failed migration, a refused login.
    #[error("database error: {0}")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        StoreError::Other(error.into())
    }
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

/// Logs which of `migrator`'s migrations this start applied (those not in `before`, the
/// versions the database had), or that the schema was already current.
fn report_migrations(migrator: &sqlx::migrate::Migrator, before: &[i64]) {
    let mut applied = 0;
    for migration in migrator.iter().filter(|m| !before.contains(&m.version)) {
        applied += 1;
        tracing::info!(
            version = migration.version,
            "applied migration {} ({})",
            migration.version,
            migration.description
        );
    }
    if let Some(latest) = migrator.iter().last() {
        tracing::info!(
            applied,
            "database schema at migration {} ({})",
            latest.version,
            latest.description
        );
    }
}

/// How often a write that lost a race for a unique position is tried again.
const POSITION_ATTEMPTS: usize = 16;

/// Whether `error` is a unique-constraint violation (a position another write took first).
fn is_unique_violation(error: &StoreError) -> bool {
    match error {
        StoreError::Other(cause) => cause
            .downcast_ref::<sqlx::Error>()
            .and_then(sqlx::Error::as_database_error)
            .is_some_and(|db| db.is_unique_violation()),
        _ => false,
    }
}

/// The column a sort field sorts by, the same in both backends.
fn sort_column(field: SortField) -> &'static str {
    match field {
        SortField::CreatedAt => "created_at",
        SortField::UpdatedAt => "updated_at",
        SortField::DueAt => "due_at",
        SortField::Priority => "priority",
        SortField::Title => "title_key",
        SortField::Position => "position",
    }
}

/// Appends a list's keyset condition, order and page to `sql`, whose filters are in place;
/// `push_value` binds a sort value as the backend stores it. The same SQL on both backends
/// (row values, `nulls last`), so that they page alike.
fn push_page<DB>(
    sql: &mut sqlx::QueryBuilder<DB>,
    query: &TaskQuery,
    push_value: fn(&mut sqlx::QueryBuilder<DB>, &SortValue),
) where
    DB: sqlx::Database,
    i64: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let column = sort_column(query.sort.field);
    let nullable = query.sort.field == SortField::DueAt;
    let (direction, after) = if query.sort.descending {
        ("desc", "<")
    } else {
        ("asc", ">")
    };
    if let Some(keyset) = &query.after {
        let id = keyset.id.get();
        match &keyset.value {
            SortValue::Micros(None) => {
                sql.push(format_args!(" and {column} is null and id {after} "));
                sql.push_bind(id);
            }
            value => {
                sql.push(format_args!(" and (({column}, id) {after} ("));
                push_value(sql, value);
                sql.push(", ").push_bind(id);
                // Missing due dates come after every date, in either direction.
                sql.push(if nullable {
                    ") or due_at is null)"
                } else {
                    "))"
                });
            }
        }
    }
    let nulls = if nullable { " nulls last" } else { "" };
    sql.push(format_args!(
        " order by {column} {direction}{nulls}, id {direction} limit "
    ));
    sql.push_bind(i64::from(query.limit));
    sql.push(" offset ").push_bind(query.offset);
}

/// The position lookups a move needs, per backend.
trait Positions {
    /// The position of one of the owner's tasks.
    async fn position_of(&self, owner: &UserId, id: TaskId) -> Result<Position, StoreError>;

    /// The nearest position above `from` (`above`) or below it, skipping the task `moving`;
    /// without `from`, the owner's first or last position.
    async fn neighbour(
        &self,
        owner: &UserId,
        moving: TaskId,
        from: Option<&Position>,
        above: bool,
    ) -> Result<Option<Position>, StoreError>;
}

/// The positions a task moved by `placement` must fall between, or `None` when it is to go
/// next to itself, which leaves it where it is. 404 when a named neighbour is not the owner's.
async fn bounds(
    store: &impl Positions,
    owner: &UserId,
    id: TaskId,
    placement: Placement,
) -> Result<Option<(Option<Position>, Option<Position>)>, StoreError> {
    match placement {
        Placement::After(Some(anchor)) | Placement::Before(Some(anchor)) if anchor == id => {
            Ok(None)
        }
        Placement::After(anchor) => {
            let lower = match anchor {
                Some(anchor) => Some(store.position_of(owner, anchor).await?),
                None => None,
            };
            let upper = store.neighbour(owner, id, lower.as_ref(), true).await?;
            Ok(Some((lower, upper)))
        }
        Placement::Before(anchor) => {
            let upper = match anchor {
                Some(anchor) => Some(store.position_of(owner, anchor).await?),
                None => None,
            };
            let lower = store.neighbour(owner, id, upper.as_ref(), false).await?;
            Ok(Some((lower, upper)))
        }
    }
}

/// One of the owner's tasks as a re-key reads it: id, position, and whether it is live.
type OrderRow = (i64, String, bool);

/// A new key for every one of the owner's tasks (`rows`, in position order, trashed ones
/// included), in the same order except that `moving` goes where `placement` says: what a move
/// writes when the key it would get is too long. `None` when `moving` or the named neighbour
/// is not one of the owner's live tasks (the caller then answers as for any failed move).
///
/// The new keys start after the largest key in use, so that no row's new key can equal
/// another row's old one while the rows are rewritten one by one under the unique index.
fn rekeyed_order(
    rows: &[OrderRow],
    moving: TaskId,
    placement: Placement,
) -> Option<Vec<(i64, Position)>> {
    let live = |id: i64| rows.iter().any(|(row, _, live)| *row == id && *live);
    if !live(moving.get()) {
        return None;
    }
    let mut order: Vec<i64> = rows
        .iter()
        .map(|(id, _, _)| *id)
        .filter(|id| *id != moving.get())
        .collect();
    let at = match placement {
        Placement::After(None) => 0,
        Placement::Before(None) => order.len(),
        // Next to itself: where it is (the rows before it, in order).
        Placement::After(Some(anchor)) | Placement::Before(Some(anchor)) if anchor == moving => {
            rows.iter().position(|(id, _, _)| *id == moving.get())?
        }
        Placement::After(Some(anchor)) | Placement::Before(Some(anchor)) => {
            if !live(anchor.get()) {
                return None;
            }
            let index = order.iter().position(|id| *id == anchor.get())?;
            match placement {
                Placement::After(_) => index + 1,
                Placement::Before(_) => index,
            }
        }
    };
    order.insert(at, moving.get());
    let mut last = rows
        .iter()
        .map(|(_, key, _)| key)
        .max()
        .map(|key| stored_position(key.clone()))
        .transpose()
        .ok()?;
    let mut keys = Vec::with_capacity(order.len());
    for id in order {
        let key = Position::between(last.as_ref(), None).ok()?;
        keys.push((id, key.clone()));
        last = Some(key);
    }
    Some(keys)
}

fn position_contention() -> StoreError {
    StoreError::Other("too many concurrent writes competed for the same position".into())
}

/// A position read back from the database.
fn stored_position(key: String) -> Result<Position, StoreError> {
    Position::parse(key).map_err(|error| StoreError::Other(error.into()))
}

/// The position after the owner's last one (`None` when they have no task yet). A retry
/// after losing a race (`attempt` > 0) adds a random fraction, so that many creates racing
/// for the same slot spread out instead of colliding again.
fn position_after(last: Option<String>, attempt: usize) -> Result<Position, StoreError> {
    let last = last.map(stored_position).transpose()?;
    let next =
        Position::between(last.as_ref(), None).map_err(|error| StoreError::Other(error.into()))?;
    if attempt == 0 {
        return Ok(next);
    }
    let mut entropy = [0u8; 3];
    getrandom::fill(&mut entropy).map_err(|error| StoreError::Other(error.to_string().into()))?;
    Ok(next.spread(entropy))
}

/// The task a conditional write found, when the write itself matched nothing: a version the
/// condition admits means the write had nothing to change; any other is a mismatch.
fn admitted(task: Task, expect: &Expect) -> Result<Task, StoreError> {
    if expect.admits(task.version) {
        Ok(task)
    } else {
        Err(StoreError::VersionMismatch {
            id: task.id,
            version: task.version,
        })
    }
}

/// The versions a condition admits, as a list to bind (`None`: any).
fn admitted_versions(expect: &Expect) -> Option<Vec<i64>> {
    match expect {
        Expect::Any => None,
        Expect::OneOf(versions) => Some(versions.clone()),
    }
}

/// A recorded outcome found under `key`: replayed for the same request, refused for another.
fn replay(recorded: row::ReplayRow, key: &IdempotencyKey) -> Result<Once<Task>, StoreError> {
    if recorded.fingerprint.as_slice() != key.fingerprint().as_slice() {
        return Err(StoreError::KeyReused);
    }
    Ok(Once::Replayed(recorded.try_into()?))
}

/// The response body recorded for a replay: the task exactly as the first response sent it.
fn recorded_body(task: &Task) -> Result<String, StoreError> {
    serde_json::to_string(task).map_err(|error| StoreError::Other(error.into()))
}

/// The oldest idempotency record that still counts, as of `now`.
fn keys_valid_after(now: DateTime<Utc>) -> DateTime<Utc> {
    now - crate::domain::sync::IDEMPOTENCY_KEY_LIFETIME
}

/// A feed page from the rows after `since` (one more than `limit`, to tell whether more
/// follow) and the owner's counters, read after the rows: a purge that removed a change the
/// rows missed has then raised `purged_through` past `since`.
fn feed_page<T: row::StoredTime, L: row::StoredTags>(
    rows: Vec<row::ChangeRow<T, L>>,
    since: ChangeCursor,
    limit: u32,
    counters: Option<(i64, i64)>,
) -> Result<ChangePage, StoreError> {
    let mut changes = rows
        .into_iter()
        .map(crate::domain::Change::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    let (last_change, purged_through) = counters.unwrap_or_default();
    let since_seq = since.get();
    // A cursor from the start needs no history; one from before a purge, or one this
    // database never issued (restored from a backup, another deployment), cannot be served.
    if since != ChangeCursor::START && (since_seq < purged_through || since_seq > last_change) {
        return Err(StoreError::HistoryExpired);
    }
    let has_more = changes.len() > limit as usize;
    changes.truncate(limit as usize);
    // Never the owner's counter: a change committed between the two reads would be skipped.
    let next_cursor = changes.last().map_or(since, crate::domain::Change::cursor);
    Ok(ChangePage {
        changes,
        next_cursor,
        has_more,
    })
}

/// Counter rows as read, with the owners parsed back (a stored owner always parses).
fn counters(rows: Vec<(String, i64)>) -> Vec<(UserId, i64)> {
    rows.into_iter()
        .filter_map(|(owner, counter)| Some((UserId::parse(owner).ok()?, counter)))
        .collect()
}

/// 32 random bytes, for a new shared key.
fn random_key() -> Result<[u8; 32], StoreError> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|error| StoreError::Other(error.to_string().into()))?;
    Ok(key)
}

/// A shared key as stored.
fn key_from(bytes: Vec<u8>) -> Result<[u8; 32], StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Other("a stored shared key is not 32 bytes".into()))
}

/// The current time at the precision both databases store (microseconds), so that a task
/// returned by `create` is equal to the same task read back later.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Sorts a driver error into "try again later" and "something is wrong". Which database
/// error codes are transient depends on the backend, so each passes its own test.
fn classify(error: sqlx::Error, transient_code: fn(&str) -> bool) -> StoreError {
    let transient = match &error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| transient_code(&code)),
        _ => false,
    };
    if transient {
        StoreError::Unavailable(error)
    } else {
        StoreError::Other(error.into())
    }
}

/// Whether a failure to open the database may pass by waiting (a server still booting, not
/// yet listening, not yet accepting connections), for the start-up retries. A certificate
/// that does not verify or a missing file will not.
pub fn worth_waiting_for(error: &StoreError) -> bool {
    use std::io::ErrorKind::*;
    let StoreError::Unavailable(cause) = error else {
        return false;
    };
    match cause {
        sqlx::Error::Io(io) => matches!(
            io.kind(),
            ConnectionRefused
                | ConnectionReset
                | ConnectionAborted
                | NotConnected
                | TimedOut
                | UnexpectedEof
                | HostUnreachable
                | NetworkUnreachable
                | AddrNotAvailable
        ),
        sqlx::Error::Tls(_) => false,
        // A database that does not exist is no server still booting: no wait will create
        // it (a missing role or a bad password is never classed as unavailable at all).
        sqlx::Error::Database(db) => db.code().as_deref() != Some("3D000"),
        _ => true,
    }
}

/// One line saying why the database could not be reached, for start-up errors: the cause
/// (refused, DNS, TLS, authentication, missing database) rather than the pool's "timed out".
pub fn describe(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection refused (is the server running, and on this host and port?)".into()
        }
        sqlx::Error::Io(io) => format!("cannot connect: {io}"),
        sqlx::Error::Tls(tls) => format!("TLS failed: {tls}"),
        sqlx::Error::Database(db) => match db.code() {
            Some(code) => format!("the server refused: {} (SQLSTATE {code})", db.message()),
            None => format!("the server refused: {}", db.message()),
        },
        sqlx::Error::PoolTimedOut => "timed out waiting for a connection".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_timeouts_and_shutdowns_are_transient() {
        let never = |_: &str| false;
        assert!(matches!(
            classify(sqlx::Error::PoolTimedOut, never),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            classify(sqlx::Error::PoolClosed, never),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            classify(sqlx::Error::RowNotFound, never),
            StoreError::Other(_)
        ));
    }

    #[test]
    fn start_up_errors_name_their_cause() {
        let refused = sqlx::Error::Io(std::io::ErrorKind::ConnectionRefused.into());
        assert!(describe(&refused).contains("connection refused"));
        assert!(describe(&sqlx::Error::PoolTimedOut).contains("timed out"));
    }

    #[test]
    fn a_re_key_keeps_the_order_and_places_the_moving_task() {
        let rows: Vec<OrderRow> = vec![
            (1, "a0".into(), true),
            (2, "a0V".into(), false),
            (3, "a1".into(), true),
            (4, "a2".into(), true),
        ];
        let ids = |plan: Option<Vec<(i64, Position)>>| {
            let plan = plan.expect("a plan");
            let keys: Vec<&Position> = plan.iter().map(|(_, key)| key).collect();
            assert!(keys.windows(2).all(|pair| pair[0] < pair[1]), "{keys:?}");
            assert!(keys.iter().all(|key| key.as_str() > "a2"), "{keys:?}");
            plan.into_iter().map(|(id, _)| id).collect::<Vec<_>>()
        };
        let id = |n: i64| TaskId::try_from(n).expect("positive");
        let after = |n| Placement::After(Some(id(n)));
        let before = |n| Placement::Before(Some(id(n)));
        assert_eq!(ids(rekeyed_order(&rows, id(4), after(1))), [1, 4, 2, 3]);
        assert_eq!(ids(rekeyed_order(&rows, id(1), before(4))), [2, 3, 1, 4]);
        assert_eq!(
            ids(rekeyed_order(&rows, id(3), Placement::After(None))),
            [3, 1, 2, 4]
        );
        assert_eq!(
            ids(rekeyed_order(&rows, id(1), Placement::Before(None))),
            [2, 3, 4, 1]
        );
        assert_eq!(ids(rekeyed_order(&rows, id(3), after(3))), [1, 2, 3, 4]);
        // A trashed or missing task, moved or named, is no move.
        assert!(rekeyed_order(&rows, id(2), after(1)).is_none());
        assert!(rekeyed_order(&rows, id(1), after(2)).is_none());
        assert!(rekeyed_order(&rows, id(9), after(1)).is_none());
        assert!(rekeyed_order(&rows, id(1), after(9)).is_none());
    }

    #[test]
    fn now_has_microsecond_precision() {
        assert_eq!(now().timestamp_subsec_nanos() % 1_000, 0);
    }
}
