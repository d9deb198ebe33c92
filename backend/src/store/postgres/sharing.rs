//! The statements of sharing: members, invitations, transfer, and a user's data.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgConnection;

use super::super::row::{ListRow, list_columns, task_columns};
use super::super::statements::{InvitationRequest, now};
use super::Row;
use crate::domain::list::{Accepted, MAX_LISTS_PER_USER, MAX_MEMBERS};
use crate::domain::{ListId, Role, UserId};

pub(super) type MemberRow = (String, String, DateTime<Utc>);
pub(super) type InvitationRow = (
    i64,
    i64,
    String,
    i64,
    i64,
    String,
    DateTime<Utc>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);

/// The columns of an invitation, in [`InvitationRow`]'s order.
macro_rules! invitation_columns {
    () => {
        "id, list_id, role, max_uses::bigint, uses::bigint, created_by, created_at, expires_at, \
         revoked_at"
    };
}

pub(super) async fn members(
    conn: &mut PgConnection,
    persistent: bool,
    owner: &UserId,
    list: ListId,
) -> Result<Option<Vec<MemberRow>>, sqlx::Error> {
    let rows: Vec<MemberRow> = sqlx::query_as(
        "select m.user_id, m.role, m.joined_at from list_members m join lists l on l.id = m.list_id
         where m.list_id = $2 and l.deleted_at is null
            and exists (select 1 from list_members c where c.list_id = $2 and c.user_id = $1)
         order by m.joined_at, m.user_id",
    )
    .persistent(persistent)
    .bind(owner.as_str())
    .bind(list.get())
    .fetch_all(conn)
    .await?;
    // A live list always has its owner: none at all means the caller is not a member.
    Ok((!rows.is_empty()).then_some(rows))
}

pub(super) async fn members_of(
    conn: &mut PgConnection,
    persistent: bool,
    list: ListId,
) -> Result<Vec<MemberRow>, sqlx::Error> {
    sqlx::query_as(
        "select user_id, role, joined_at from list_members where list_id = $1
         order by joined_at, user_id",
    )
    .persistent(persistent)
    .bind(list.get())
    .fetch_all(conn)
    .await
}

pub(super) async fn invite(
    conn: &mut PgConnection,
    persistent: bool,
    owner: &UserId,
    list: ListId,
    invitation: &InvitationRequest,
) -> Result<Option<InvitationRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "insert into invitations (list_id, role, token_hash, max_uses, created_by, created_at,
            expires_at)
         select $2, $3, $4, $5, $1, $6, $7 from lists l
         where l.id = $2 and l.deleted_at is null and l.inbox_of is null
            and exists (select 1 from list_members
                where list_id = $2 and user_id = $1 and role = 'owner')
         returning ",
        invitation_columns!()
    ))
    .persistent(persistent)
    .bind(owner.as_str())
    .bind(list.get())
    .bind(invitation.role.as_str())
    .bind(invitation.token_hash.as_slice())
    .bind(i32::try_from(invitation.max_uses).unwrap_or(i32::MAX))
    .bind(invitation.now)
    .bind(invitation.expires_at)
    .fetch_optional(conn)
    .await
}

pub(super) async fn invitations(
    conn: &mut PgConnection,
    persistent: bool,
    owner: &UserId,
    list: ListId,
) -> Result<Option<Vec<InvitationRow>>, sqlx::Error> {
    let owns: bool = sqlx::query_scalar(
        "select exists (select 1 from list_members m join lists l on l.id = m.list_id
            where m.list_id = $2 and m.user_id = $1 and m.role = 'owner'
                and l.deleted_at is null)",
    )
    .persistent(persistent)
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
        " from invitations where list_id = $1 order by id"
    ))
    .persistent(persistent)
    .bind(list.get())
    .fetch_all(conn)
    .await
    .map(Some)
}

