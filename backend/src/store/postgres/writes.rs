//! The statements of the writes that may run under an idempotency key.

use sqlx::postgres::PgConnection;

use super::super::row::task_columns;
use super::super::statements::{Write, admitted_versions, now};
use super::super::tasks::{OrderRow, rekeyed_order};
use super::super::text;
use super::Row;
use crate::domain::{CreateTask, Placement, Position, TaskId, TaskStatus, Timestamp, UserId};

/// The insert of a new task, at `position` or, without one, after the owner's last task
/// (computed in the statement: one round trip).
async fn insert_task(
    conn: &mut PgConnection,
    persistent: bool,
    owner: &UserId,
    task: &CreateTask,
    position: Option<&Position>,
) -> Result<Row, sqlx::Error> {
    let now = now();
    let status = task.status.unwrap_or_default();
    let tags = task.tags.clone().unwrap_or_default();
    sqlx::query_as(concat!(
        "insert into tasks (user_id, title, title_key, description,
            description_key, status, created_at, updated_at, due_at, priority,
            tags, tag_keys, position, completed_at)
         values ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9, $10, $11,
            coalesce($12, task_position_after(
                (select max(position) from tasks where user_id = $1))),
            $13)
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
    .bind((status == TaskStatus::Completed).then_some(now))
    .fetch_one(conn)
    .await
}

/// The move of a live task to `position`, if its version is one of `versions`.
async fn reposition(
    conn: &mut PgConnection,
    persistent: bool,
    owner: &UserId,
    id: TaskId,
    position: &Position,
    versions: Option<&[i64]>,
) -> Result<Option<Row>, sqlx::Error> {
    sqlx::query_as(concat!(
        "update tasks set position = $3, version = version + 1,
            updated_at = greatest($4, updated_at + interval '1 microsecond')
         where user_id = $1 and id = $2 and deleted_at is null
            and ($5::bigint[] is null or version = any($5))
         returning ",
        task_columns!()
    ))
    .persistent(persistent)
    .bind(owner.as_str())
    .bind(id.get())
    .bind(position.as_str())
    .bind(now())
    .bind(versions)
    .fetch_optional(conn)
    .await
}

/// The move of a live task by `placement` with every key of the owner rewritten (see
/// [`rekeyed_order`]), if its version is one of `versions`; `conn` must be in a
/// transaction, in which the owner's rows are locked first.
async fn rekeyed_move(
    conn: &mut PgConnection,
    persistent: bool,
    owner: &UserId,
    id: TaskId,
    placement: Placement,
    versions: Option<&[i64]>,
) -> Result<Option<Row>, sqlx::Error> {
    // Locked in id order, which no write changes, so that two re-keys cannot deadlock; the
    // rows' keys are their latest (a locking read waits for, and returns, the newest version),
    // but a read that waited keeps its first order: the order is taken from the keys below.
    let mut rows: Vec<(i64, String, bool, i64)> = sqlx::query_as(
        "select id, position, deleted_at is null, version from tasks
         where user_id = $1 order by id for update",
    )
    .persistent(persistent)
    .bind(owner.as_str())
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
         where tasks.user_id = $1 and tasks.id = new.id",
    )
    .persistent(persistent)
    .bind(owner.as_str())
    .bind(&ids)
    .bind(&keys)
    .bind(now())
    .execute(&mut *conn)
    .await?;
    sqlx::query_as(concat!(
        "select ",
        task_columns!(),
        " from tasks where user_id = $1 and id = $2"
    ))
    .persistent(persistent)
    .bind(owner.as_str())
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
        Write::Insert { task, position } => insert_task(conn, persistent, owner, task, position)
            .await
            .map(Some),
        Write::Move {
            id,
            position,
            expect,
        } => {
            let versions = admitted_versions(expect);
            reposition(conn, persistent, owner, id, position, versions.as_deref()).await
        }
        Write::Rekey {
            id,
            placement,
            expect,
        } => {
            let versions = admitted_versions(expect);
            rekeyed_move(conn, persistent, owner, id, placement, versions.as_deref()).await
        }
    }
}
