-- Part two's task fields. Existing rows keep their meaning: priority none, no tags, version 1,
-- completed ones completed when they last changed, and positions that keep their newest-first
-- order. The folded title and description (for search and the title sort) are filled in by
-- the service at start-up, which folds text the same way on both backends.
create extension if not exists pg_trgm;

alter table tasks
    add column due_at          timestamptz,
    add column priority        integer not null default 0 check (priority between 0 and 3),
    add column tags            text[]  not null default '{}' check (cardinality(tags) <= 20),
    -- The tags lowercased, for filtering.
    add column tag_keys        text[]  not null default '{}',
    -- Compared as bytes, as the API promises, whatever the database's collation.
    add column position        text collate "C",
    add column completed_at    timestamptz,
    add column version         bigint  not null default 1 check (version >= 1),
    add column title_key       text collate "C",
    add column description_key text;

update tasks set completed_at = updated_at where status = 'completed';

-- 'd' and four base-62 digits: a valid fractional-index key for each of a user's first
-- 14.7 million tasks, newest first, as the list showed them.
update tasks set position = ranked.position
from (
    select id,
           'd' || substr(digits, ((rn / 238328) % 62 + 1)::int, 1)
               || substr(digits, ((rn / 3844) % 62 + 1)::int, 1)
               || substr(digits, ((rn / 62) % 62 + 1)::int, 1)
               || substr(digits, (rn % 62 + 1)::int, 1) as position
    from (
        select id,
               row_number() over (partition by user_id order by created_at desc, id desc) - 1 as rn,
               '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'::text as digits
        from tasks
    ) numbered
) ranked
where tasks.id = ranked.id;

alter table tasks alter column position set not null;

-- One position per user: the manual order is total, and two concurrent moves cannot both win.
create unique index tasks_user_id_position_idx on tasks (user_id, position);
create index tasks_user_id_updated_at_idx on tasks (user_id, updated_at, id);
-- Tasks without a due date sort last in both directions: one index for each.
create index tasks_user_id_due_at_idx on tasks (user_id, due_at asc nulls last, id asc);
create index tasks_user_id_due_at_desc_idx on tasks (user_id, due_at desc nulls last, id desc);
create index tasks_user_id_priority_idx on tasks (user_id, priority, id);
create index tasks_user_id_title_key_idx on tasks (user_id, title_key, id);
-- GIN indexes without the fast-update list: inserts pay a little more, but no reader has to
-- scan a growing list of pending entries until the next vacuum.
create index tasks_tag_keys_idx on tasks using gin (tag_keys) with (fastupdate = off);
-- Substring search (LIKE '%q%') served by trigram indexes.
create index tasks_title_key_trgm_idx on tasks
    using gin (title_key gin_trgm_ops) with (fastupdate = off);
create index tasks_description_key_trgm_idx on tasks
    using gin (description_key gin_trgm_ops) with (fastupdate = off);

-- Keys every instance must share, such as the one list cursors are signed with; each is made
-- by the first instance that needs it.
create table service_keys (
    name text primary key,
    key  bytea not null check (length(key) = 32)
);

-- How many tasks each user has, kept exact by a trigger in the writing transaction, so that an
-- unfiltered list's X-Total-Count is one row read instead of a count of all the user's tasks.
create table task_counts (
    user_id text primary key,
    tasks   bigint not null check (tasks >= 0)
);

insert into task_counts (user_id, tasks) select user_id, count(*) from tasks group by user_id;

create function tasks_count_changes() returns trigger language plpgsql as $$
begin
    if tg_op = 'INSERT' then
        insert into task_counts (user_id, tasks) values (new.user_id, 1)
        on conflict (user_id) do update set tasks = task_counts.tasks + 1;
        return new;
    end if;
    update task_counts set tasks = tasks - 1 where user_id = old.user_id;
    return old;
end
$$;

create trigger tasks_count_changes after insert or delete on tasks
    for each row execute function tasks_count_changes();

-- The first key after `last` in the manual order, as the service computes it (the integer part
-- incremented: see src/domain/position.rs), so that a create finds its position and inserts in
-- one statement. 'a0' for a user with no task yet.
create function task_position_after(last text) returns text
language plpgsql immutable as $$
declare
    digits constant text := '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
    head integer;
    length integer;
    digit integer;
    i integer;
begin
    if last is null then
        return 'a0';
    end if;
    head := ascii(last);
    if head between ascii('a') and ascii('z') then
        length := head - ascii('a') + 2;
    elsif head between ascii('A') and ascii('Z') then
        length := ascii('Z') - head + 2;
    else
        raise exception 'invalid position %', last;
    end if;
    i := length;
    while i > 1 loop
        digit := strpos(digits, substr(last, i, 1)) - 1;
        if digit < 0 then
            raise exception 'invalid position %', last;
        end if;
        if digit < 61 then
            return substr(last, 1, i - 1) || substr(digits, digit + 2, 1) || repeat('0', length - i);
        end if;
        i := i - 1;
    end loop;
    -- Every digit carried over: the next length of integer.
    if head = ascii('Z') then
        return 'a0';
    elsif head = ascii('z') then
        raise exception 'no position after %', last;
    elsif head >= ascii('a') then
        return chr(head + 1) || repeat('0', length);
    else
        return chr(head + 1) || repeat('0', length - 2);
    end if;
end
$$;
