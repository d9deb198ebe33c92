//! The statements of the writes that may run under an idempotency key.

use sqlx::postgres::PgConnection;

use super::super::row::task_columns;
use super::super::statements::{Write, admitted_versions, now};
use super::super::tasks::{OrderRow, rekeyed_order};
use super::super::text;
use super::Row;
use crate::domain::{
    CreateTask, ListId, Placement, Position, TaskId, TaskStatus, TaskUid, Timestamp, UserId,
};

/// `list_id` is one of the live lists the caller (`$1`) may write.
macro_rules! writable {
    () => {
        "list_id in (select m.list_id from list_members m join lists l on l.id = m.list_id
            where m.user_id = $1 and m.role <> 'viewer' and l.deleted_at is null)"
    };
}
pub(super) use writable;

/// The insert of a new task into `list` (without one, the caller's Inbox, made if need be),
/// at `position` or, without one, after the list's last task: one statement, which checks
/// the caller's right to write the list and the assignee's membership of it.
async fn insert_task(
    conn: &mut PgConnection,
    persistent: bool,
    owner: &UserId,
    task: &CreateTask,
    list: Option<ListId>,
    position: Option<&Position>,
) -> Result<Option<Row>, sqlx::Error> {
    let now = now();
    let status = task.status.unwrap_or_default();
    let tags = task.tags.clone().unwrap_or_default();
    let uid = task.uid.clone().unwrap_or_else(TaskUid::random);
    // The Inbox is the caller's own: only the caller can be assigned there. A subtask goes
    // into its parent's list unless the body names one; the parent, locked against a
    // concurrent trash or move until this commits, must be a live task of that list with
    // fewer than three ancestors (a fourth level at most).
    sqlx::query_as(concat!(
        "with target as (select coalesce($14::bigint,
                (select list_id from tasks where id = $17), inbox_for($1)) as id)
         insert into tasks (user_id, list_id, assignee_id, title, title_key, description,
            description_key, status, created_at, updated_at, due_at, priority,
            tags, tag_keys, position, completed_at, uid, parent_id, recurrence, ical, dav_name)
         select $1, target.id, $15, $2, $3, $4, $5, $6, $7, $7, $8, $9, $10, $11,
            coalesce($12, task_position_after(
                (select max(position) from tasks where list_id = target.id))),
            $13, $16, $17, $18, $19, $20
         from target
         where (($14::bigint is null and $17::bigint is null) or exists (
                select 1 from list_members m join lists l on l.id = m.list_id
                where m.list_id = target.id and m.user_id = $1 and m.role <> 'viewer'
                    and l.deleted_at is null))
            and ($15::text is null or $15 = $1 or exists (
                select 1 from list_members a where a.list_id = target.id and a.user_id = $15))
            and ($17::bigint is null or exists (
                select 1 from tasks p where p.id = $17 and p.list_id = target.id
                    and p.deleted_at is null
                    and (select g.parent_id from tasks a join tasks g on g.id = a.parent_id
                        where a.id = p.parent_id) is null
                for share))
         returning ",
        task_columns!()
    ))
    .persistent(persistent)
    .bind(owner.as_str())
    .bind(task.title.as_str())
    .bind(text::title_key(&task.title))
    .bind(task.description.as_ref().map(|d| d.as_str()))
    .bind(text::description_key(task.description.as_ref()))
    .bind(status.as_str())
    .bind(now)
    .bind(task.due_at.map(Timestamp::get))
    .bind(i32::from(task.priority.unwrap_or_default().rank()))
    .bind(tags.names())
    .bind(tags.keys())
    .bind(position.map(Position::as_str))
    .bind((status == TaskStatus::Completed).then(|| task.completed_at.unwrap_or(now)))
    .bind(list.map(ListId::get))
    .bind(task.assignee_id.as_ref().map(UserId::as_str))
    .bind(uid.as_str())
    .bind(task.parent_id.map(TaskId::get))
    .bind(task.recurrence.as_ref().map(|recurrence| {
        recurrence
            .starting(task.due_at.map(Timestamp::get), 0)
            .to_stored()
    }))
    .bind(task.ical.as_deref())
    .bind(task.dav_name.as_deref())
    .fetch_optional(conn)
    .await
}