pub(super) async fn revoke(
    conn: &mut PgConnection,
    persistent: bool,
    owner: &UserId,
    list: ListId,
    invitation: i64,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "update invitations set revoked_at = coalesce(revoked_at, $4)
         where id = $3 and list_id = $2
            and exists (select 1 from list_members m join lists l on l.id = m.list_id
                where m.list_id = $2 and m.user_id = $1 and m.role = 'owner'
                    and l.deleted_at is null)",
    )
    .persistent(persistent)
    .bind(owner.as_str())
    .bind(list.get())
    .bind(invitation)
    .bind(now())
    .execute(conn)
    .await?;
    Ok(result.rows_affected() > 0)
}

/// Gives every task of `list` a new feed position, so that a member who just joined finds
/// them all after their cursor.
pub(super) async fn touch_tasks(
    conn: &mut PgConnection,
    persistent: bool,
    list: ListId,
) -> Result<(), sqlx::Error> {
    sqlx::query("update tasks set change_pos = feed_position() where list_id = $1")
        .persistent(persistent)
        .bind(list.get())
        .execute(&mut *conn)
        .await?;
    sqlx::query("update lists set last_pos = greatest(last_pos, feed_position()) where id = $1")
        .persistent(persistent)
        .bind(list.get())
        .execute(conn)
        .await?;
    Ok(())
}

/// `conn` must be in a transaction.
pub(super) async fn accept(
    conn: &mut PgConnection,
    persistent: bool,
    owner: &UserId,
    token_hash: &[u8; 32],
) -> Result<Accepted, sqlx::Error> {
    let now = now();
    let found: Option<(i64, i64, String, bool)> = sqlx::query_as(
        "select i.id, i.list_id, i.role,
            i.revoked_at is null and i.expires_at > $2 and i.uses < i.max_uses
         from invitations i join lists l on l.id = i.list_id
         where i.token_hash = $1 and l.deleted_at is null",
    )
    .persistent(persistent)
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
        sqlx::query_scalar("select role from list_members where list_id = $1 and user_id = $2")
            .persistent(persistent)
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
            where user_id = $1 and list_id = $2 and task_id is null
                and lost_at >= (select created_at from invitations where id = $3))",
    )
    .persistent(persistent)
    .bind(owner.as_str())
    .bind(list)
    .bind(invitation)
    .fetch_one(&mut *conn)
    .await?;
    if !usable || lost_since {
        return Ok(Accepted::Unknown);
    }
    // The list's tasks, then its row (the lock order of every writer): accepts of one list
    // queue here, so the count below holds, and the touch of its tasks below waits for no
    // writer that waits for it.
    sqlx::query("select id from tasks where list_id = $1 order by id for update")
        .persistent(persistent)
        .bind(list)
        .execute(&mut *conn)
        .await?;
    let members: Option<i32> = sqlx::query_scalar(
        "select member_count from lists where id = $1 and deleted_at is null for update",
    )
    .persistent(persistent)
    .bind(list)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(members) = members else {
        return Ok(Accepted::Unknown);
    };
    // Read again under the lock: another accept may have used the last use.
    let (invitation, role, usable): (i64, String, bool) = match sqlx::query_as(
        "select id, role, revoked_at is null and expires_at > $2 and uses < max_uses
         from invitations where token_hash = $1 for update",
    )
    .persistent(persistent)
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
        sqlx::query_scalar("select role from list_members where list_id = $1 and user_id = $2")
            .persistent(persistent)
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
    if i64::from(members) >= MAX_MEMBERS {
        return Ok(Accepted::ListFull);
    }
    // One user's joins and list creations queue here (the lock `insert_list` takes), so the
    // limit holds when they race; taken last, after every row lock, so it closes no cycle.
    sqlx::query("select pg_advisory_xact_lock(hashtext('lists'), hashtext($1))")
        .persistent(persistent)
        .bind(owner.as_str())
        .execute(&mut *conn)
        .await?;
    let lists: i64 = sqlx::query_scalar("select count(*) from list_members where user_id = $1")
        .persistent(persistent)
        .bind(owner.as_str())
        .fetch_one(&mut *conn)
        .await?;
    if lists >= MAX_LISTS_PER_USER {
        return Ok(Accepted::TooManyLists);
    }
    sqlx::query(
        "insert into list_members (list_id, user_id, role, position, joined_at, joined_pos,
            change_pos)
         values ($1, $2, $3, list_position_after($2), $4, 0, 0)",
    )
    .persistent(persistent)
    .bind(list)
    .bind(owner.as_str())
    .bind(&role)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    sqlx::query("update invitations set uses = uses + 1 where id = $1")
        .persistent(persistent)
        .bind(invitation)
        .execute(&mut *conn)
        .await?;
    touch_tasks(conn, persistent, list_id).await?;
    Ok(Accepted::Joined(list_id))
}

