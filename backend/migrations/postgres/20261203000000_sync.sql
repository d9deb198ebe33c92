-- Many devices: a trash, a change feed in commit order, and idempotent creates.

-- A deleted task stays as a tombstone until it is purged: it can be restored, and clients
-- that sync learn of its deletion from the change feed.
alter table tasks
    add column deleted_at timestamptz,
    -- The task's place in its owner's change feed: the owner's change counter after the
    -- task's last change.
    add column change_seq bigint;

-- One row per user: the live tasks (for an unfiltered X-Total-Count), the change counter,
-- and the newest change seq a purge has removed from the feed (older cursors are gone).
alter table task_counts rename to task_owners;
alter table task_owners
    add column last_change    bigint not null default 0 check (last_change >= 0),
    add column purged_through bigint not null default 0 check (purged_through >= 0);

-- Existing tasks enter the feed in the order they last changed.
update tasks set change_seq = numbered.seq
from (
    select id, row_number() over (partition by user_id order by updated_at, id) as seq
    from tasks
) numbered
where tasks.id = numbered.id;

update task_owners set last_change = coalesce(
    (select max(change_seq) from tasks where tasks.user_id = task_owners.user_id), 0);

alter table tasks alter column change_seq set not null;

create unique index tasks_user_id_change_seq_idx on tasks (user_id, change_seq);
create index tasks_deleted_at_idx on tasks (deleted_at) where deleted_at is not null;

drop trigger tasks_count_changes on tasks;
drop function tasks_count_changes();

-- Every change to a task takes the next value of its owner's counter. The counter row stays
-- locked until the writing transaction commits, so the owner's writers take their numbers in
-- commit order: a reader that has seen change n has seen every change before it. (A global
-- sequence would not do: its values are taken before commit, and commit in any order.)
create function tasks_record_change() returns trigger language plpgsql as $$
declare
    live_before integer := 0;
    live_after  integer := case when new.deleted_at is null then 1 else 0 end;
begin
    if tg_op = 'UPDATE' and old.deleted_at is null then
        live_before := 1;
    end if;
    insert into task_owners as owner (user_id, tasks, last_change)
    values (new.user_id, live_after, 1)
    on conflict (user_id) do update
        set tasks = owner.tasks + live_after - live_before,
            last_change = owner.last_change + 1
    returning last_change into new.change_seq;
    return new;
end
$$;

create trigger tasks_record_insert before insert on tasks
    for each row execute function tasks_record_change();
-- A change is what moves `version` or puts a task in or out of the trash; other updates (such
-- as filling in a derived column) are not news to clients.
create trigger tasks_record_update before update on tasks
    for each row
    when (old.version is distinct from new.version
          or (old.deleted_at is null) <> (new.deleted_at is null))
    execute function tasks_record_change();

-- A task removed for good leaves the feed: cursors from before its last change can no longer
-- tell their client about it.
create function tasks_record_removal() returns trigger language plpgsql as $$
begin
    update task_owners
    set tasks = tasks - case when old.deleted_at is null then 1 else 0 end,
        purged_through = greatest(purged_through, old.change_seq)
    where user_id = old.user_id;
    return old;
end
$$;

create trigger tasks_record_removal before delete on tasks
    for each row execute function tasks_record_removal();

-- The outcome of each request sent with an Idempotency-Key, kept for 24 hours, per user.
create table idempotency_keys (
    user_id     text        not null,
    key         text        not null check (char_length(key) between 1 and 255),
    -- SHA-256 of the method, the path and the canonical body: the same key with another
    -- request is refused.
    fingerprint bytea       not null check (length(fingerprint) = 32),
    status      integer     not null,
    body        text        not null,
    task_id     bigint      not null,
    version     bigint      not null,
    created_at  timestamptz not null,
    primary key (user_id, key)
);

create index idempotency_keys_created_at_idx on idempotency_keys (created_at);
