-- Lists, their members, and a change feed that follows what each user can read.
--
-- Every change now takes a feed position, unique across the database: 2^40, plus the id of the
-- transaction that made it (pg_current_xact_id) times 2^20, plus the change's number within
-- its transaction. A reader returns only positions below the oldest transaction still running
-- (its snapshot's xmin), so nothing can commit later at a position it has passed: a user's
-- feed, which merges many lists, stays in commit order without a counter that every writer
-- of every list would have to queue on. Each list's row is still locked by its writers until
-- they commit, as each user's counter row was: it keeps the list's task count exact.
--
-- Positions below 2^39 are the previous per-user counters: a cursor from before this
-- migration is told to start again (410). The changes that were already there take
-- positions from 2^39 up, below any transaction's.
--
-- The upgrade is six migrations, each its own transaction, so that none holds a lock that
-- stops readers for longer than a catalogue change: this one adds the tables and the columns
-- (without defaults: no rewrite) and swaps the triggers; the next fills the columns (row
-- locks only: readers go on); then the checks are added, validated (readers and writers go
-- on), the indexes built (readers go on), and the columns made not null from the validated
-- checks (no scan). A task written meanwhile by an instance of the previous release lands in
-- its creator's Inbox, made by the trigger if need be.

create function feed_position() returns bigint language plpgsql volatile as $$
declare
    n bigint := coalesce(nullif(current_setting('todo.feed_changes', true), ''), '0')::bigint;
begin
    if n >= 1048576 then
        raise exception 'more than 2^20 changes in one transaction';
    end if;
    perform set_config('todo.feed_changes', (n + 1)::text, true);
    return 1099511627776 + pg_current_xact_id()::text::bigint * 1048576 + n;
end
$$;

-- Positions below this may still commit; the feed stops short of it.
create function feed_horizon() returns bigint language sql stable as $$
    select 1099511627776 + pg_snapshot_xmin(pg_current_snapshot())::text::bigint * 1048576
$$;

-- No position handed out so far reaches this.
create function feed_frontier() returns bigint language sql stable as $$
    select 1099511627776 + pg_snapshot_xmax(pg_current_snapshot())::text::bigint * 1048576
$$;

-- Positions for the changes already there, from 2^39 up (dropped when the upgrade is done).
create sequence migrated_positions start 549755813888;

create table lists (
    id           bigint generated always as identity primary key,
    owner_id     text        not null check (char_length(owner_id) between 1 and 255),
    -- The user whose Inbox this is; null for every other list. Unique: one Inbox per user,
    -- however many instances race to make it.
    inbox_of     text        unique,
    name         text        not null check (char_length(name) between 1 and 100),
    color        text        check (color ~ '^#[0-9a-f]{6}$'),
    version      bigint      not null default 1 check (version >= 1),
    member_count integer     not null default 0 check (member_count between 0 and 50),
    live_tasks   bigint      not null default 0 check (live_tasks >= 0),
    -- The feed position of the list's own last change, and of the last change of anything
    -- in it (a task, a member): what a live stream polls.
    change_pos   bigint      not null,
    last_pos     bigint      not null,
    created_at   timestamptz not null,
    updated_at   timestamptz not null,
    deleted_at   timestamptz
);

create index lists_deleted_at_idx on lists (deleted_at) where deleted_at is not null;

create table list_members (
    list_id    bigint      not null references lists (id) on delete cascade,
    user_id    text        not null check (char_length(user_id) between 1 and 255),
    role       text        not null check (role in ('owner', 'editor', 'viewer')),
    -- The member's own order of their lists.
    position   text        collate "C" not null,
    joined_at  timestamptz not null,
    -- When the member joined, and when their view of the list last changed (role, order).
    joined_pos bigint      not null,
    change_pos bigint      not null,
    primary key (list_id, user_id)
);

-- "The lists this user can read", with the role: the access check of every query.
create unique index list_members_user_id_idx on list_members (user_id, list_id) include (role);
create unique index list_members_user_id_position_idx on list_members (user_id, position);
-- Exactly one owner per list.
create unique index list_members_owner_idx on list_members (list_id) where role = 'owner';

-- What a user lost with a list they left or were removed from: the list (task_id null) and
-- each of its tasks, every one at a position of its own, so that their devices drop them.
create table feed_losses (
    user_id text        not null,
    pos     bigint      not null,
    list_id bigint      not null,
    task_id bigint,
    lost_at timestamptz not null,
    primary key (user_id, pos)
);

create index feed_losses_lost_at_idx on feed_losses (lost_at);

-- Tasks that moved out of a list: its members who cannot read the new list see a delete.
create table task_departures (
    list_id     bigint      not null,
    task_id     bigint      not null,
    pos         bigint      not null,
    departed_at timestamptz not null,
    primary key (list_id, task_id)
);

create index task_departures_departed_at_idx on task_departures (departed_at);

-- Invitations to a list: only a hash of the secret is kept.
create table invitations (
    id         bigint generated always as identity primary key,
    list_id    bigint      not null references lists (id) on delete cascade,
    role       text        not null check (role in ('editor', 'viewer')),
    token_hash bytea       not null unique check (length(token_hash) = 32),
    max_uses   integer     not null check (max_uses between 1 and 50),
    uses       integer     not null default 0 check (uses >= 0 and uses <= max_uses),
    created_by text        not null,
    created_at timestamptz not null,
    expires_at timestamptz not null,
    revoked_at timestamptz
);

create index invitations_list_id_idx on invitations (list_id);

-- The newest feed position a purge has removed (a tombstone, a departure, a loss): a cursor
-- before it may have missed a change and must start again.
create table feed_purges (
    one            boolean primary key default true check (one),
    purged_through bigint  not null default 0 check (purged_through >= 0)
);

insert into feed_purges default values;

-- The first key after `last` in a user's order of lists.
create function list_position_after(who text) returns text language sql stable as $$
    select task_position_after((select max(position) from list_members where user_id = who))
$$;

-- The user's Inbox, made if it is not there yet. Race-free: the unique index on inbox_of
-- lets one insert win, and the loser reads the winner's row.
create function inbox_for(who text) returns bigint language plpgsql as $$
declare
    found bigint;
    pos   bigint := feed_position();
begin
    select id into found from lists where inbox_of = who;
    if found is not null then
        return found;
    end if;
    insert into lists (owner_id, inbox_of, name, change_pos, last_pos, created_at, updated_at)
    values (who, who, 'Inbox', pos, pos, now(), now())
    on conflict (inbox_of) do nothing
    returning id into found;
    if found is null then
        select id into found from lists where inbox_of = who;
        return found;
    end if;
    insert into list_members (list_id, user_id, role, position, joined_at, joined_pos, change_pos)
    values (found, who, 'owner', list_position_after(who), now(), pos, pos);
    return found;
end
$$;

-- Every existing user's Inbox, holding their tasks. Their feed starts again (old cursors get
-- 410), so every existing change takes position 1, below any transaction's.
insert into lists (owner_id, inbox_of, name, member_count, live_tasks, change_pos, last_pos,
                   created_at, updated_at)
