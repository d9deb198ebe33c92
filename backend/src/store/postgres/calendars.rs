//! Calendar clients' part of the PostgreSQL store: app passwords, the objects they wrote, and
//! a list's changes by sync token.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::super::calendars::{
    calendar_tags, list_id, missing, new_secret, secret_hash, servable, stored_object, task_id,
    too_many,
};
use super::super::row::{self, task_columns};
use super::super::statements::now;
use super::{FeedRow, PgStore};
use crate::domain::calendar::{
    AppPassword, CalendarChanges, CalendarTags, MAX_APP_PASSWORDS, NewAppPassword, StoredObject,
};
use crate::domain::{ChangeCursor, ListId, TaskId, UserId};
use crate::store::{Calendars, StoreError};

type AppPasswordRow = (i64, String, DateTime<Utc>, Option<DateTime<Utc>>);

fn app_password((id, name, created_at, last_used_at): AppPasswordRow) -> AppPassword {
    AppPassword {
        id,
        name,
        created_at,
        last_used_at,
    }
}

#[async_trait]
impl Calendars for PgStore {
    async fn create_app_password(
        &self,
        owner: &UserId,
        name: &str,
    ) -> Result<NewAppPassword, StoreError> {
        let (secret, hash) = new_secret()?;
        let row: Option<AppPasswordRow> = self
            .run(async |conn, persistent| {
                sqlx::query_as(
                    "insert into app_passwords (user_id, name, secret_hash, created_at)
                     select $1, $2, $3, $4
                     where (select count(*) from app_passwords where user_id = $1) < $5
                     returning id, name, created_at, last_used_at",
                )
                .persistent(persistent)
                .bind(owner.as_str())
                .bind(name)
                .bind(hash.as_slice())
                .bind(now())
                .bind(MAX_APP_PASSWORDS)
                .fetch_optional(conn)
                .await
            })
            .await?;
        let row = row.ok_or_else(too_many)?;
        Ok(NewAppPassword {
            app_password: app_password(row),
            username: owner.as_str().to_owned(),
            password: secret,
        })
    }

    async fn app_passwords(&self, owner: &UserId) -> Result<Vec<AppPassword>, StoreError> {
        let rows: Vec<AppPasswordRow> = self
            .run(async |conn, persistent| {
                sqlx::query_as(
                    "select id, name, created_at, last_used_at from app_passwords
                     where user_id = $1 order by id",
                )
                .persistent(persistent)
                .bind(owner.as_str())
                .fetch_all(conn)
                .await
            })
            .await?;
        Ok(rows.into_iter().map(app_password).collect())
    }

    async fn revoke_app_password(&self, owner: &UserId, id: i64) -> Result<(), StoreError> {
        let deleted = self
            .run(async |conn, persistent| {
                sqlx::query("delete from app_passwords where id = $1 and user_id = $2")
                    .persistent(persistent)
                    .bind(id)
                    .bind(owner.as_str())
                    .execute(conn)
                    .await
            })
            .await?;
        match deleted.rows_affected() {
            0 => Err(missing()),
            _ => Ok(()),
        }
    }

