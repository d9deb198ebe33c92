-- Part two's task fields, with the same meaning as in PostgreSQL (see its migration).
-- Timestamps are integer microseconds; tags are JSON arrays of strings.
alter table tasks add column due_at integer;
alter table tasks add column priority integer not null default 0 check (priority between 0 and 3);
alter table tasks add column tags text not null default '[]';
alter table tasks add column tag_keys text not null default '[]';
alter table tasks add column position text;
alter table tasks add column completed_at integer;
alter table tasks add column version integer not null default 1 check (version >= 1);
alter table tasks add column title_key text;
alter table tasks add column description_key text;

update tasks set completed_at = updated_at where status = 'completed';

update tasks set position = (
    select 'd' || substr(digits, (rn / 238328) % 62 + 1, 1)
               || substr(digits, (rn / 3844) % 62 + 1, 1)
               || substr(digits, (rn / 62) % 62 + 1, 1)
               || substr(digits, rn % 62 + 1, 1)
    from (
        select id,
               row_number() over (partition by user_id order by created_at desc, id desc) - 1 as rn,
               '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz' as digits
        from tasks
    ) numbered
    where numbered.id = tasks.id
);

create unique index tasks_user_id_position_idx on tasks (user_id, position);
create index tasks_user_id_updated_at_idx on tasks (user_id, updated_at, id);
-- SQLite's indexes cannot say NULLS LAST; the sort does it.
create index tasks_user_id_due_at_idx on tasks (user_id, due_at, id);
create index tasks_user_id_priority_idx on tasks (user_id, priority, id);
create index tasks_user_id_title_key_idx on tasks (user_id, title_key, id);

create table service_keys (
    name text primary key,
    key  blob not null check (length(key) = 32)
);

-- How many tasks each user has, kept exact by triggers (see the PostgreSQL migration).
create table task_counts (
    user_id text primary key,
    tasks   integer not null check (tasks >= 0)
);

insert into task_counts (user_id, tasks) select user_id, count(*) from tasks group by user_id;

create trigger tasks_count_insert after insert on tasks
begin
    insert into task_counts (user_id, tasks) values (new.user_id, 1)
    on conflict (user_id) do update set tasks = tasks + 1;
end;

create trigger tasks_count_delete after delete on tasks
begin
    update task_counts set tasks = tasks - 1 where user_id = old.user_id;
end;
