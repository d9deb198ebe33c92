-- Subtasks, repeating tasks and stable ids, first step: the columns, added without a default
-- that would rewrite the table (a constant default does not), and the uid of every task there
-- is. New rows get theirs from the service, or from the default set after the column exists.

alter table tasks add column uid text;
alter table tasks alter column uid set default gen_random_uuid()::text;
-- A subtask's parent: a task of the same list (the service checks it with the write).
alter table tasks add column parent_id bigint;
-- A repeating task's rule, as JSON: {"rrule", "from", "time_zone"}.
alter table tasks add column recurrence text;
alter table tasks add column completed_count bigint not null default 0;
alter table tasks add column last_completed_at timestamptz;
alter table tasks add constraint tasks_uid_check
    check (length(uid) between 1 and 255 and uid ~ '^[!-~]+$') not valid;
alter table tasks add constraint tasks_completed_count_check
    check (completed_count >= 0) not valid;

-- No trigger fires: a uid is no change a client has to be told of.
update tasks set uid = gen_random_uuid()::text where uid is null;