    async fn check_app_password(&self, user: &UserId, secret: &str) -> Result<bool, StoreError> {
        let hash = secret_hash(secret);
        // Its use is written at most once a minute: a calendar client's every request would
        // otherwise be a write.
        let found: Option<i64> = self
            .run(async |conn, persistent| {
                sqlx::query_scalar(
                    "with found as (
                        select id, last_used_at from app_passwords
                        where secret_hash = $1 and user_id = $2),
                     touched as (
                        update app_passwords set last_used_at = $3
                        where id in (select id from found
                            where last_used_at is null
                                or last_used_at < $3 - interval '1 minute'))
                     select id from found",
                )
                .persistent(persistent)
                .bind(hash.as_slice())
                .bind(user.as_str())
                .bind(now())
                .fetch_optional(conn)
                .await
            })
            .await?;
        Ok(found.is_some())
    }

    async fn objects(
        &self,
        owner: &UserId,
        list: ListId,
        tasks: &[TaskId],
    ) -> Result<Vec<StoredObject>, StoreError> {
        let ids: Vec<i64> = tasks.iter().map(|task| task.get()).collect();
        let rows: Vec<(i64, Option<String>, Option<String>)> = self
            .run(async |conn, persistent| {
                sqlx::query_as(
                    "select id, ical, dav_name from tasks
                     where id = any($3) and list_id = $2
                        and (ical is not null or dav_name is not null)
                        and list_id in (select list_id from list_members where user_id = $1)",
                )
                .persistent(persistent)
                .bind(owner.as_str())
                .bind(list.get())
                .bind(&ids)
                .fetch_all(conn)
                .await
            })
            .await?;
        rows.into_iter().map(stored_object).collect()
    }

    async fn tasks_named(
        &self,
        owner: &UserId,
        list: ListId,
        names: &[String],
    ) -> Result<Vec<(String, TaskId)>, StoreError> {
        let rows: Vec<(String, i64)> = self
            .run(async |conn, persistent| {
                sqlx::query_as(
                    "select coalesce(dav_name, uid), id from tasks
                     where list_id = $2 and deleted_at is null
                        and (dav_name = any($3) or (dav_name is null and uid = any($3)))
                        and list_id in (select list_id from list_members where user_id = $1)",
                )
                .persistent(persistent)
                .bind(owner.as_str())
                .bind(list.get())
                .bind(names)
                .fetch_all(conn)
                .await
            })
            .await?;
        rows.into_iter()
            .map(|(name, id)| Ok((name, task_id(id)?)))
            .collect()
    }

    async fn tasks_mentioning(
        &self,
        owner: &UserId,
        list: ListId,
        uid: &str,
    ) -> Result<Vec<TaskId>, StoreError> {
        let ids: Vec<i64> = self
            .run(async |conn, persistent| {
                sqlx::query_scalar(
                    "select id from tasks
                     where list_id = $2 and deleted_at is null and parent_id is null
                        and strpos(ical, $3) > 0
                        and list_id in (select list_id from list_members where user_id = $1)",
                )
                .persistent(persistent)
                .bind(owner.as_str())
                .bind(list.get())
                .bind(uid)
                .fetch_all(conn)
                .await
            })
            .await?;
        ids.into_iter().map(task_id).collect()
    }

    async fn collection_tags(&self, owner: &UserId) -> Result<Vec<CalendarTags>, StoreError> {
        // A token must not pass a change that may still commit below it (never past the
        // horizon of transactions still running), nor fall behind a purge.
        let rows: Vec<(i64, i64, i64, Option<String>)> = self
            .run(async |conn, persistent| {
                sqlx::query_as(
                    "select l.id, l.last_pos, least(
                        greatest(l.last_pos, (select purged_through from feed_purges)),
                        feed_horizon() - 1), l.dav_name
                     from list_members m join lists l on l.id = m.list_id
                     where m.user_id = $1 and l.deleted_at is null",
                )
                .persistent(persistent)
                .bind(owner.as_str())
                .fetch_all(conn)
                .await
            })
            .await?;
        rows.into_iter().map(calendar_tags).collect()
    }

    async fn list_named(&self, owner: &UserId, name: &str) -> Result<Option<ListId>, StoreError> {
        let id: Option<i64> = self
            .run(async |conn, persistent| {
                sqlx::query_scalar(
                    "select l.id from list_members m join lists l on l.id = m.list_id
                     where m.user_id = $1 and l.dav_name = $2 and l.deleted_at is null
                     order by l.id limit 1",
                )
                .persistent(persistent)
                .bind(owner.as_str())
                .bind(name)
                .fetch_optional(conn)
                .await
            })
            .await?;
        id.map(list_id).transpose()
    }

    async fn name_list(&self, owner: &UserId, list: ListId, name: &str) -> Result<(), StoreError> {
        self.run(async |conn, persistent| {
            sqlx::query(
                "update lists set dav_name = $3 where id = $2 and id in (
                    select list_id from list_members where user_id = $1 and role = 'owner')",
            )
            .persistent(persistent)
            .bind(owner.as_str())
            .bind(list.get())
            .bind(name)
            .execute(conn)
            .await
        })
        .await?;
        Ok(())
    }

    async fn calendar_changes(
        &self,
        owner: &UserId,
        list: ListId,
        since: ChangeCursor,
        limit: u32,
    ) -> Result<CalendarChanges, StoreError> {
        // A change of the list below its last position that cannot be read yet waits for an
        // older transaction, of any writer, to end; they are short, so a moment's wait lets a
        // client see its own write (as the change feed does). Past the wait the report is
        // still exact, only shorter.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
        let mut pause = std::time::Duration::from_millis(1);
        loop {
            let (rows, settling) = self.calendar_rows(owner, list, since, limit).await?;
            if !settling || tokio::time::Instant::now() + pause > deadline {
                return rows;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(std::time::Duration::from_millis(50));
        }
    }
}

