-- Lists, their members, and a change feed that follows what each user can read (see the
-- PostgreSQL migration). SQLite has one writer at a time, so a counter bumped by every
-- change is in commit order: it is the feed position.

create table feed_clock (
    one            integer primary key check (one = 1),
    last           integer not null check (last >= 1),
    purged_through integer not null default 0 check (purged_through >= 0)
);

-- Positions below 2^39 are the previous per-user counters (their cursors get 410); the
-- changes already there take positions from 2^39 up, new ones from 2^40.
insert into feed_clock (one, last) values (1, 1099511627776);

create table lists (
    id           integer primary key autoincrement,
    owner_id     text    not null check (length(owner_id) between 1 and 255),
    inbox_of     text    unique,
    name         text    not null check (length(name) between 1 and 100),
    color        text    check (color is null or (length(color) = 7 and color glob '#[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]')),
    version      integer not null default 1 check (version >= 1),
    member_count integer not null default 0 check (member_count between 0 and 50),
    live_tasks   integer not null default 0 check (live_tasks >= 0),
    change_pos   integer not null,
    last_pos     integer not null,
    created_at   integer not null,
    updated_at   integer not null,
    deleted_at   integer
);

create index lists_deleted_at_idx on lists (deleted_at) where deleted_at is not null;

create table list_members (
    list_id    integer not null references lists (id) on delete cascade,
    user_id    text    not null check (length(user_id) between 1 and 255),
    role       text    not null check (role in ('owner', 'editor', 'viewer')),
    position   text    not null,
    joined_at  integer not null,
    joined_pos integer not null,
    change_pos integer not null,
    primary key (list_id, user_id)
);

create unique index list_members_user_id_idx on list_members (user_id, list_id, role);
create unique index list_members_user_id_position_idx on list_members (user_id, position);
create unique index list_members_owner_idx on list_members (list_id) where role = 'owner';

create table feed_losses (
    user_id text    not null,
    pos     integer not null,
    list_id integer not null,
    task_id integer,
    lost_at integer not null,
    primary key (user_id, pos)
);

create index feed_losses_lost_at_idx on feed_losses (lost_at);

create table task_departures (
    list_id     integer not null,
    task_id     integer not null,
    pos         integer not null,
    departed_at integer not null,
    primary key (list_id, task_id)
);

create index task_departures_departed_at_idx on task_departures (departed_at);

create table invitations (
    id         integer primary key autoincrement,
    list_id    integer not null references lists (id) on delete cascade,
    role       text    not null check (role in ('editor', 'viewer')),
    token_hash blob    not null unique check (length(token_hash) = 32),
    max_uses   integer not null check (max_uses between 1 and 50),
    uses       integer not null default 0 check (uses >= 0 and uses <= max_uses),
    created_by text    not null,
    created_at integer not null,
    expires_at integer not null,
    revoked_at integer
);

create index invitations_list_id_idx on invitations (list_id);

insert into lists (owner_id, inbox_of, name, member_count, live_tasks, change_pos, last_pos,
                   created_at, updated_at)
select user_id, user_id, 'Inbox', 1, tasks,
       549755813888 + row_number() over (order by user_id), 0,
       cast((julianday('now') - 2440587.5) * 86400000000 as integer),
       cast((julianday('now') - 2440587.5) * 86400000000 as integer)
from task_owners;

insert into list_members (list_id, user_id, role, position, joined_at, joined_pos, change_pos)
select id, owner_id, 'owner', 'a0', created_at, 0, 600000000000 + id from lists;

