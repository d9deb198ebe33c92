//! The statements of sharing: members, invitations, transfer, and a user's data (see the
//! PostgreSQL store; SQLite's one writer stands in for its row locks).

use sqlx::sqlite::SqliteConnection;

use super::super::row::{ListRow, list_columns, task_columns};
use super::super::statements::{InvitationRequest, now};
use super::{Row, next_list_position, next_position, to_micros};
use crate::domain::list::{Accepted, MAX_LISTS_PER_USER, MAX_MEMBERS};
use crate::domain::{ListId, Role, UserId};

pub(super) type MemberRow = (String, String, i64);
pub(super) type InvitationRow = (i64, i64, String, i64, i64, String, i64, i64, Option<i64>);

/// The columns of an invitation, in [`InvitationRow`]'s order.
macro_rules! invitation_columns {
    () => {
        "id, list_id, role, max_uses, uses, created_by, created_at, expires_at, \
         revoked_at"
    };
}

pub(super) async fn members(
    conn: &mut SqliteConnection,
    owner: &UserId,
    list: ListId,
) -> Result<Option<Vec<MemberRow>>, sqlx::Error> {
    let rows: Vec<MemberRow> = sqlx::query_as(
        "select m.user_id, m.role, m.joined_at from list_members m join lists l on l.id = m.list_id
         where m.list_id = ?2 and l.deleted_at is null
            and exists (select 1 from list_members c where c.list_id = ?2 and c.user_id = ?1)
         order by m.joined_at, m.user_id",
    )
    .bind(owner.as_str())
    .bind(list.get())
    .fetch_all(conn)
    .await?;
    // A live list always has its owner: none at all means the caller is not a member.
    Ok((!rows.is_empty()).then_some(rows))
}

pub(super) async fn members_of(
    conn: &mut SqliteConnection,
    list: ListId,
) -> Result<Vec<MemberRow>, sqlx::Error> {
    sqlx::query_as(
        "select user_id, role, joined_at from list_members where list_id = ?1
         order by joined_at, user_id",
    )
    .bind(list.get())
    .fetch_all(conn)
    .await
}

pub(super) async fn invite(
    conn: &mut SqliteConnection,
    owner: &UserId,
    list: ListId,
    invitation: &InvitationRequest,
) -> Result<Option<InvitationRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "insert into invitations (list_id, role, token_hash, max_uses, created_by, created_at,
            expires_at)
         select ?2, ?3, ?4, ?5, ?1, ?6, ?7 from lists l
         where l.id = ?2 and l.deleted_at is null and l.inbox_of is null
            and exists (select 1 from list_members
                where list_id = ?2 and user_id = ?1 and role = 'owner')
         returning ",
        invitation_columns!()
    ))
    .bind(owner.as_str())
    .bind(list.get())
    .bind(invitation.role.as_str())
    .bind(invitation.token_hash.as_slice())
    .bind(invitation.max_uses)
    .bind(to_micros(invitation.now))
    .bind(to_micros(invitation.expires_at))
    .fetch_optional(conn)
    .await
}

pub(super) async fn invitations(
    conn: &mut SqliteConnection,
    owner: &UserId,
    list: ListId,
) -> Result<Option<Vec<InvitationRow>>, sqlx::Error> {
    let owns: bool = sqlx::query_scalar(
        "select exists (select 1 from list_members m join lists l on l.id = m.list_id
            where m.list_id = ?2 and m.user_id = ?1 and m.role = 'owner'
                and l.deleted_at is null)",
    )
    .bind(owner.as_str())
    .bind(list.get())
    .fetch_one(&mut *conn)
    .await?;
    if !owns {
        return Ok(None);
    }
    sqlx::query_as(concat!(
        "select ",
        invitation_columns!(),
        " from invitations where list_id = ?1 order by id"
    ))
    .bind(list.get())
    .fetch_all(conn)
    .await
    .map(Some)
}

pub(super) async fn revoke(
    conn: &mut SqliteConnection,
    owner: &UserId,
    list: ListId,
    invitation: i64,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "update invitations set revoked_at = coalesce(revoked_at, ?4)
         where id = ?3 and list_id = ?2
            and exists (select 1 from list_members m join lists l on l.id = m.list_id
                where m.list_id = ?2 and m.user_id = ?1 and m.role = 'owner'
                    and l.deleted_at is null)",
    )
    .bind(owner.as_str())
    .bind(list.get())
    .bind(invitation)
    .bind(to_micros(now()))
    .execute(conn)
    .await?;
    Ok(result.rows_affected() > 0)
}