impl PgStore {
    /// One read of a list's changes after `since`, and whether some of them may not be
    /// readable yet.
    async fn calendar_rows(
        &self,
        owner: &UserId,
        list: ListId,
        since: ChangeCursor,
        limit: u32,
    ) -> Result<(Result<CalendarChanges, StoreError>, bool), StoreError> {
        let limit = i64::from(limit);
        // One snapshot for the rows and the bounds: a repeatable-read transaction.
        let (tasks, departures, (purged_through, frontier, horizon, head)) = self
            .transaction(async |conn, persistent| {
                sqlx::query("set transaction isolation level repeatable read, read only")
                    .persistent(persistent)
                    .execute(&mut *conn)
                    .await?;
                let (horizon, frontier, purged_through, head): (i64, i64, i64, Option<i64>) =
                    sqlx::query_as(
                        "select feed_horizon(), feed_frontier(),
                            (select purged_through from feed_purges),
                            (select last_pos from lists where id = $1)",
                    )
                    .persistent(persistent)
                    .bind(list.get())
                    .fetch_one(&mut *conn)
                    .await?;
                let tasks: Vec<FeedRow> = sqlx::query_as(concat!(
                    "select ",
                    task_columns!(),
                    ", change_pos from tasks
                     where list_id = $2 and change_pos > $3 and change_pos < $4
                        and deleted_at is null
                        and list_id in (select list_id from list_members where user_id = $1)
                     order by change_pos limit $5"
                ))
                .persistent(persistent)
                .bind(owner.as_str())
                .bind(list.get())
                .bind(since.get())
                .bind(horizon)
                .bind(limit)
                .fetch_all(&mut *conn)
                .await?;
                // Gone: trashed, or moved out and not back (a task back in the list is among
                // the rows above).
                let departures: Vec<(i64, String)> = sqlx::query_as(
                    "select pos, name from (
                        select change_pos as pos, coalesce(dav_name, uid) as name from tasks
                        where list_id = $2 and change_pos > $3 and change_pos < $4
                            and deleted_at is not null
                        union all
                        select d.pos, coalesce(t.dav_name, t.uid) from task_departures d
                            join tasks t on t.id = d.task_id
                        where d.list_id = $2 and d.pos > $3 and d.pos < $4 and t.list_id <> $2
                     ) gone
                     where $2 in (select list_id from list_members where user_id = $1)
                     order by pos limit $5",
                )
                .persistent(persistent)
                .bind(owner.as_str())
                .bind(list.get())
                .bind(since.get())
                .bind(horizon)
                .bind(limit)
                .fetch_all(&mut *conn)
                .await?;
                Ok((tasks, departures, (purged_through, frontier, horizon, head)))
            })
            .await?;
        let settling = head.unwrap_or(0) >= horizon;
        let changes = servable(since, purged_through, frontier).and_then(|()| {
            // Every change of the list below the horizon has been read.
            let floor = horizon - 1;
            row::calendar_changes(tasks, departures, (since, floor), limit)
        });
        Ok((changes, settling))
    }
}