drop trigger tasks_record_insert;
drop trigger tasks_record_update;
drop trigger tasks_record_removal;
drop index tasks_user_id_position_idx;
-- The per-user indexes: every query now goes by list (tasks_user_id_idx finds a creator's).
drop index tasks_user_id_created_at_idx;
drop index tasks_user_id_id_idx;
drop index tasks_user_id_updated_at_idx;
drop index tasks_user_id_due_at_idx;
drop index tasks_user_id_priority_idx;
drop index tasks_user_id_title_key_idx;
drop index tasks_user_id_change_seq_idx;

alter table tasks add column list_id integer references lists (id);
alter table tasks add column assignee_id text check (length(assignee_id) between 1 and 255);
alter table tasks add column change_pos integer;

update tasks set change_pos = 650000000000 + (
        select seq from (
            select id, row_number() over (order by user_id, change_seq) as seq from tasks
        ) numbered
        where numbered.id = tasks.id
    ),
    list_id = (select id from lists where lists.inbox_of = tasks.user_id);

update lists set last_pos = max(change_pos, coalesce(
    (select max(change_pos) from tasks where tasks.list_id = lists.id), 0));

alter table tasks drop column change_seq;
drop table task_owners;

create unique index tasks_list_id_position_idx on tasks (list_id, position);
create index tasks_list_id_change_pos_idx on tasks (list_id, change_pos, id);
create index tasks_list_id_created_at_idx on tasks (list_id, created_at desc, id desc);
create index tasks_list_id_updated_at_idx on tasks (list_id, updated_at, id);
create index tasks_list_id_due_at_idx on tasks (list_id, due_at, id);
create index tasks_list_id_priority_idx on tasks (list_id, priority, id);
create index tasks_list_id_title_key_idx on tasks (list_id, title_key, id);
create index tasks_user_id_idx on tasks (user_id);

-- SQLite's triggers cannot set NEW: the position is written just after the row.
create trigger tasks_record_insert after insert on tasks
begin
    update feed_clock set last = last + 1;
    update lists set live_tasks = live_tasks + (new.deleted_at is null),
        last_pos = (select last from feed_clock)
    where id = new.list_id;
    update tasks set change_pos = (select last from feed_clock) where id = new.id;
end;

create trigger tasks_record_update after update of version, deleted_at, list_id on tasks
when new.version is not old.version or (new.deleted_at is null) <> (old.deleted_at is null)
    or new.list_id is not old.list_id
begin
    -- The departure comes first in the feed, then the task in its new list.
    update feed_clock set last = last + 1 where new.list_id is not old.list_id;
    insert into task_departures (list_id, task_id, pos, departed_at)
    select old.list_id, old.id, last, new.updated_at from feed_clock
    where new.list_id is not old.list_id
    on conflict (list_id, task_id) do update
        set pos = excluded.pos, departed_at = excluded.departed_at;
    update feed_clock set last = last + 1;
    update lists set live_tasks = live_tasks - (old.deleted_at is null),
        last_pos = (select last from feed_clock)
    where id = old.list_id;
    update lists set live_tasks = live_tasks + (new.deleted_at is null),
        last_pos = (select last from feed_clock)
    where id = new.list_id;
    update tasks set change_pos = (select last from feed_clock) where id = new.id;
end;

-- The purge raises feed_clock.purged_through itself (see the PostgreSQL migration).
create trigger tasks_record_removal before delete on tasks
begin
    update lists set live_tasks = live_tasks - (old.deleted_at is null) where id = old.list_id;
end;

create trigger lists_record_update after update of version, deleted_at on lists
when new.version is not old.version or (new.deleted_at is null) <> (old.deleted_at is null)
begin
    update feed_clock set last = last + 1;
    update lists set change_pos = (select last from feed_clock),
        last_pos = (select last from feed_clock)
    where id = new.id;
end;

create trigger list_members_record_insert after insert on list_members
begin
    update feed_clock set last = last + 1;
    update list_members set joined_pos = (select last from feed_clock),
        change_pos = (select last from feed_clock)
    where list_id = new.list_id and user_id = new.user_id;
end;

create trigger list_members_record_update after update of role, position on list_members
when new.role is not old.role or new.position is not old.position
begin
    update feed_clock set last = last + 1;
    update list_members set change_pos = (select last from feed_clock)
    where list_id = new.list_id and user_id = new.user_id;
end;

create trigger list_members_count_insert after insert on list_members
begin
    update lists set member_count = member_count + 1,
        version = version + (new.role <> 'owner')
    where id = new.list_id;
end;

create trigger list_members_count_delete after delete on list_members
begin
    update lists set member_count = member_count - 1, version = version + 1
    where id = old.list_id;
end;

-- A member leaves: their devices drop the list and each of its tasks.
create trigger list_members_record_loss after delete on list_members
begin
    insert into feed_losses (user_id, pos, list_id, task_id, lost_at)
    select old.user_id, last + 1, old.list_id, null,
           cast((julianday('now') - 2440587.5) * 86400000000 as integer)
    from feed_clock;
    insert into feed_losses (user_id, pos, list_id, task_id, lost_at)
    select old.user_id, (select last from feed_clock) + 1 + row_number() over (order by id),
           old.list_id, id, cast((julianday('now') - 2440587.5) * 86400000000 as integer)
    from tasks where list_id = old.list_id;
    update feed_clock
    set last = last + 1 + (select count(*) from tasks where list_id = old.list_id);
end;