select user_id, user_id, 'Inbox', 1, tasks, nextval('migrated_positions'), 0, now(), now()
from task_owners order by user_id;

insert into list_members (list_id, user_id, role, position, joined_at, joined_pos, change_pos)
select id, owner_id, 'owner', 'a0', now(), 0, nextval('migrated_positions') from lists
order by id;

alter table tasks
    add column list_id     bigint,
    add column assignee_id text check (char_length(assignee_id) between 1 and 255),
    add column change_pos  bigint;

drop trigger tasks_record_insert on tasks;
drop trigger tasks_record_update on tasks;
drop trigger tasks_record_removal on tasks;
drop function tasks_record_change();
drop function tasks_record_removal();

-- Every change to a task takes the feed position of its transaction and updates its list's
-- row (the live count, the last position), which stays locked until the commit. A task that
-- moves to another list leaves a departure in the old one. Lock order, everywhere: task rows
-- first (in id order when there are several), then list rows (in id order): a statement that
-- writes many tasks of a list locks them all before the list's row.
create function tasks_record_change() returns trigger language plpgsql as $$
declare
    pos         bigint;
    live_before integer := 0;
    live_after  integer := case when new.deleted_at is null then 1 else 0 end;
begin
    if new.list_id is null then
        new.list_id := inbox_for(new.user_id);
    end if;
    pos := feed_position();
    if tg_op = 'UPDATE' and old.deleted_at is null then
        live_before := 1;
    end if;
    if tg_op = 'UPDATE' and old.list_id <> new.list_id then
        -- Both lists' rows in id order: two tasks crossing between the same two lists in
        -- opposite directions cannot deadlock.
        perform 1 from lists where id in (old.list_id, new.list_id) order by id for update;
        update lists set live_tasks = live_tasks - live_before, last_pos = greatest(last_pos, pos)
        where id = old.list_id;
        -- The departure comes first in the feed, then the task in its new list.
        insert into task_departures (list_id, task_id, pos, departed_at)
        values (old.list_id, old.id, pos, now())
        on conflict (list_id, task_id) do update
            set pos = excluded.pos, departed_at = excluded.departed_at;
        live_before := 0;
        pos := feed_position();
    end if;
    update lists set live_tasks = live_tasks + live_after - live_before,
        last_pos = greatest(last_pos, pos)
    where id = new.list_id;
    new.change_pos := pos;
    return new;
