-- Subtasks, second step: one uid per list, a task's subtasks found by index, and the checks
-- validated (a scan that blocks no writer), then the uid not null without another scan.

create unique index tasks_list_id_uid_idx on tasks (list_id, uid);
create index tasks_parent_id_idx on tasks (parent_id) where parent_id is not null;
alter table tasks validate constraint tasks_uid_check;
alter table tasks validate constraint tasks_completed_count_check;
alter table tasks add constraint tasks_uid_not_null check (uid is not null) not valid;
alter table tasks validate constraint tasks_uid_not_null;
alter table tasks alter column uid set not null;
alter table tasks drop constraint tasks_uid_not_null;
