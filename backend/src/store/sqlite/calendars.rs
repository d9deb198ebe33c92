//! Calendar clients' part of the SQLite store: app passwords, the objects they wrote, and a
//! list's changes by sync token.

use async_trait::async_trait;

use super::super::calendars::{
    calendar_tags, list_id, missing, new_secret, secret_hash, servable, stored_object, task_id,
    too_many,
};
use super::super::row::{self, task_columns};
use super::super::statements::now;
use super::sharing::time;
use super::{FeedRow, SqliteStore, db_error, to_micros};
use crate::domain::calendar::{
    AppPassword, CalendarChanges, CalendarTags, MAX_APP_PASSWORDS, NewAppPassword, StoredObject,
};
use crate::domain::{ChangeCursor, ListId, TaskId, UserId};
use crate::store::{Calendars, StoreError};

type AppPasswordRow = (i64, String, i64, Option<i64>);

fn app_password(
    (id, name, created_at, last_used_at): AppPasswordRow,
) -> Result<AppPassword, StoreError> {
    Ok(AppPassword {
        id,
        name,
        created_at: time(created_at).map_err(db_error)?,
        last_used_at: last_used_at.map(time).transpose().map_err(db_error)?,
    })
}

#[async_trait]
impl Calendars for SqliteStore {
    async fn create_app_password(
        &self,
        owner: &UserId,
        name: &str,
    ) -> Result<NewAppPassword, StoreError> {
        let (secret, hash) = new_secret()?;
        let row: Option<AppPasswordRow> = sqlx::query_as(
            "insert into app_passwords (user_id, name, secret_hash, created_at)
             select ?1, ?2, ?3, ?4
             where (select count(*) from app_passwords where user_id = ?1) < ?5
             returning id, name, created_at, last_used_at",
        )
        .bind(owner.as_str())
        .bind(name)
        .bind(hash.as_slice())
        .bind(to_micros(now()))
        .bind(MAX_APP_PASSWORDS)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(NewAppPassword {
            app_password: app_password(row.ok_or_else(too_many)?)?,
            username: owner.as_str().to_owned(),
            password: secret,
        })
    }

