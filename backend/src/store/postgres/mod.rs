//! The PostgreSQL store: production (Neon or any PostgreSQL 13+).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Connection, Postgres, QueryBuilder, Transaction};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::error::classify;
use super::row::{
    self, ChangeRow, ListRow, NodeRow, ReplayRow, TaskRow, list_columns, task_columns,
};
use super::statements::{
    Cascade, FeedBounds, FeedRows, InvitationRequest, Node, Purge, Statements, Write,
    admitted_versions, now,
};
use super::{PoolSettings, PoolStatus, StoreError, text};
use crate::domain::list::{Accepted, CreateList, Invitation, Member, UpdateList};
use crate::domain::{
    ChangeCursor, Expect, Filter, IdempotencyKey, List, ListId, Outcome, Position, Recurrence,
    Role, Tags, Task, TaskId, TaskQuery, Timestamp, UpdateTask, UserId,
};

mod calendars;
mod filter;
pub mod notify;
mod pooler;
mod sharing;
mod writes;

pub use pooler::TransactionPooler;

use filter::{push_conditions, push_filter, push_lists, push_sort_value};
use writes::{apply, writable};

type Row = TaskRow<DateTime<Utc>, Vec<String>>;
type FeedRow = ChangeRow<DateTime<Utc>, Vec<String>>;
type ListRowPg = ListRow<DateTime<Utc>>;

/// `list_id` is one of the lists the caller (`$1`) is a member of.
macro_rules! readable {
    () => {
        "list_id in (select list_id from list_members where user_id = $1)"
    };
}

pub use notify::NOTIFY_CHANNEL;

/// Tasks in PostgreSQL, through a connection pool.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// One permit per pooled connection: a request waits here for its turn, and only then
    /// asks the pool. sqlx's acquire future is about 14 KiB (it holds, inline, the connect it
    /// may have to run), and with 1,000 clients on 10 connections nearly every request is
    /// waiting; this wait costs a few bytes.
    slots: Arc<Semaphore>,
    acquire_timeout: Duration,
    /// Behind a transaction-mode pooler: no named prepared statements, and every query in a
    /// transaction of its own (see [`PgStore::run`]).
    transaction_pooler: bool,
}

impl PgStore {
    /// Connects with `options` (from a [`super::DatabaseUrl`], or made by a test). One direct
    /// connection is tried first, so that a start-up failure names its cause instead of the
    /// pool's "timed out".
    pub async fn connect_with(
        options: PgConnectOptions,
        settings: PoolSettings,
    ) -> Result<Self, StoreError> {
        let transaction_pooler = settings
            .transaction_pooler
            .is_on_for(options.get_host(), options.get_port());
        let options = if transaction_pooler {
            // Named statements live on one server connection; the pooler may give the next
            // transaction another one, where the name is unknown or taken. And PgBouncer
            // refuses start-up parameters it does not know, such as extra_float_digits.
            options.statement_cache_capacity(0).extra_float_digits(None)
        } else {
            options
        };
        // A refusal that retrying cannot fix (a missing role or database, a bad password)
        // is reported by its cause alone.
        let first_connection = |error: sqlx::Error| match db_error(error) {
            StoreError::Other(cause) => match cause.downcast::<sqlx::Error>() {
                Ok(error) => StoreError::Other(super::describe(&error).into()),
                Err(cause) => StoreError::Other(cause),
            },
            transient => transient,
        };
        PgConnection::connect_with(&options)
            .await
            .map_err(first_connection)?
            .close()
            .await
            .map_err(db_error)?;
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            // No ping when a connection is taken out (and, with the vendored sqlx-core, none
            // when it goes back, only a drain of what a dropped request left): each would add a
            // round trip to every request. A connection that dies while idle fails one query
            // with a 503 and is then replaced.
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(|error| classify(error, transient))?;
        Ok(PgStore {
            pool,
            slots: Arc::new(Semaphore::new(settings.max_connections as usize)),
            acquire_timeout: settings.acquire_timeout,
            transaction_pooler,
        })
    }

    /// Waits for a connection's worth of room ([`PgStore::slots`]), and returns it with the
    /// deadline that also bounds taking the connection: the acquire timeout covers both waits
    /// together. Past it, the answer is the pool's own "timed out", a 503.
    async fn slot(&self) -> Result<(OwnedSemaphorePermit, Instant), StoreError> {
        let deadline = Instant::now() + self.acquire_timeout;
        match tokio::time::timeout_at(deadline, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok((permit, deadline)),
            // Elapsed, or closed (which the store never does).
            _ => Err(timed_out()),
        }
    }

    /// Opens a transaction, on a task of its own so that it cannot be abandoned half-open.
    ///
    /// sqlx 0.9.0 counts a transaction as open only once the server has answered `BEGIN`, and
    /// rolls back on drop only what it counts. A request dropped between the two (its client
    /// went away) would give the pool back a connection inside a transaction that nothing
    /// ends: every later query on it would run inside that transaction, hold its locks and
    /// never commit (transact-rs/sqlx#4393). Spawned, `BEGIN` is always answered; if nobody
    /// is left to take the transaction, it is dropped, and so rolled back, as any other.
    async fn begin_by(
        &self,
        deadline: Instant,
        snapshot: bool,
    ) -> Result<Transaction<'static, Postgres>, StoreError> {
        let pool = self.pool.clone();
        let begun = tokio::spawn(async move {
            match snapshot {
                // The isolation in the BEGIN itself: one round trip, not two.
                true => {
                    pool.begin_with("begin isolation level repeatable read, read only")
                        .await
                }
                false => pool.begin().await,
            }
        });
        tokio::time::timeout_at(deadline, begun)
            .await
            .map_err(|_| timed_out())?
            .map_err(|error| StoreError::Other(error.into()))?
            .map_err(db_error)
    }

    /// Runs `work` on one pooled connection, telling it whether statements may be prepared
    /// once and reused (`persistent`).
    ///
    /// Behind a transaction-mode pooler, sqlx's extended-protocol round trips (parse, then
    /// bind and execute) may each reach a different server connection unless they are inside
    /// a transaction, so there each call runs in one, with unnamed statements only. Outside a
    /// pooler, neither costs anything.
    ///
    /// The pool's acquire and `work` are boxed, so that a request still waiting for its
    /// [`PgStore::slot`] holds neither (see [`PgStore::slots`]). Holding a slot, a request
    /// nearly always finds an idle connection and takes it without the acquire (and the copy
    /// of its 14 KiB future into the box).
    async fn run<T>(
        &self,
        work: impl AsyncFnOnce(&mut PgConnection, bool) -> Result<T, sqlx::Error>,
    ) -> Result<T, StoreError> {
        if self.transaction_pooler {
            return self.transaction(work).await;
        }
        let (_slot, deadline) = self.slot().await?;
        // With a slot, an idle connection is there unless the pool has yet to open one (or its
        // reaper just closed one): then the pool's acquire, which opens it.
        let mut connection = match self.pool.try_acquire() {
            Some(connection) => connection,
            None => tokio::time::timeout_at(deadline, Box::pin(self.pool.acquire()))
                .await
                .map_err(|_| timed_out())?
                .map_err(db_error)?,
        };
        Box::pin(work(&mut connection, true))
            .await
            .map_err(db_error)
    }
}