pub(super) async fn change_role(
    conn: &mut PgConnection,
    persistent: bool,
    owner: &UserId,
    list: ListId,
    member: &UserId,
    role: Role,
) -> Result<Option<MemberRow>, sqlx::Error> {
    sqlx::query_as(
        "update list_members set role = $4
         where list_id = $2 and user_id = $3 and role <> 'owner'
            and exists (select 1 from list_members o join lists l on l.id = o.list_id
                where o.list_id = $2 and o.user_id = $1 and o.role = 'owner'
                    and l.deleted_at is null)
         returning user_id, role, joined_at",
    )
    .persistent(persistent)
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
    conn: &mut PgConnection,
    persistent: bool,
    owner: &UserId,
    list: ListId,
    member: &UserId,
) -> Result<bool, sqlx::Error> {
    // The member's tasks first, in id order, then the list's row (the member count): the
    // lock order of every writer. Only when the caller may remove them, so that a stranger
    // holds up nobody.
    sqlx::query(
        "select t.id from tasks t
         where t.list_id = $2 and t.assignee_id = $3
            and exists (select 1 from list_members m join lists l on l.id = m.list_id
                where m.list_id = $2 and m.user_id = $1 and l.deleted_at is null
                    and (m.role = 'owner' or $3 = $1))
         order by t.id for update of t",
    )
    .persistent(persistent)
    .bind(owner.as_str())
    .bind(list.get())
    .bind(member.as_str())
    .execute(&mut *conn)
    .await?;
    let result = sqlx::query(
        "delete from list_members
         where list_id = $2 and user_id = $3 and role <> 'owner'
            and exists (select 1 from lists where id = $2 and deleted_at is null)
            and ($3 = $1 or exists (select 1 from list_members o
                where o.list_id = $2 and o.user_id = $1 and o.role = 'owner'))",
    )
    .persistent(persistent)
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
            updated_at = greatest(now(), updated_at + interval '1 microsecond')
         where list_id = $1 and assignee_id = $2",
    )
    .persistent(persistent)
    .bind(list.get())
    .bind(member.as_str())
    .execute(conn)
    .await?;
    Ok(true)
}

/// `conn` must be in a transaction.
pub(super) async fn transfer(
    conn: &mut PgConnection,
    persistent: bool,
    owner: &UserId,
    list: ListId,
    member: &UserId,
) -> Result<bool, sqlx::Error> {
    // The list's row first, as every change of its members.
    let owns: Option<i64> = sqlx::query_scalar(
        "select l.id from lists l join list_members m on m.list_id = l.id
         where l.id = $2 and l.deleted_at is null and m.user_id = $1 and m.role = 'owner'
         for update of l",
    )
    .persistent(persistent)
    .bind(owner.as_str())
    .bind(list.get())
    .fetch_optional(&mut *conn)
    .await?;
    let is_member: bool = sqlx::query_scalar(
        "select exists (select 1 from list_members where list_id = $1 and user_id = $2)",
    )
    .persistent(persistent)
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
        sqlx::query("update list_members set role = $3 where list_id = $1 and user_id = $2")
            .persistent(persistent)
            .bind(list.get())
            .bind(user.as_str())
            .bind(role)
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query(
        "update lists set owner_id = $2, version = version + 1,
            updated_at = greatest($3, updated_at + interval '1 microsecond')
         where id = $1",
    )
    .persistent(persistent)
    .bind(list.get())
    .bind(member.as_str())
    .bind(now())
    .execute(conn)
    .await?;
    Ok(true)
}