end
$$;

create trigger tasks_record_insert before insert on tasks
    for each row execute function tasks_record_change();
create trigger tasks_record_update before update on tasks
    for each row
    -- The upgrade's fill (a list for a task that had none) is no change of the task.
    when (old.version is distinct from new.version
          or (old.deleted_at is null) <> (new.deleted_at is null)
          or (old.list_id is not null and old.list_id is distinct from new.list_id))
    execute function tasks_record_change();

-- A task removed for good (the purge of the trash, or its list's owner leaving the service)
-- no longer counts. The purge raises feed_purges itself: a cursor from before a removed
-- tombstone must start again.
create function tasks_record_removal() returns trigger language plpgsql as $$
begin
    update lists set live_tasks = live_tasks - case when old.deleted_at is null then 1 else 0 end
    where id = old.list_id;
    return old;
end
$$;

create trigger tasks_record_removal before delete on tasks
    for each row execute function tasks_record_removal();

-- A change to a list itself (its version, the trash) takes a position that every member's
-- feed shows.
create function lists_record_change() returns trigger language plpgsql as $$
declare
    pos bigint := feed_position();
begin
    new.change_pos := pos;
    new.last_pos := pos;
    return new;
end
$$;

create trigger lists_record_update before update on lists
    for each row
    when (old.version is distinct from new.version
          or (old.deleted_at is null) <> (new.deleted_at is null))
    execute function lists_record_change();

-- A member's view of a list changes (joined, new role, new place in their order).
create function list_members_record_change() returns trigger language plpgsql as $$
declare
    pos bigint := feed_position();
begin
    new.change_pos := pos;
    if tg_op = 'INSERT' then
        new.joined_pos := pos;
    end if;
    return new;
end
$$;

create trigger list_members_record_insert before insert on list_members
    for each row execute function list_members_record_change();
create trigger list_members_record_update before update on list_members
    for each row
    when (old.role is distinct from new.role or old.position is distinct from new.position)
    execute function list_members_record_change();

-- Members are counted on the list's row; a join or a departure is a change of the list
-- (its member_count), which every member's feed shows. An owner's first row is the list's
-- creation, not a change.
create function list_members_count() returns trigger language plpgsql as $$
begin
    if tg_op = 'INSERT' then
        update lists set member_count = member_count + 1,
            version = version + case when new.role = 'owner' then 0 else 1 end
        where id = new.list_id;
        return new;
    end if;
    update lists set member_count = member_count - 1, version = version + 1
    where id = old.list_id;
    return old;
end
$$;

create trigger list_members_count after insert or delete on list_members
    for each row execute function list_members_count();

-- A member leaves: their devices drop the list and each of its tasks.
create function list_members_record_loss() returns trigger language plpgsql as $$
begin
    insert into feed_losses (user_id, pos, list_id, task_id, lost_at)
    values (old.user_id, feed_position(), old.list_id, null, now());
    insert into feed_losses (user_id, pos, list_id, task_id, lost_at)
    select old.user_id, feed_position(), old.list_id, id, now()
    from tasks where list_id = old.list_id order by id;
    return old;
end
$$;

create trigger list_members_record_loss after delete on list_members
    for each row execute function list_members_record_loss();