/// Gives every task of `list` a new feed position, so that a member who just joined finds
/// them all after their cursor.
pub(super) async fn touch_tasks(
    conn: &mut SqliteConnection,
    list: ListId,
) -> Result<(), sqlx::Error> {
    let ids: Vec<i64> = sqlx::query_scalar("select id from tasks where list_id = ?1 order by id")
        .bind(list.get())
        .fetch_all(&mut *conn)
        .await?;
    for id in ids {
        let pos = next_position(&mut *conn).await?;
        sqlx::query("update tasks set change_pos = ?2 where id = ?1")
            .bind(id)
            .bind(pos)
            .execute(&mut *conn)
            .await?;
    }
    let pos = next_position(&mut *conn).await?;
    sqlx::query("update lists set last_pos = max(last_pos, ?2) where id = ?1")
        .bind(list.get())
        .bind(pos)
        .execute(conn)
        .await?;
    Ok(())
}

/// `conn` must be in a transaction.
pub(super) async fn accept(
    conn: &mut SqliteConnection,
    owner: &UserId,
    token_hash: &[u8; 32],
) -> Result<Accepted, sqlx::Error> {
    let now = to_micros(now());
    let found: Option<(i64, i64, String, bool)> = sqlx::query_as(
        "select i.id, i.list_id, i.role,
            i.revoked_at is null and i.expires_at > ?2 and i.uses < i.max_uses
         from invitations i join lists l on l.id = i.list_id
         where i.token_hash = ?1 and l.deleted_at is null",
    )
    .bind(token_hash.as_slice())
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((invitation, list, _, usable)) = found else {
        return Ok(Accepted::Unknown);
    };
    // Who the caller is to the list, and whether the token still lets them in, before any
    // lock: an unusable token locks nothing.
    let current: Option<String> =
        sqlx::query_scalar("select role from list_members where list_id = ?1 and user_id = ?2")
            .bind(list)
            .bind(owner.as_str())
            .fetch_optional(&mut *conn)
            .await?;
    let list_id = ListId::try_from(list).map_err(|error| sqlx::Error::Decode(error.into()))?;
    match current.as_deref() {
        Some("owner") => return Ok(Accepted::Owner),
        Some(_) => return Ok(Accepted::AlreadyMember(list_id)),
        None => {}
    }
    // Removed (or gone) since the invitation was made: it no longer lets them back in; the
    // owner invites them anew if they mean to.
    let lost_since: bool = sqlx::query_scalar(
        "select exists (select 1 from feed_losses
            where user_id = ?1 and list_id = ?2 and task_id is null
                and lost_at >= (select created_at from invitations where id = ?3))",
    )
    .bind(owner.as_str())
    .bind(list)
    .bind(invitation)
    .fetch_one(&mut *conn)
    .await?;
    if !usable || lost_since {
        return Ok(Accepted::Unknown);
    }
    // The list's row first: accepts of one list queue here, so the count below holds.
    let members: Option<i64> =
        sqlx::query_scalar("select member_count from lists where id = ?1 and deleted_at is null")
            .bind(list)
            .fetch_optional(&mut *conn)
            .await?;
    let Some(members) = members else {
        return Ok(Accepted::Unknown);
    };
    // Read again under the lock: another accept may have used the last use.
    let (invitation, role, usable): (i64, String, bool) = match sqlx::query_as(
        "select id, role, revoked_at is null and expires_at > ?2 and uses < max_uses
         from invitations where token_hash = ?1",
    )
    .bind(token_hash.as_slice())
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?
    {
        Some(row) => row,
        None => return Ok(Accepted::Unknown),
    };
    // Again under the lock: the same user accepting twice at once joins once.
    let current: Option<String> =
        sqlx::query_scalar("select role from list_members where list_id = ?1 and user_id = ?2")
            .bind(list)
            .bind(owner.as_str())
            .fetch_optional(&mut *conn)
            .await?;
    match current.as_deref() {
        Some("owner") => return Ok(Accepted::Owner),
        Some(_) => return Ok(Accepted::AlreadyMember(list_id)),
        None => {}
    }
    if !usable {
        return Ok(Accepted::Unknown);
    }
    if members >= MAX_MEMBERS {
        return Ok(Accepted::ListFull);
    }
    let lists: i64 = sqlx::query_scalar("select count(*) from list_members where user_id = ?1")
        .bind(owner.as_str())
        .fetch_one(&mut *conn)
        .await?;
    if lists >= MAX_LISTS_PER_USER {
        return Ok(Accepted::TooManyLists);
    }
    let position = next_list_position(&mut *conn, owner).await?;
    sqlx::query(
        "insert into list_members (list_id, user_id, role, position, joined_at, joined_pos,
            change_pos)
         values (?1, ?2, ?3, ?5, ?4, 0, 0)",
    )
    .bind(list)
    .bind(owner.as_str())
    .bind(&role)
    .bind(now)
    .bind(position.as_str())
    .execute(&mut *conn)
    .await?;
    sqlx::query("update invitations set uses = uses + 1 where id = ?1")
        .bind(invitation)
        .execute(&mut *conn)
        .await?;
    touch_tasks(conn, list_id).await?;
    Ok(Accepted::Joined(list_id))
}