    async fn app_passwords(&self, owner: &UserId) -> Result<Vec<AppPassword>, StoreError> {
        let rows: Vec<AppPasswordRow> = sqlx::query_as(
            "select id, name, created_at, last_used_at from app_passwords
             where user_id = ?1 order by id",
        )
        .bind(owner.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.into_iter().map(app_password).collect()
    }

    async fn revoke_app_password(&self, owner: &UserId, id: i64) -> Result<(), StoreError> {
        let deleted = sqlx::query("delete from app_passwords where id = ?1 and user_id = ?2")
            .bind(id)
            .bind(owner.as_str())
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        match deleted.rows_affected() {
            0 => Err(missing()),
            _ => Ok(()),
        }
    }

    async fn check_app_password(&self, user: &UserId, secret: &str) -> Result<bool, StoreError> {
        let hash = secret_hash(secret);
        let found: Option<(i64, Option<i64>)> = sqlx::query_as(
            "select id, last_used_at from app_passwords where secret_hash = ?1 and user_id = ?2",
        )
        .bind(hash.as_slice())
        .bind(user.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        let Some((id, last_used_at)) = found else {
            return Ok(false);
        };
        // Its use is written at most once a minute: one writer at a time, and a calendar
        // client's every request would otherwise be a write.
        let now = to_micros(now());
        if last_used_at.is_none_or(|last| last < now - 60_000_000) {
            sqlx::query("update app_passwords set last_used_at = ?2 where id = ?1")
                .bind(id)
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
        }
        Ok(true)
    }

    async fn objects(
        &self,
        owner: &UserId,
        list: ListId,
        tasks: &[TaskId],
    ) -> Result<Vec<StoredObject>, StoreError> {
        let ids = serde_json::to_string(&tasks.iter().map(|task| task.get()).collect::<Vec<_>>())
            .map_err(|error| StoreError::Other(error.into()))?;
        let rows: Vec<(i64, Option<String>, Option<String>)> = sqlx::query_as(
            "select id, ical, dav_name from tasks
             where id in (select value from json_each(?3)) and list_id = ?2
                and (ical is not null or dav_name is not null)
                and list_id in (select list_id from list_members where user_id = ?1)",
        )
        .bind(owner.as_str())
        .bind(list.get())
        .bind(ids)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.into_iter().map(stored_object).collect()
    }

    async fn tasks_named(
        &self,
        owner: &UserId,
        list: ListId,
        names: &[String],
    ) -> Result<Vec<(String, TaskId)>, StoreError> {
        let names =
            serde_json::to_string(names).map_err(|error| StoreError::Other(error.into()))?;
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "select coalesce(dav_name, uid), id from tasks
             where list_id = ?2 and deleted_at is null
                and (dav_name in (select value from json_each(?3))
                    or (dav_name is null and uid in (select value from json_each(?3))))
                and list_id in (select list_id from list_members where user_id = ?1)",
        )
        .bind(owner.as_str())
        .bind(list.get())
        .bind(names)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
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
        let ids: Vec<i64> = sqlx::query_scalar(
            "select id from tasks
             where list_id = ?2 and deleted_at is null and parent_id is null
                and instr(ical, ?3) > 0
                and list_id in (select list_id from list_members where user_id = ?1)",
        )
        .bind(owner.as_str())
        .bind(list.get())
        .bind(uid)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        ids.into_iter().map(task_id).collect()
    }

    async fn collection_tags(&self, owner: &UserId) -> Result<Vec<CalendarTags>, StoreError> {
        // One writer at a time: every position counted has committed. The token must not
        // fall behind a purge.
        let rows: Vec<(i64, i64, i64, Option<String>)> = sqlx::query_as(
            "select l.id, l.last_pos, max(l.last_pos, (select purged_through from feed_clock)),
                l.dav_name
             from list_members m join lists l on l.id = m.list_id
             where m.user_id = ?1 and l.deleted_at is null",
        )
        .bind(owner.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.into_iter().map(calendar_tags).collect()
    }

    async fn list_named(&self, owner: &UserId, name: &str) -> Result<Option<ListId>, StoreError> {
        let id: Option<i64> = sqlx::query_scalar(
            "select l.id from list_members m join lists l on l.id = m.list_id
             where m.user_id = ?1 and l.dav_name = ?2 and l.deleted_at is null
             order by l.id limit 1",
        )
        .bind(owner.as_str())
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        id.map(list_id).transpose()
    }

    async fn name_list(&self, owner: &UserId, list: ListId, name: &str) -> Result<(), StoreError> {
        sqlx::query(
            "update lists set dav_name = ?3 where id = ?2 and id in (
                select list_id from list_members where user_id = ?1 and role = 'owner')",
        )
        .bind(owner.as_str())
        .bind(list.get())
        .bind(name)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn calendar_changes(
        &self,
        owner: &UserId,
        list: ListId,
        since: ChangeCursor,
        limit: u32,
    ) -> Result<CalendarChanges, StoreError> {
        let limit = i64::from(limit);
        // One read transaction: one snapshot for the rows and the bounds.
        let mut transaction = self.pool.begin().await.map_err(db_error)?;
        let read = async {
            let (last, purged_through): (i64, i64) =
                sqlx::query_as("select last, purged_through from feed_clock")
                    .fetch_one(&mut *transaction)
                    .await?;
            let tasks: Vec<FeedRow> = sqlx::query_as(concat!(
                "select ",
                task_columns!(),
                ", change_pos from tasks
                 where list_id = ?2 and change_pos > ?3 and deleted_at is null
                    and list_id in (select list_id from list_members where user_id = ?1)
                 order by change_pos limit ?4"
            ))
            .bind(owner.as_str())
            .bind(list.get())
            .bind(since.get())
            .bind(limit)
            .fetch_all(&mut *transaction)
            .await?;
            // Gone: trashed, or moved out and not back (a task back in the list is among
            // the rows above).
            let departures: Vec<(i64, String)> = sqlx::query_as(
                "select pos, name from (
                    select change_pos as pos, coalesce(dav_name, uid) as name from tasks
                    where list_id = ?2 and change_pos > ?3 and deleted_at is not null
                    union all
                    select d.pos, coalesce(t.dav_name, t.uid) from task_departures d
                        join tasks t on t.id = d.task_id
                    where d.list_id = ?2 and d.pos > ?3 and t.list_id <> ?2
                 )
                 where ?2 in (select list_id from list_members where user_id = ?1)
                 order by pos limit ?4",
            )
            .bind(owner.as_str())
            .bind(list.get())
            .bind(since.get())
            .bind(limit)
            .fetch_all(&mut *transaction)
            .await?;
            Ok::<_, sqlx::Error>((tasks, departures, last, purged_through))
        }
        .await
        .map_err(db_error)?;
        transaction.commit().await.map_err(db_error)?;
        let (tasks, departures, last, purged_through) = read;
        servable(since, purged_through, last + 1)?;
        // Every change of the list so far has been read.
        let floor = last;
        row::calendar_changes(tasks, departures, (since, floor), limit)
    }
}
