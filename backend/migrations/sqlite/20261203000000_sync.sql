-- A trash, a change feed in commit order, and idempotent creates (see the PostgreSQL
-- migration). SQLite has one writer at a time, so its commit order is its write order.
alter table tasks add column deleted_at integer;
alter table tasks add column change_seq integer;

drop trigger tasks_count_insert;
drop trigger tasks_count_delete;
alter table task_counts rename to task_owners;
alter table task_owners add column last_change integer not null default 0 check (last_change >= 0);
alter table task_owners add column purged_through integer not null default 0
    check (purged_through >= 0);

update tasks set change_seq = (
    select seq from (
        select id, row_number() over (partition by user_id order by updated_at, id) as seq
        from tasks
    ) numbered
    where numbered.id = tasks.id
);

update task_owners set last_change = coalesce(
    (select max(change_seq) from tasks where tasks.user_id = task_owners.user_id), 0);

create unique index tasks_user_id_change_seq_idx on tasks (user_id, change_seq);
create index tasks_deleted_at_idx on tasks (deleted_at) where deleted_at is not null;

-- SQLite's triggers cannot set NEW: the change seq is written just after the row.
create trigger tasks_record_insert after insert on tasks
begin
    insert into task_owners (user_id, tasks, last_change)
    values (new.user_id, new.deleted_at is null, 1)
    on conflict (user_id) do update
        set tasks = tasks + (new.deleted_at is null), last_change = last_change + 1;
    update tasks set change_seq = (select last_change from task_owners where user_id = new.user_id)
    where id = new.id;
end;

create trigger tasks_record_update after update of version, deleted_at on tasks
when new.version is not old.version or (new.deleted_at is null) <> (old.deleted_at is null)
begin
    update task_owners
    set tasks = tasks + (new.deleted_at is null) - (old.deleted_at is null),
        last_change = last_change + 1
    where user_id = new.user_id;
    update tasks set change_seq = (select last_change from task_owners where user_id = new.user_id)
    where id = new.id;
end;

create trigger tasks_record_removal before delete on tasks
begin
    update task_owners
    set tasks = tasks - (old.deleted_at is null),
        purged_through = max(purged_through, old.change_seq)
    where user_id = old.user_id;
end;

create table idempotency_keys (
    user_id     text    not null,
    key         text    not null check (length(key) between 1 and 255),
    fingerprint blob    not null check (length(fingerprint) = 32),
    status      integer not null,
    body        text    not null,
    task_id     integer not null,
    version     integer not null,
    created_at  integer not null,
    primary key (user_id, key)
);

create index idempotency_keys_created_at_idx on idempotency_keys (created_at);