pub(super) async fn change_role(
    conn: &mut SqliteConnection,
    owner: &UserId,
    list: ListId,
    member: &UserId,
    role: Role,
) -> Result<Option<MemberRow>, sqlx::Error> {
    sqlx::query_as(
        "update list_members set role = ?4
         where list_id = ?2 and user_id = ?3 and role <> 'owner'
            and exists (select 1 from list_members o join lists l on l.id = o.list_id
                where o.list_id = ?2 and o.user_id = ?1 and o.role = 'owner'
                    and l.deleted_at is null)
         returning user_id, role, joined_at",
    )
    .bind(owner.as_str())
    .bind(list.get())
    .bind(member.as_str())
    .bind(role.as_str())
    .fetch_optional(conn)
    .await
}

/// `conn` must be in a transaction. Whoever leaves a list (or is removed from it) is nobody's
/// assignee in it any more: those tasks lose their assignee, a change their members see.
pub(super) async fn remove(
    conn: &mut SqliteConnection,
    owner: &UserId,
    list: ListId,
    member: &UserId,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "delete from list_members
         where list_id = ?2 and user_id = ?3 and role <> 'owner'
            and exists (select 1 from lists where id = ?2 and deleted_at is null)
            and (?3 = ?1 or exists (select 1 from list_members o
                where o.list_id = ?2 and o.user_id = ?1 and o.role = 'owner'))",
    )
    .bind(owner.as_str())
    .bind(list.get())
    .bind(member.as_str())
    .execute(&mut *conn)
    .await?;
    if result.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query(
        "update tasks set assignee_id = null, version = version + 1,
            updated_at = max(?3, updated_at + 1)
         where list_id = ?1 and assignee_id = ?2",
    )
    .bind(list.get())
    .bind(member.as_str())
    .bind(to_micros(now()))
    .execute(conn)
    .await?;
    Ok(true)
}

