-- Subtasks, repeating tasks and stable ids: the columns, a UUID for every task there is, one
-- uid per list, and a task's subtasks found by index. The service gives every new task its
-- uid (SQLite cannot add a NOT NULL column without a constant default).

alter table tasks add column uid text check (length(uid) between 1 and 255);
alter table tasks add column parent_id integer;
alter table tasks add column recurrence text;
alter table tasks add column completed_count integer not null default 0;
alter table tasks add column last_completed_at integer;

update tasks set uid = lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4'
    || substr(hex(randomblob(2)), 2) || '-' || substr('89ab', 1 + abs(random()) % 4, 1)
    || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)));

create unique index tasks_list_id_uid_idx on tasks (list_id, uid);
create index tasks_parent_id_idx on tasks (parent_id) where parent_id is not null;