/// PostgreSQL error codes that mean "the server cannot serve you right now".
fn transient(code: &str) -> bool {
    // 08: connection exceptions; 53: insufficient resources (e.g. too many connections);
    // 57P01-57P04: the server is shutting down, not yet accepting connections, or the
    // database was dropped; 55000 and 3D000: the database does not accept connections now
    // (`allow_connections false`) or is being renamed.
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(
            code,
            "57P01" | "57P02" | "57P03" | "57P04" | "55000" | "3D000"
        )
}

fn db_error(error: sqlx::Error) -> StoreError {
    classify(error, transient)
}

/// No connection within the acquire timeout: what the pool itself says then.
fn timed_out() -> StoreError {
    db_error(sqlx::Error::PoolTimedOut)
}

/// The update of `changes` to a live task the caller may write, at a version `expect` admits,
/// if some field really differs (or `completes`: an occurrence is completed, its count goes up).
async fn update_row(
    conn: &mut PgConnection,
    persistent: bool,
    owner: &UserId,
    id: TaskId,
    (changes, expect, completes): (&UpdateTask, &Expect, bool),
) -> Result<Option<Row>, sqlx::Error> {
    let now = now();
    let description = changes.description.as_ref().map(|d| d.as_ref());
    let versions = admitted_versions(expect);
    let parent = changes.parent_id.map(|parent| parent.map(TaskId::get));
    let recurrence = changes
        .recurrence
        .as_ref()
        .map(|recurrence| recurrence.as_ref().map(Recurrence::to_stored));
    // One statement: the row changes only when some field really differs and its version
    // is one the caller expects, so a change that changes nothing moves neither `version`
    // nor `updated_at`, and two writers holding the same version cannot both win.
    // `greatest(...)` keeps updated_at strictly increasing even within one microsecond or
    // when the clock steps back. `completed_at` follows `status` in the same statement.
    sqlx::query_as::<_, Row>(concat!(
        "update tasks set
            title = coalesce($3, title),
            title_key = coalesce($4, title_key),
            description = case when $5 then $6 else description end,
            description_key = case when $5 then $7 else description_key end,
            status = coalesce($8, status),
            completed_at = case
                when $8::text is null or $8 = status then completed_at
                when $8 = 'completed' then coalesce($27, $9)
                else null end,
            due_at = case when $10 then $11 else due_at end,
            priority = coalesce($12, priority),
            tags = coalesce($13, tags),
            tag_keys = coalesce($14, tag_keys),
            list_id = coalesce($16, list_id),
            position = case when $16::bigint is null or $16 = list_id then position
                else task_position_after(
                    (select max(position) from tasks t where t.list_id = $16)) end,
            -- Moved to a list the assignee is not in: nobody's any more.
            assignee_id = case when $17 then $18
                when $16::bigint is null or $16 = list_id then assignee_id
                when exists (select 1 from list_members a
                    where a.list_id = $16 and a.user_id = assignee_id)
                    then assignee_id
                else null end,
            -- Moved to another list without a new parent: a top-level task there.
            parent_id = case when $19 then $20
                when $16::bigint is null or $16 = list_id then parent_id
                else null end,
            recurrence = case when $21 then $22 else recurrence end,
            ical = coalesce($24, ical),
            dav_name = case when $25 then $26 else dav_name end,
            completed_count = completed_count + case when $23 then 1 else 0 end,
            last_completed_at = case when $23 then $9 else last_completed_at end,
            updated_at = greatest($9, updated_at + interval '1 microsecond'),
            version = version + 1
         where id = $2 and deleted_at is null and ",
        writable!(),
        " and ($15::bigint[] is null or version = any($15))
            and ($16::bigint is null or $16 in (
                select m.list_id from list_members m join lists l on l.id = m.list_id
                where m.user_id = $1 and m.role <> 'viewer'
                    and l.deleted_at is null))
            and (not $17 or $18::text is null or exists (
                select 1 from list_members a
                where a.list_id = coalesce($16, tasks.list_id) and a.user_id = $18))
            and (title is distinct from coalesce($3, title)
            or ($5 and description is distinct from $6)
            or status is distinct from coalesce($8, status)
            or ($10 and due_at is distinct from $11)
            or priority is distinct from coalesce($12, priority)
            or tags is distinct from coalesce($13, tags)
            or list_id is distinct from coalesce($16, list_id)
            or ($17 and assignee_id is distinct from $18)
            or ($19 and parent_id is distinct from $20)
            or ($21 and recurrence is distinct from $22)
            or ical is distinct from coalesce($24, ical)
            or ($25 and dav_name is distinct from $26)
            or $23)
         returning ",
        task_columns!()
    ))
    .persistent(persistent)
    .bind(owner.as_str())
    .bind(id.get())
    .bind(changes.title.as_ref().map(|t| t.as_str()))
    .bind(changes.title.as_ref().map(text::title_key))
    .bind(description.is_some())
    .bind(description.flatten().map(|d| d.as_str()))
    .bind(description.and_then(text::description_key))
    .bind(changes.status.map(|s| s.as_str()))
    .bind(now)
    .bind(changes.due_at.is_some())
    .bind(changes.due_at.flatten().map(Timestamp::get))
    .bind(changes.priority.map(|p| i32::from(p.rank())))
    .bind(changes.tags.as_ref().map(Tags::names))
    .bind(changes.tags.as_ref().map(Tags::keys))
    .bind(versions.as_deref())
    .bind(changes.list_id.map(ListId::get))
    .bind(changes.assignee_id.is_some())
    .bind(
        changes
            .assignee_id
            .as_ref()
            .and_then(|a| a.as_ref())
            .map(UserId::as_str),
    )
    .bind(parent.is_some())
    .bind(parent.flatten())
    .bind(recurrence.is_some())
    .bind(recurrence.flatten())
    .bind(completes)
    .bind(changes.ical.as_deref())
    .bind(changes.dav_name.is_some())
    .bind(changes.dav_name.as_ref().and_then(|name| name.as_deref()))
    .bind(changes.completed_at)
    .fetch_optional(conn)
    .await
}

fn task(row: Option<Row>) -> Result<Option<Task>, StoreError> {
    row.map(Task::try_from).transpose()
}