/// The move of a live task of `list` from the key `from` to `position`, if its version is
/// one of `versions`.
async fn reposition(
    conn: &mut PgConnection,
    persistent: bool,
    owner: &UserId,
    id: TaskId,
    list: ListId,
    (from, position): (&str, &Position),
    versions: Option<&[i64]>,
) -> Result<Option<Row>, sqlx::Error> {
    sqlx::query_as(concat!(
        "update tasks set position = $3, version = version + 1,
            updated_at = greatest($4, updated_at + interval '1 microsecond')
         where id = $2 and list_id = $6 and position = $7 and deleted_at is null
            and ($5::bigint[] is null or version = any($5)) and ",
        writable!(),
        " returning ",
        task_columns!()
    ))
    .persistent(persistent)
    .bind(owner.as_str())
    .bind(id.get())
    .bind(position.as_str())
    .bind(now())
    .bind(versions)
    .bind(list.get())
    .bind(from)
    .fetch_optional(conn)
    .await
}

/// The move of a live task by `placement` with every key of its list rewritten (see
/// [`rekeyed_order`]), if its version is one of `versions`; `conn` must be in a
/// transaction, in which the list's rows are locked first.
async fn rekeyed_move(
    conn: &mut PgConnection,
    persistent: bool,
    owner: &UserId,
    id: TaskId,
    list: ListId,
    placement: Placement,
    versions: Option<&[i64]>,
) -> Result<Option<Row>, sqlx::Error> {
    let writable: Option<i32> = sqlx::query_scalar(concat!(
        "select 1 from tasks where id = $2 and list_id = $3 and ",
        writable!()
    ))
    .persistent(persistent)
    .bind(owner.as_str())
    .bind(id.get())
    .bind(list.get())
    .fetch_optional(&mut *conn)
    .await?;
    if writable.is_none() {
        return Ok(None);
    }
    // Locked in id order, which no write changes, so that two re-keys cannot deadlock; the
    // rows' keys are their latest (a locking read waits for, and returns, the newest version),
    // but a read that waited keeps its first order: the order is taken from the keys below.
    let mut rows: Vec<(i64, String, bool, i64)> = sqlx::query_as(
        "select id, position, deleted_at is null, version from tasks
         where list_id = $1 order by id for update",
    )
    .persistent(persistent)
    .bind(list.get())
    .fetch_all(&mut *conn)
    .await?;
    rows.sort_by(|a, b| a.1.cmp(&b.1));
    let admitted = rows.iter().any(|(task, _, live, version)| {
        *task == id.get() && *live && versions.is_none_or(|versions| versions.contains(version))
    });
    let rows: Vec<OrderRow> = rows
        .into_iter()
        .map(|(task, key, live, _)| (task, key, live))
        .collect();
    let plan = rekeyed_order(&rows, id, placement)
        .map_err(|error| sqlx::Error::Decode(Box::new(error)))?;
    let Some(plan) = plan.filter(|_| admitted) else {
        return Ok(None);
    };
    let (ids, keys): (Vec<i64>, Vec<String>) = plan
        .into_iter()
        .map(|(task, key)| (task, key.as_str().to_owned()))
        .unzip();
    sqlx::query(
        "update tasks set position = new.position, version = tasks.version + 1,
            updated_at = greatest($4, tasks.updated_at + interval '1 microsecond')
         from unnest($2::bigint[], $3::text[]) as new(id, position)
         where tasks.list_id = $1 and tasks.id = new.id",
    )
    .persistent(persistent)
    .bind(list.get())
    .bind(&ids)
    .bind(&keys)
    .bind(now())
    .execute(&mut *conn)
    .await?;
    sqlx::query_as(concat!(
        "select ",
        task_columns!(),
        " from tasks where list_id = $1 and id = $2"
    ))
    .persistent(persistent)
    .bind(list.get())
    .bind(id.get())
    .fetch_optional(conn)
    .await
}

/// `write` on `conn`.
pub(super) async fn apply(
    conn: &mut PgConnection,
    persistent: bool,
    owner: &UserId,
    write: Write<'_>,
) -> Result<Option<Row>, sqlx::Error> {
    match write {
        Write::Insert {
            task,
            list,
            position,
        } => insert_task(conn, persistent, owner, task, list, position).await,
        Write::Move {
            id,
            list,
            position,
            from,
            expect,
        } => {
            let versions = admitted_versions(expect);
            reposition(
                conn,
                persistent,
                owner,
                id,
                list,
                (from, position),
                versions.as_deref(),
            )
            .await
        }
        Write::Rekey {
            id,
            list,
            placement,
            expect,
        } => {
            let versions = admitted_versions(expect);
            rekeyed_move(
                conn,
                persistent,
                owner,
                id,
                list,
                placement,
                versions.as_deref(),
            )
            .await
        }
    }
}