/// `conn` must be in a transaction.
pub(super) async fn transfer(
    conn: &mut SqliteConnection,
    owner: &UserId,
    list: ListId,
    member: &UserId,
) -> Result<bool, sqlx::Error> {
    // The list's row first, as every change of its members.
    let owns: Option<i64> = sqlx::query_scalar(
        "select l.id from lists l join list_members m on m.list_id = l.id
         where l.id = ?2 and l.deleted_at is null and m.user_id = ?1 and m.role = 'owner'
         ",
    )
    .bind(owner.as_str())
    .bind(list.get())
    .fetch_optional(&mut *conn)
    .await?;
    let is_member: bool = sqlx::query_scalar(
        "select exists (select 1 from list_members where list_id = ?1 and user_id = ?2)",
    )
    .bind(list.get())
    .bind(member.as_str())
    .fetch_one(&mut *conn)
    .await?;
    if owns.is_none() || !is_member {
        return Ok(false);
    }
    if member == owner {
        return Ok(true);
    }
    // The old owner steps down first: a list never has two.
    for (user, role) in [(owner, "editor"), (member, "owner")] {
        sqlx::query("update list_members set role = ?3 where list_id = ?1 and user_id = ?2")
            .bind(list.get())
            .bind(user.as_str())
            .bind(role)
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query(
        "update lists set owner_id = ?2, version = version + 1,
            updated_at = max(?3, updated_at + 1)
         where id = ?1",
    )
    .bind(list.get())
    .bind(member.as_str())
    .bind(to_micros(now()))
    .execute(conn)
    .await?;
    Ok(true)
}

pub(super) async fn every_list(
    conn: &mut SqliteConnection,
    owner: &UserId,
) -> Result<Vec<ListRow<i64>>, sqlx::Error> {
    sqlx::query_as(concat!(
        "select ",
        list_columns!(),
        " from list_members m join lists l on l.id = m.list_id
         where m.user_id = ?1 order by m.position"
    ))
    .bind(owner.as_str())
    .fetch_all(conn)
    .await
}

pub(super) async fn owned_and_created_tasks(
    conn: &mut SqliteConnection,
    owner: &UserId,
) -> Result<Vec<Row>, sqlx::Error> {
    sqlx::query_as(concat!(
        "select ",
        task_columns!(),
        " from tasks
         where list_id in (select list_id from list_members where user_id = ?1 and role = 'owner')
            or (user_id = ?1 and list_id in (select list_id from list_members where user_id = ?1))
         order by list_id, position"
    ))
    .bind(owner.as_str())
    .fetch_all(conn)
    .await
}

/// `conn` must be in a transaction.
pub(super) async fn erase(conn: &mut SqliteConnection, owner: &UserId) -> Result<(), sqlx::Error> {
    let owned = "(select list_id from list_members where user_id = ?1 and role = 'owner')";
    let statements = [
        // Members of the user's lists lose them: their devices drop the lists and the tasks.
        format!("delete from list_members where user_id <> ?1 and list_id in {owned}"),
        format!("delete from task_departures where list_id in {owned}"),
        format!("delete from tasks where list_id in {owned}"),
        // Their assignments elsewhere end (a change of each task, which its members see).
        "update tasks set assignee_id = null, version = version + 1,
            updated_at = max(?2, updated_at + 1)
         where assignee_id = ?1"
            .to_owned(),
        format!(
            "create temporary table erased_lists as {}",
            owned.trim_start_matches('(').trim_end_matches(')')
        ),
        "delete from list_members where user_id = ?1".to_owned(),
        "delete from lists where id in (select list_id from erased_lists)".to_owned(),
        "drop table erased_lists".to_owned(),
        "delete from invitations where created_by = ?1".to_owned(),
        "delete from feed_losses where user_id = ?1".to_owned(),
        "delete from idempotency_keys where user_id = ?1".to_owned(),
        "delete from app_passwords where user_id = ?1".to_owned(),
    ];
    let now = to_micros(now());
    for statement in statements {
        // Only the statement that names ?2 takes the time.
        let takes_time = statement.contains("?2");
        let query = sqlx::query(sqlx::AssertSqlSafe(statement)).bind(owner.as_str());
        let query = match takes_time {
            true => query.bind(now),
            false => query,
        };
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// A member row as the domain has it.
pub(super) fn member(row: MemberRow) -> Result<crate::domain::list::Member, sqlx::Error> {
    let (user_id, role, joined_at) = row;
    Ok(crate::domain::list::Member {
        user_id: UserId::parse(user_id).map_err(|error| sqlx::Error::Decode(error.into()))?,
        role: Role::parse(&role).ok_or_else(|| sqlx::Error::Decode(role.into()))?,
        joined_at: time(joined_at)?,
    })
}

/// An invitation row as the domain has it.
pub(super) fn invitation(
    row: InvitationRow,
) -> Result<crate::domain::list::Invitation, sqlx::Error> {
    let (id, list_id, role, max_uses, uses, created_by, created_at, expires_at, revoked_at) = row;
    let decode = |what: String| sqlx::Error::Decode(what.into());
    Ok(crate::domain::list::Invitation {
        id,
        list_id: ListId::try_from(list_id).map_err(|_| decode(format!("list id {list_id}")))?,
        role: Role::parse(&role).ok_or_else(|| decode(role.clone()))?,
        max_uses,
        uses,
        created_by: UserId::parse(created_by).map_err(|error| decode(error.to_string()))?,
        created_at: time(created_at)?,
        expires_at: time(expires_at)?,
        revoked_at: revoked_at.map(time).transpose()?,
    })
}

/// A stored time (integer microseconds since the Unix epoch).
pub(super) fn time(micros: i64) -> Result<chrono::DateTime<chrono::Utc>, sqlx::Error> {
    chrono::DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| sqlx::Error::Decode(format!("timestamp {micros}").into()))
}