/// A new list owned by `owner`, at the end of their order; `None` past the limit. `conn`
/// must be in a transaction.
async fn insert_list(
    conn: &mut PgConnection,
    persistent: bool,
    owner: &UserId,
    list: &CreateList,
) -> Result<Option<ListRowPg>, sqlx::Error> {
    let now = now();
    // One user's list creations queue here, so the limit holds under concurrency.
    sqlx::query("select pg_advisory_xact_lock(hashtext('lists'), hashtext($1))")
        .persistent(persistent)
        .bind(owner.as_str())
        .execute(&mut *conn)
        .await?;
    let id: Option<i64> = sqlx::query_scalar(
        "with new_list as (
                insert into lists (owner_id, name, color, change_pos, last_pos,
                    created_at, updated_at)
                select $1, $2, $3, feed_position(), 0, $4, $4
                where (select count(*) from list_members where user_id = $1) < $5
                returning id
             )
             insert into list_members (list_id, user_id, role, position, joined_at,
                joined_pos, change_pos)
             select id, $1, 'owner', list_position_after($1), $4, 0, 0 from new_list
             returning list_id",
    )
    .persistent(persistent)
    .bind(owner.as_str())
    .bind(list.name.as_str())
    .bind(list.color.as_ref().map(|c| c.as_str()))
    .bind(now)
    .bind(crate::domain::list::MAX_LISTS_PER_USER)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(id) = id else {
        return Ok(None);
    };
    // Read after the statement: its triggers have counted the owner.
    sqlx::query_as(concat!(
        "select ",
        list_columns!(),
        " from list_members m join lists l on l.id = m.list_id
             where m.user_id = $1 and l.id = $2"
    ))
    .persistent(persistent)
    .bind(owner.as_str())
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
}

/// A list id read back from storage.
fn stored_list(id: i64) -> Result<ListId, StoreError> {
    ListId::try_from(id).map_err(|_| StoreError::Other(format!("corrupt list id {id}").into()))
}

/// A list row of the feed with its position.
#[derive(sqlx::FromRow)]
struct ListFeedRow {
    pos: i64,
    #[sqlx(flatten)]
    list: ListRowPg,
}

/// A transaction of a write under a key, with the pool slot it holds.
pub struct PgTransaction {
    transaction: Transaction<'static, Postgres>,
    _slot: OwnedSemaphorePermit,
}

impl PgStore {
    /// Runs `work` in one transaction on one pooled connection (see [`PgStore::run`]).
    async fn transaction<T>(
        &self,
        work: impl AsyncFnOnce(&mut PgConnection, bool) -> Result<T, sqlx::Error>,
    ) -> Result<T, StoreError> {
        let transaction = Statements::begin(self).await?;
        self.within(transaction, work).await
    }

    /// Runs `work` in a read-only transaction that sees one snapshot throughout (repeatable
    /// read), committed when it succeeds.
    async fn snapshot<T>(
        &self,
        work: impl AsyncFnOnce(&mut PgConnection, bool) -> Result<T, sqlx::Error>,
    ) -> Result<T, StoreError> {
        let transaction = self.open(true).await?;
        self.within(transaction, work).await
    }

    /// A transaction on a connection of the pool, holding its slot: a repeatable-read,
    /// read-only one when `snapshot`.
    async fn open(&self, snapshot: bool) -> Result<PgTransaction, StoreError> {
        let (slot, deadline) = self.slot().await?;
        Ok(PgTransaction {
            transaction: self.begin_by(deadline, snapshot).await?,
            _slot: slot,
        })
    }

    /// Runs `work` in `transaction`, committed when it succeeds.
    async fn within<T>(
        &self,
        mut transaction: PgTransaction,
        work: impl AsyncFnOnce(&mut PgConnection, bool) -> Result<T, sqlx::Error>,
    ) -> Result<T, StoreError> {
        let value = Box::pin(work(&mut transaction.transaction, self.persistent()))
            .await
            .map_err(db_error)?;
        Statements::commit(self, transaction).await?;
        Ok(value)
    }

    fn persistent(&self) -> bool {
        !self.transaction_pooler
    }
}

/// A transaction-level advisory lock on the key lets one request with it proceed and tells
/// any other, on any instance, that it is in flight.
impl Statements for PgStore {
    type Transaction = PgTransaction;
    type Claim = ();

    const POSITION_IN_INSERT: bool = true;

    async fn select_page(
        &self,
        owner: &UserId,
        query: &TaskQuery,
    ) -> Result<Vec<Task>, StoreError> {
        let rows: Vec<Row> = self
            .run(async |conn, persistent| {
                // List by list, each through its own index in the page's order, then merged:
                // a semi-join on the caller's lists would read and sort every task of theirs.
                let mut sql = QueryBuilder::new(concat!("select ", task_columns!(), " from ("));
                push_lists(&mut sql, owner, &query.filter);
                // title_key too: the title sort orders the merge by it.
                sql.push(concat!(
                    ") mine cross join lateral (select ",
                    task_columns!(),
                    ", title_key from tasks where list_id = mine.member_list"
                ));
                push_conditions(&mut sql, owner, &query.filter);
                super::sql::push_keyset(&mut sql, query, push_sort_value);
                super::sql::push_order(&mut sql, query);
                sql.push(" limit ")
                    .push_bind(i64::from(query.limit).saturating_add(query.offset));
                sql.push(") t");
                super::sql::push_order(&mut sql, query);
                sql.push(" limit ").push_bind(i64::from(query.limit));
                sql.push(" offset ").push_bind(query.offset);
                sql.build_query_as()
                    .persistent(persistent)
                    .fetch_all(conn)
                    .await
            })
            .await?;
        row::all(rows)
    }

    async fn count_matching(&self, owner: &UserId, filter: &Filter) -> Result<i64, StoreError> {
        self.run(async |conn, persistent| {
            let unfiltered = Filter {
                list: filter.list,
                ..Filter::default()
            };
            if *filter == unfiltered {
                // Kept by a trigger: one row per list, however many tasks.
                return sqlx::query_scalar(
                    "select coalesce(sum(l.live_tasks), 0)::bigint
                     from list_members m join lists l on l.id = m.list_id
                     where m.user_id = $1 and ($2::bigint is null or m.list_id = $2)",
                )
                .persistent(persistent)
                .bind(owner.as_str())
                .bind(filter.list.map(ListId::get))
                .fetch_one(conn)
                .await;
            }
            let mut sql = QueryBuilder::new("select count(*) from tasks");
            push_filter(&mut sql, owner, filter);
            sql.build_query_scalar()
                .persistent(persistent)
                .fetch_one(conn)
                .await
        })
        .await
    }

    async fn select_task(&self, owner: &UserId, id: TaskId) -> Result<Option<Task>, StoreError> {
        let row: Option<Row> = self
            .run(async |conn, persistent| {
                sqlx::query_as(concat!(
                    "select ",
                    task_columns!(),
                    " from tasks where id = $2 and deleted_at is null and ",
                    readable!()
                ))
                .persistent(persistent)
                .bind(owner.as_str())
                .bind(id.get())
                .fetch_optional(conn)
                .await
            })
            .await?;
        task(row)
    }