pub(super) async fn every_list(
    conn: &mut PgConnection,
    persistent: bool,
    owner: &UserId,
) -> Result<Vec<ListRow<DateTime<Utc>>>, sqlx::Error> {
    sqlx::query_as(concat!(
        "select ",
        list_columns!(),
        " from list_members m join lists l on l.id = m.list_id
         where m.user_id = $1 order by m.position"
    ))
    .persistent(persistent)
    .bind(owner.as_str())
    .fetch_all(conn)
    .await
}

pub(super) async fn owned_and_created_tasks(
    conn: &mut PgConnection,
    persistent: bool,
    owner: &UserId,
) -> Result<Vec<Row>, sqlx::Error> {
    sqlx::query_as(concat!(
        "select ",
        task_columns!(),
        " from tasks
         where list_id in (select list_id from list_members where user_id = $1 and role = 'owner')
            or (user_id = $1 and list_id in (select list_id from list_members where user_id = $1))
         order by list_id, position"
    ))
    .persistent(persistent)
    .bind(owner.as_str())
    .fetch_all(conn)
    .await
}

/// `conn` must be in a transaction.
pub(super) async fn erase(
    conn: &mut PgConnection,
    persistent: bool,
    owner: &UserId,
) -> Result<(), sqlx::Error> {
    let owned: Vec<i64> = sqlx::query_scalar(
        "select list_id from list_members where user_id = $1 and role = 'owner'",
    )
    .persistent(persistent)
    .bind(owner.as_str())
    .fetch_all(&mut *conn)
    .await?;
    // Tasks first, then lists: the lock order of every writer.
    sqlx::query("select id from tasks where list_id = any($1) order by id for update")
        .persistent(persistent)
        .bind(&owned)
        .execute(&mut *conn)
        .await?;
    sqlx::query("select id from lists where id = any($1) order by id for update")
        .persistent(persistent)
        .bind(&owned)
        .execute(&mut *conn)
        .await?;
    let statements = [
        // Members of the user's lists lose them: their devices drop the lists and the tasks.
        "delete from list_members where user_id <> $1 and list_id = any($2)",
        "delete from task_departures where list_id = any($2)",
        "delete from tasks where list_id = any($2)",
        // Their assignments elsewhere end (a change of each task, which its members see).
        "update tasks set assignee_id = null, version = version + 1,
            updated_at = greatest(now(), updated_at + interval '1 microsecond')
         where assignee_id = $1 and $2::bigint[] is not null",
        "delete from list_members where user_id = $1 and $2::bigint[] is not null",
        "delete from lists where id = any($2)",
        "delete from invitations where created_by = $1 and $2::bigint[] is not null",
        "delete from feed_losses where user_id = $1 and $2::bigint[] is not null",
        "delete from idempotency_keys where user_id = $1 and $2::bigint[] is not null",
        "delete from app_passwords where user_id = $1 and $2::bigint[] is not null",
    ];
    for statement in statements {
        sqlx::query(statement)
            .persistent(persistent)
            .bind(owner.as_str())
            .bind(&owned)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// A member row as the domain has it.
pub(super) fn member(row: MemberRow) -> Result<crate::domain::list::Member, sqlx::Error> {
    let (user_id, role, joined_at) = row;
    Ok(crate::domain::list::Member {
        user_id: UserId::parse(user_id).map_err(|error| sqlx::Error::Decode(error.into()))?,
        role: Role::parse(&role).ok_or_else(|| sqlx::Error::Decode(role.into()))?,
        joined_at,
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
        created_at,
        expires_at,
        revoked_at,
    })
}