    async fn list_of_task(&self, owner: &UserId, id: TaskId) -> Result<Option<ListId>, StoreError> {
        let list: Option<i64> = self
            .run(async |conn, persistent| {
                sqlx::query_scalar(concat!(
                    "select list_id from tasks where id = $2 and ",
                    readable!()
                ))
                .persistent(persistent)
                .bind(owner.as_str())
                .bind(id.get())
                .fetch_optional(conn)
                .await
            })
            .await?;
        list.map(stored_list).transpose()
    }

    async fn role_in(&self, owner: &UserId, list: ListId) -> Result<Option<Role>, StoreError> {
        let role: Option<String> = self
            .run(async |conn, persistent| {
                sqlx::query_scalar(
                    "select m.role from list_members m join lists l on l.id = m.list_id
                     where m.user_id = $1 and m.list_id = $2 and l.deleted_at is null",
                )
                .persistent(persistent)
                .bind(owner.as_str())
                .bind(list.get())
                .fetch_optional(conn)
                .await
            })
            .await?;
        Ok(role.as_deref().and_then(Role::parse))
    }

    async fn is_member(&self, list: ListId, user: &UserId) -> Result<bool, StoreError> {
        self.run(async |conn, persistent| {
            sqlx::query_scalar(
                "select exists (select 1 from list_members where list_id = $1 and user_id = $2)",
            )
            .persistent(persistent)
            .bind(list.get())
            .bind(user.as_str())
            .fetch_one(conn)
            .await
        })
        .await
    }

    async fn last_position(&self, list: ListId) -> Result<Option<String>, StoreError> {
        self.run(async |conn, persistent| {
            sqlx::query_scalar("select max(position) from tasks where list_id = $1")
                .persistent(persistent)
                .bind(list.get())
                .fetch_one(conn)
                .await
        })
        .await
    }

    async fn position_of(
        &self,
        owner: &UserId,
        id: TaskId,
    ) -> Result<Option<(ListId, String)>, StoreError> {
        let row: Option<(i64, String)> = self
            .run(async |conn, persistent| {
                sqlx::query_as(concat!(
                    "select list_id, position from tasks
                     where id = $2 and deleted_at is null and ",
                    readable!()
                ))
                .persistent(persistent)
                .bind(owner.as_str())
                .bind(id.get())
                .fetch_optional(conn)
                .await
            })
            .await?;
        row.map(|(list, key)| Ok((stored_list(list)?, key)))
            .transpose()
    }

    async fn neighbour(
        &self,
        list: ListId,
        moving: TaskId,
        from: Option<&Position>,
        above: bool,
    ) -> Result<Option<String>, StoreError> {
        self.run(async |conn, persistent| {
            let sql = match (above, from.is_some()) {
                (true, true) => {
                    "select min(position) from tasks
                     where list_id = $1 and id <> $2 and position > $3"
                }
                (true, false) => {
                    "select min(position) from tasks
                     where list_id = $1 and id <> $2 and $3::text is null"
                }
                (false, true) => {
                    "select max(position) from tasks
                     where list_id = $1 and id <> $2 and position < $3"
                }
                (false, false) => {
                    "select max(position) from tasks
                     where list_id = $1 and id <> $2 and $3::text is null"
                }
            };
            sqlx::query_scalar(sql)
                .persistent(persistent)
                .bind(list.get())
                .bind(moving.get())
                .bind(from.map(Position::as_str))
                .fetch_one(conn)
                .await
        })
        .await
    }

    async fn inbox(&self, owner: &UserId) -> Result<ListId, StoreError> {
        let id: i64 = self
            .run(async |conn, persistent| {
                sqlx::query_scalar("select inbox_for($1)")
                    .persistent(persistent)
                    .bind(owner.as_str())
                    .fetch_one(conn)
                    .await
            })
            .await?;
        stored_list(id)
    }

    async fn ensure_inbox(&self, owner: &UserId) -> Result<(), StoreError> {
        self.run(async |conn, persistent| {
            sqlx::query("select inbox_for($1)")
                .persistent(persistent)
                .bind(owner.as_str())
                .execute(conn)
                .await
        })
        .await?;
        Ok(())
    }

    async fn select_lists(&self, owner: &UserId) -> Result<Vec<List>, StoreError> {
        let rows: Vec<ListRowPg> = self
            .run(async |conn, persistent| {
                sqlx::query_as(concat!(
                    "select ",
                    list_columns!(),
                    " from list_members m join lists l on l.id = m.list_id
                     where m.user_id = $1 and l.deleted_at is null order by m.position"
                ))
                .persistent(persistent)
                .bind(owner.as_str())
                .fetch_all(conn)
                .await
            })
            .await?;
        row::lists(rows)
    }

    async fn select_list(
        &self,
        owner: &UserId,
        list: ListId,
        trashed: bool,
    ) -> Result<Option<List>, StoreError> {
        let row: Option<ListRowPg> = self
            .run(async |conn, persistent| {
                sqlx::query_as(concat!(
                    "select ",
                    list_columns!(),
                    " from list_members m join lists l on l.id = m.list_id
                     where m.user_id = $1 and l.id = $2 and (l.deleted_at is not null) = $3"
                ))
                .persistent(persistent)
                .bind(owner.as_str())
                .bind(list.get())
                .bind(trashed)
                .fetch_optional(conn)
                .await
            })
            .await?;
        row.map(List::try_from).transpose()
    }

    async fn insert_list(
        &self,
        owner: &UserId,
        list: &CreateList,
    ) -> Result<Option<List>, StoreError> {
        let row = self
            .transaction(async |conn, persistent| insert_list(conn, persistent, owner, list).await)
            .await?;
        row.map(List::try_from).transpose()
    }

    async fn insert_list_in(
        &self,
        transaction: &mut PgTransaction,
        owner: &UserId,
        list: &CreateList,
    ) -> Result<Option<List>, StoreError> {
        let row = insert_list(&mut transaction.transaction, self.persistent(), owner, list)
            .await
            .map_err(db_error)?;
        row.map(List::try_from).transpose()
    }

    async fn update_list(
        &self,
        owner: &UserId,
        list: ListId,
        changes: &UpdateList,
        expect: &Expect,
    ) -> Result<Option<List>, StoreError> {
        let versions = admitted_versions(expect);
        let color = changes.color.as_ref();
        let row: Option<ListRowPg> = self
            .run(async |conn, persistent| {
                sqlx::query_as(concat!(
                    "with l as (
                        update lists set name = coalesce($3, name),
                            color = case when $4 then $5 else color end,
                            version = version + 1,
                            updated_at = greatest($6, updated_at + interval '1 microsecond')
                        where id = $2 and deleted_at is null
                            and ($7::bigint[] is null or version = any($7))
                            and (name is distinct from coalesce($3, name)
                                or ($4 and color is distinct from $5))
                            and exists (select 1 from list_members
                                where list_id = $2 and user_id = $1 and role <> 'viewer')
                        returning *
                     )
                     select ",
                    list_columns!(),
                    " from l join list_members m on m.list_id = l.id and m.user_id = $1"
                ))
                .persistent(persistent)
                .bind(owner.as_str())
                .bind(list.get())
                .bind(changes.name.as_ref().map(|n| n.as_str()))
                .bind(color.is_some())
                .bind(color.and_then(|c| c.as_ref()).map(|c| c.as_str()))
                .bind(now())
                .bind(versions.as_deref())
                .fetch_optional(conn)
                .await
            })
            .await?;
        row.map(List::try_from).transpose()
    }

    async fn trash_list(
        &self,
        owner: &UserId,
        list: ListId,
        restore: bool,
    ) -> Result<bool, StoreError> {
        let now = now();
        self.transaction(async |conn, persistent| {
            // The caller's right first, with a plain read: someone else's request locks nothing.
            let owns: bool = sqlx::query_scalar(
                "select exists (select 1 from list_members
                    where list_id = $1 and user_id = $2 and role = 'owner')",
            )
            .persistent(persistent)
            .bind(list.get())
            .bind(owner.as_str())
            .fetch_one(&mut *conn)
            .await?;
            if !owns {
                return Ok(false);
            }
            // Its tasks first, then the list's row: the lock order of every writer.
            sqlx::query("select id from tasks where list_id = $1 order by id for update")
                .persistent(persistent)
                .bind(list.get())
                .execute(&mut *conn)
                .await?;
            let trashed_at: Option<Option<DateTime<Utc>>> = sqlx::query_scalar(
                "update lists l set
                    deleted_at = case when $3 then null else $4 end,
                    version = version + 1,
                    updated_at = greatest($4, updated_at + interval '1 microsecond')
                 where id = $2 and inbox_of is null and (deleted_at is null) <> $3
                    and exists (select 1 from list_members
                        where list_id = $2 and user_id = $1 and role = 'owner')
                 returning (select deleted_at from lists where id = $2)",
            )
            .persistent(persistent)
            .bind(owner.as_str())
            .bind(list.get())
            .bind(restore)
            .bind(now)
            .fetch_optional(&mut *conn)
            .await?;
            let Some(before) = trashed_at else {
                return Ok(false);
            };
            match restore {
                // The tasks that went to the trash with the list come back with it.
                true => {
                    sqlx::query(
                        "update tasks set deleted_at = null, version = version + 1,
                            updated_at = greatest($3, updated_at + interval '1 microsecond')
                         where list_id = $1 and deleted_at = $2",
                    )
                    .persistent(persistent)
                    .bind(list.get())
                    .bind(before)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                }
                false => {
                    sqlx::query(
                        "update tasks set deleted_at = $2
                         where list_id = $1 and deleted_at is null",
                    )
                    .persistent(persistent)
                    .bind(list.get())
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                }
            }
            Ok(true)
        })
        .await
    }

    async fn reposition_list(
        &self,
        owner: &UserId,
        list: ListId,
        position: &Position,
    ) -> Result<bool, StoreError> {
        let result = self
            .run(async |conn, persistent| {
                sqlx::query(
                    "update list_members m set position = $3
                     from lists l
                     where l.id = m.list_id and l.deleted_at is null
                        and m.user_id = $1 and m.list_id = $2",
                )
                .persistent(persistent)
                .bind(owner.as_str())
                .bind(list.get())
                .bind(position.as_str())
                .execute(conn)
                .await
            })
            .await?;
        Ok(result.rows_affected() > 0)
    }

    async fn list_neighbour(
        &self,
        owner: &UserId,
        moving: ListId,
        from: Option<&Position>,
        above: bool,
    ) -> Result<Option<String>, StoreError> {
        self.run(async |conn, persistent| {
            let sql = match (above, from.is_some()) {
                (true, true) => {
                    "select min(position) from list_members
                     where user_id = $1 and list_id <> $2 and position > $3"
                }
                (true, false) => {
                    "select min(position) from list_members
                     where user_id = $1 and list_id <> $2 and $3::text is null"
                }
                (false, true) => {
                    "select max(position) from list_members
                     where user_id = $1 and list_id <> $2 and position < $3"
                }
                (false, false) => {
                    "select max(position) from list_members
                     where user_id = $1 and list_id <> $2 and $3::text is null"
                }
            };
            sqlx::query_scalar(sql)
                .persistent(persistent)
                .bind(owner.as_str())
                .bind(moving.get())
                .bind(from.map(Position::as_str))
                .fetch_one(conn)
                .await
        })
        .await
    }

    async fn execute(&self, owner: &UserId, write: Write<'_>) -> Result<Option<Task>, StoreError> {
        let work =
            async |conn: &mut PgConnection, persistent| apply(conn, persistent, owner, write).await;
        let row = match write {
            Write::Rekey { .. } => self.transaction(work).await?,
            _ => self.run(work).await?,
        };
        task(row)
    }

    async fn update_fields(
        &self,
        transaction: &mut PgTransaction,
        owner: &UserId,
        id: TaskId,
        changes: &UpdateTask,
        expect: &Expect,
        completes: bool,
    ) -> Result<Option<Task>, StoreError> {
        let persistent = self.persistent();
        let write = (changes, expect, completes);
        let row = update_row(&mut transaction.transaction, persistent, owner, id, write)
            .await
            .map_err(db_error)?;
        task(row)
    }

    async fn update_fields_alone(
        &self,
        owner: &UserId,
        id: TaskId,
        changes: &UpdateTask,
        expect: &Expect,
    ) -> Result<Option<Task>, StoreError> {
        let row = self
            .run(async |conn, persistent| {
                update_row(conn, persistent, owner, id, (changes, expect, false)).await
            })
            .await?;
        task(row)
    }

    async fn trash(
        &self,
        transaction: &mut PgTransaction,
        owner: &UserId,
        id: TaskId,
        expect: &Expect,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let versions = admitted_versions(expect);
        let result = sqlx::query(concat!(
            "update tasks set deleted_at = $3
             where id = $2 and deleted_at is null
                and ($4::bigint[] is null or version = any($4)) and ",
            writable!()
        ))
        .persistent(self.persistent())
        .bind(owner.as_str())
        .bind(id.get())
        .bind(at)
        .bind(versions.as_deref())
        .execute(&mut *transaction.transaction)
        .await
        .map_err(db_error)?;
        Ok(result.rows_affected() > 0)
    }

    async fn untrash(
        &self,
        transaction: &mut PgTransaction,
        owner: &UserId,
        id: TaskId,
    ) -> Result<Option<Task>, StoreError> {
        let row: Option<Row> = sqlx::query_as(concat!(
            "update tasks set deleted_at = null, version = version + 1,
                updated_at = greatest($3, updated_at + interval '1 microsecond')
             where id = $2 and deleted_at is not null and ",
            writable!(),
            " returning ",
            task_columns!()
        ))
        .persistent(self.persistent())
        .bind(owner.as_str())
        .bind(id.get())
        .bind(now())
        .fetch_optional(&mut *transaction.transaction)
        .await
        .map_err(db_error)?;
        task(row)
    }

    async fn family(
        &self,
        transaction: &mut PgTransaction,
        id: TaskId,
        up: bool,
    ) -> Result<Vec<Node>, StoreError> {
        // One join each way, so that each level is an index lookup (by id, or by parent);
        // bounded by depth, so that even a corrupt cycle ends.
        macro_rules! family {
            ($join:literal) => {
                concat!(
                    "with recursive family (id, parent_id, depth, list_id, completed, deleted_at)
                     as (select id, parent_id, 0::bigint, list_id, status = 'completed', deleted_at
                        from tasks where id = $1
                        union all
                        select t.id, t.parent_id, f.depth + 1, t.list_id,
                            t.status = 'completed', t.deleted_at
                        from family f join tasks t on ",
                    $join,
                    " where f.depth < 5)
                     select id, parent_id, depth, list_id, completed, deleted_at from family
                     order by depth, id"
                )
            };
        }
        let sql = match up {
            true => family!("t.id = f.parent_id"),
            false => family!("t.parent_id = f.id"),
        };
        let rows: Vec<NodeRow<DateTime<Utc>>> = sqlx::query_as(sql)
            .persistent(self.persistent())
            .bind(id.get())
            .fetch_all(&mut *transaction.transaction)
            .await
            .map_err(db_error)?;
        rows.into_iter().map(Node::try_from).collect()
    }

    async fn lock_parents(
        &self,
        transaction: &mut PgTransaction,
        list: ListId,
    ) -> Result<(), StoreError> {
        // Not the list's row: a task's write locks its row before its list's, and this comes
        // before the task's write.
        sqlx::query("select pg_advisory_xact_lock(hashtext('task parents'), hashtext($1::text))")
            .persistent(self.persistent())
            .bind(list.get())
            .execute(&mut *transaction.transaction)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn cascade(
        &self,
        transaction: &mut PgTransaction,
        cascade: Cascade<'_>,
    ) -> Result<(), StoreError> {
        let conn = &mut *transaction.transaction;
        let persistent = self.persistent();
        // Rows in id order, as every statement that writes many tasks locks them.
        let result = match cascade {
            Cascade::Complete { ids, at } => {
                sqlx::query(
                    "update tasks set status = 'completed', completed_at = $2,
                        version = version + 1,
                        updated_at = greatest($2, updated_at + interval '1 microsecond')
                     where id in (select id from tasks where id = any($1)
                            and status <> 'completed' and deleted_at is null
                            order by id for update)",
                )
                .persistent(persistent)
                .bind(ids)
                .bind(at)
                .execute(conn)
                .await
            }
            Cascade::Trash { ids, at } => {
                sqlx::query(
                    "update tasks set deleted_at = $2
                     where id in (select id from tasks where id = any($1)
                            and deleted_at is null order by id for update)",
                )
                .persistent(persistent)
                .bind(ids)
                .bind(at)
                .execute(conn)
                .await
            }
            Cascade::Restore { ids } => {
                sqlx::query(
                    "update tasks set deleted_at = null, version = version + 1,
                        updated_at = greatest($2, updated_at + interval '1 microsecond')
                     where id in (select id from tasks where id = any($1)
                            and deleted_at is not null order by id for update)",
                )
                .persistent(persistent)
                .bind(ids)
                .bind(now())
                .execute(conn)
                .await
            }
            Cascade::Relist { ids, list } => {
                // One by one, each after the list's last task as it stands after the one
                // before, in the order given (the subtree's, parents first).
                for id in ids {
                    sqlx::query(
                        "update tasks set list_id = $2,
                            position = task_position_after(
                                (select max(position) from tasks t where t.list_id = $2)),
                            assignee_id = case when exists (select 1 from list_members a
                                where a.list_id = $2 and a.user_id = assignee_id)
                                then assignee_id end,
                            version = version + 1,
                            updated_at = greatest($3, updated_at + interval '1 microsecond')
                         where id = $1 and list_id <> $2",
                    )
                    .persistent(persistent)
                    .bind(id)
                    .bind(list.get())
                    .bind(now())
                    .execute(&mut *conn)
                    .await
                    .map_err(db_error)?;
                }
                return Ok(());
            }
        };
        result.map_err(db_error)?;
        Ok(())
    }

    fn claim(&self, _owner: &UserId, _key: &IdempotencyKey) -> Result<(), StoreError> {
        // The advisory lock of `lock_key` does this, across instances.
        Ok(())
    }

    async fn begin(&self) -> Result<PgTransaction, StoreError> {
        self.open(false).await
    }

    async fn lock_key(
        &self,
        transaction: &mut PgTransaction,
        owner: &UserId,
        key: &IdempotencyKey,
    ) -> Result<bool, StoreError> {
        sqlx::query_scalar("select pg_try_advisory_xact_lock(hashtext($1), hashtext($2))")
            .persistent(self.persistent())
            .bind(owner.as_str())
            .bind(key.key())
            .fetch_one(&mut *transaction.transaction)
            .await
            .map_err(db_error)
    }

    async fn recorded(
        &self,
        transaction: &mut PgTransaction,
        owner: &UserId,
        key: &IdempotencyKey,
        valid_after: DateTime<Utc>,
    ) -> Result<Option<ReplayRow>, StoreError> {
        sqlx::query_as(
            "select fingerprint, status, body, task_id, version from idempotency_keys
             where user_id = $1 and key = $2 and created_at > $3",
        )
        .persistent(self.persistent())
        .bind(owner.as_str())
        .bind(key.key())
        .bind(valid_after)
        .fetch_optional(&mut *transaction.transaction)
        .await
        .map_err(db_error)
    }

    async fn execute_in(
        &self,
        transaction: &mut PgTransaction,
        owner: &UserId,
        write: Write<'_>,
    ) -> Result<Option<Task>, StoreError> {
        let row = apply(
            &mut transaction.transaction,
            self.persistent(),
            owner,
            write,
        )
        .await
        .map_err(db_error)?;
        task(row)
    }

    async fn record(
        &self,
        transaction: &mut PgTransaction,
        owner: &UserId,
        key: &IdempotencyKey,
        outcome: Outcome,
        id: i64,
        version: i64,
        body: &str,
        now: DateTime<Utc>,
        valid_after: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        // An expired record of the key is replaced; a live one cannot be there (the lock).
        let recorded = sqlx::query(
            "insert into idempotency_keys
                (user_id, key, fingerprint, status, body, task_id, version, created_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8)
             on conflict (user_id, key) do update set
                fingerprint = excluded.fingerprint, status = excluded.status,
                body = excluded.body, task_id = excluded.task_id,
                version = excluded.version, created_at = excluded.created_at
             where idempotency_keys.created_at <= $9",
        )
        .persistent(self.persistent())
        .bind(owner.as_str())
        .bind(key.key())
        .bind(key.fingerprint().as_slice())
        .bind(row::outcome_code(outcome))
        .bind(body)
        .bind(id)
        .bind(version)
        .bind(now)
        .bind(valid_after)
        .execute(&mut *transaction.transaction)
        .await
        .map_err(db_error)?;
        Ok(recorded.rows_affected() > 0)
    }

    async fn commit(&self, transaction: PgTransaction) -> Result<(), StoreError> {
        transaction.transaction.commit().await.map_err(db_error)
    }

    async fn rollback(&self, transaction: PgTransaction) {
        let _ = transaction.transaction.rollback().await;
    }

    async fn select_members(
        &self,
        owner: &UserId,
        list: ListId,
    ) -> Result<Option<Vec<Member>>, StoreError> {
        self.run(async |conn, persistent| {
            match sharing::members(conn, persistent, owner, list).await? {
                None => Ok(None),
                Some(rows) => rows
                    .into_iter()
                    .map(sharing::member)
                    .collect::<Result<_, _>>()
                    .map(Some),
            }
        })
        .await
    }

    async fn insert_invitation(
        &self,
        owner: &UserId,
        list: ListId,
        invitation: &InvitationRequest,
    ) -> Result<Option<Invitation>, StoreError> {
        self.run(async |conn, persistent| {
            sharing::invite(conn, persistent, owner, list, invitation)
                .await?
                .map(sharing::invitation)
                .transpose()
        })
        .await
    }

    async fn select_invitations(
        &self,
        owner: &UserId,
        list: ListId,
    ) -> Result<Option<Vec<Invitation>>, StoreError> {
        self.run(async |conn, persistent| {
            match sharing::invitations(conn, persistent, owner, list).await? {
                None => Ok(None),
                Some(rows) => rows
                    .into_iter()
                    .map(sharing::invitation)
                    .collect::<Result<_, _>>()
                    .map(Some),
            }
        })
        .await
    }

    async fn revoke_invitation(
        &self,
        owner: &UserId,
        list: ListId,
        invitation: i64,
    ) -> Result<bool, StoreError> {
        self.run(async |conn, persistent| {
            sharing::revoke(conn, persistent, owner, list, invitation).await
        })
        .await
    }

    async fn accept_invitation(
        &self,
        owner: &UserId,
        token_hash: &[u8; 32],
    ) -> Result<Accepted, StoreError> {
        self.transaction(async |conn, persistent| {
            sharing::accept(conn, persistent, owner, token_hash).await
        })
        .await
    }

    async fn change_role(
        &self,
        owner: &UserId,
        list: ListId,
        member: &UserId,
        role: Role,
    ) -> Result<Option<Member>, StoreError> {
        self.run(async |conn, persistent| {
            sharing::change_role(conn, persistent, owner, list, member, role)
                .await?
                .map(sharing::member)
                .transpose()
        })
        .await
    }

    async fn remove_member(
        &self,
        owner: &UserId,
        list: ListId,
        member: &UserId,
    ) -> Result<bool, StoreError> {
        self.transaction(async |conn, persistent| {
            sharing::remove(conn, persistent, owner, list, member).await
        })
        .await
    }

    async fn transfer_list(
        &self,
        owner: &UserId,
        list: ListId,
        member: &UserId,
    ) -> Result<bool, StoreError> {
        self.transaction(async |conn, persistent| {
            sharing::transfer(conn, persistent, owner, list, member).await
        })
        .await
    }

    async fn every_list(&self, owner: &UserId) -> Result<Vec<List>, StoreError> {
        let rows = self
            .run(async |conn, persistent| sharing::every_list(conn, persistent, owner).await)
            .await?;
        row::lists(rows)
    }

    async fn members_of(&self, list: ListId) -> Result<Vec<Member>, StoreError> {
        self.run(async |conn, persistent| {
            sharing::members_of(conn, persistent, list)
                .await?
                .into_iter()
                .map(sharing::member)
                .collect()
        })
        .await
    }

    async fn owned_and_created_tasks(&self, owner: &UserId) -> Result<Vec<Task>, StoreError> {
        let rows = self
            .run(async |conn, persistent| {
                sharing::owned_and_created_tasks(conn, persistent, owner).await
            })
            .await?;
        row::all(rows)
    }

    async fn erase_user(&self, owner: &UserId) -> Result<(), StoreError> {
        self.transaction(async |conn, persistent| sharing::erase(conn, persistent, owner).await)
            .await
    }

    async fn feed_rows(
        &self,
        owner: &UserId,
        since: ChangeCursor,
        limit: i64,
        lists: bool,
    ) -> Result<FeedRows, StoreError> {
        // One snapshot for the rows and the bounds: a repeatable-read transaction.
        self.snapshot(async |conn, persistent| {
            let (horizon, frontier, purged_through, head): (i64, i64, i64, Option<i64>) =
                sqlx::query_as(
                    "select feed_horizon(), feed_frontier(),
                        (select purged_through from feed_purges),
                        greatest(
                            (select max(greatest(l.last_pos, m.change_pos))
                             from list_members m join lists l on l.id = m.list_id
                             where m.user_id = $1),
                            (select max(pos) from feed_losses where user_id = $1))",
                )
                .persistent(persistent)
                .bind(owner.as_str())
                .fetch_one(&mut *conn)
                .await?;
            let bounds = FeedBounds {
                horizon,
                frontier,
                purged_through,
                head: head.unwrap_or(0),
            };
            let since = since.get();
            let tasks: Vec<FeedRow> = sqlx::query_as(concat!(
                "select ",
                task_columns!(),
                ", change_pos from tasks
                 where change_pos > $2 and change_pos < $3 and ",
                readable!(),
                " order by change_pos limit $4"
            ))
            .persistent(persistent)
            .bind(owner.as_str())
            .bind(since)
            .bind(horizon)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await?;
            let departures: Vec<(i64, i64)> = sqlx::query_as(concat!(
                "select pos, task_id from task_departures
                 where pos > $2 and pos < $3 and ",
                readable!(),
                " order by pos limit $4"
            ))
            .persistent(persistent)
            .bind(owner.as_str())
            .bind(since)
            .bind(horizon)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await?;
            let losses: Vec<(i64, i64, Option<i64>)> = sqlx::query_as(
                "select pos, list_id, task_id from feed_losses
                 where user_id = $1 and pos > $2 and pos < $3 and ($5 or task_id is not null)
                 order by pos limit $4",
            )
            .persistent(persistent)
            .bind(owner.as_str())
            .bind(since)
            .bind(horizon)
            .bind(limit)
            .bind(lists)
            .fetch_all(&mut *conn)
            .await?;
            let list_rows: Vec<(i64, ListRowPg)> = match lists {
                false => Vec::new(),
                true => {
                    let rows: Vec<ListFeedRow> = sqlx::query_as(concat!(
                        "select greatest(l.change_pos, m.change_pos) as pos, ",
                        list_columns!(),
                        " from list_members m join lists l on l.id = m.list_id
                         where m.user_id = $1
                            and greatest(l.change_pos, m.change_pos) > $2
                            and greatest(l.change_pos, m.change_pos) < $3
                         order by 1 limit $4"
                    ))
                    .persistent(persistent)
                    .bind(owner.as_str())
                    .bind(since)
                    .bind(horizon)
                    .bind(limit)
                    .fetch_all(&mut *conn)
                    .await?;
                    rows.into_iter().map(|row| (row.pos, row.list)).collect()
                }
            };
            Ok((tasks, departures, losses, list_rows, bounds))
        })
        .await
        .and_then(|(tasks, departures, losses, list_rows, bounds)| {
            let changes = row::merge_feed(tasks, departures, losses, list_rows, limit)?;
            Ok((changes, bounds))
        })
    }

    async fn feed_horizon(&self) -> Result<i64, StoreError> {
        self.run(async |conn, persistent| {
            sqlx::query_scalar("select feed_horizon()")
                .persistent(persistent)
                .fetch_one(conn)
                .await
        })
        .await
    }

    async fn counter_rows(&self, owners: &[UserId]) -> Result<Vec<(String, i64)>, StoreError> {
        let owners: Vec<&str> = owners.iter().map(UserId::as_str).collect();
        self.run(async |conn, persistent| {
            sqlx::query_as(
                "select user_id, max(pos) from (
                    select m.user_id, greatest(l.last_pos, m.change_pos) as pos
                    from list_members m join lists l on l.id = m.list_id
                    where m.user_id = any($1)
                    union all
                    select user_id, pos from feed_losses where user_id = any($1)
                 ) heads group by user_id",
            )
            .persistent(persistent)
            .bind(&owners)
            .fetch_all(conn)
            .await
        })
        .await
    }

    async fn announce(&self, owners: &[UserId]) -> Result<(), StoreError> {
        // Its own transaction, never a writer's: NOTIFY takes a database-wide lock at commit.
        self.run(async |conn, persistent| notify::announce(conn, persistent, owners).await)
            .await
    }

    async fn purge_batch(
        &self,
        what: Purge,
        before: DateTime<Utc>,
        limit: i64,
    ) -> Result<u64, StoreError> {
        // Skipping rows another instance's purge holds: many instances may purge at once
        // without waiting on each other or deleting anything twice. A removed feed entry
        // raises the horizon under which cursors must start again.
        let sql = match what {
            Purge::Trashed => {
                "with gone as (
                    delete from tasks where id in (
                        select id from tasks where deleted_at < $1
                        limit $2 for update skip locked)
                    returning change_pos
                 ), raised as (
                    update feed_purges set purged_through = greatest(purged_through,
                        coalesce((select max(change_pos) from gone), 0))
                 )
                 select count(*) from gone"
            }
            Purge::Lists => {
                "with gone as (
                    delete from lists where id in (
                        select id from lists where deleted_at < $1
                            and not exists (select 1 from tasks where list_id = lists.id)
                        limit $2 for update skip locked)
                    returning change_pos
                 ), raised as (
                    update feed_purges set purged_through = greatest(purged_through,
                        coalesce((select max(change_pos) from gone), 0))
                 )
                 select count(*) from gone"
            }
            Purge::History => {
                "with departed as (
                    delete from task_departures where (list_id, task_id) in (
                        select list_id, task_id from task_departures where departed_at < $1
                        limit $2 for update skip locked)
                    returning pos
                 ), lost as (
                    delete from feed_losses where (user_id, pos) in (
                        select user_id, pos from feed_losses where lost_at < $1
                        limit $2 for update skip locked)
                    returning pos
                 ), raised as (
                    update feed_purges set purged_through = greatest(purged_through,
                        coalesce((select max(pos) from departed), 0),
                        coalesce((select max(pos) from lost), 0))
                 )
                 select greatest((select count(*) from departed), (select count(*) from lost))"
            }
            Purge::Keys => {
                "with gone as (
                    delete from idempotency_keys where (user_id, key) in (
                        select user_id, key from idempotency_keys where created_at < $1
                        limit $2 for update skip locked)
                    returning 1
                 )
                 select count(*) from gone"
            }
        };
        let removed: i64 = self
            .run(async |conn, persistent| {
                sqlx::query_scalar(sql)
                    .persistent(persistent)
                    .bind(before)
                    .bind(limit)
                    .fetch_one(conn)
                    .await
            })
            .await?;
        Ok(u64::try_from(removed).unwrap_or_default())
    }

    async fn run_migrations(
        &self,
    ) -> Result<(Vec<i64>, &'static sqlx::migrate::Migrator), StoreError> {
        static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");
        let before: Vec<i64> = self
            .run(async |conn, persistent| {
                let exists: bool =
                    sqlx::query_scalar("select to_regclass('_sqlx_migrations') is not null")
                        .persistent(persistent)
                        .fetch_one(&mut *conn)
                        .await?;
                if !exists {
                    return Ok(Vec::new());
                }
                sqlx::query_scalar("select version from _sqlx_migrations")
                    .persistent(persistent)
                    .fetch_all(&mut *conn)
                    .await
            })
            .await?;
        if self.transaction_pooler {
            pooler::migrate(&MIGRATOR, &self.pool).await?;
        } else {
            MIGRATOR.run(&self.pool).await?;
        }
        Ok((before, &MIGRATOR))
    }

    async fn unfolded(&self, limit: i64) -> Result<Vec<(i64, String, Option<String>)>, StoreError> {
        self.run(async |conn, persistent| {
            sqlx::query_as(
                "select id, title, description from tasks where title_key is null limit $1",
            )
            .persistent(persistent)
            .bind(limit)
            .fetch_all(conn)
            .await
        })
        .await
    }

    async fn set_folded(
        &self,
        id: i64,
        title_key: String,
        description_key: Option<String>,
    ) -> Result<(), StoreError> {
        self.run(async |conn, persistent| {
            sqlx::query("update tasks set title_key = $2, description_key = $3 where id = $1")
                .persistent(persistent)
                .bind(id)
                .bind(&title_key)
                .bind(&description_key)
                .execute(conn)
                .await
        })
        .await?;
        Ok(())
    }

    async fn keep_key(&self, name: &str, key: [u8; 32]) -> Result<Vec<u8>, StoreError> {
        self.run(async |conn, persistent| {
            sqlx::query(
                "insert into service_keys (name, key) values ($1, $2)
                 on conflict (name) do nothing",
            )
            .persistent(persistent)
            .bind(name)
            .bind(key.as_slice())
            .execute(&mut *conn)
            .await?;
            sqlx::query_scalar("select key from service_keys where name = $1")
                .persistent(persistent)
                .bind(name)
                .fetch_one(&mut *conn)
                .await
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.run(async |conn, persistent| {
            sqlx::query("select 1")
                .persistent(persistent)
                .execute(conn)
                .await
        })
        .await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    fn pool_status(&self) -> PoolStatus {
        PoolStatus {
            open: self.pool.size(),
            idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
            max: self.pool.options().get_max_connections(),
        }
    }
}
