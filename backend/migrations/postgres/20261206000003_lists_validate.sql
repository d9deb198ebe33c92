-- Lists, fourth step: the checks validated, a scan that lets readers and writers go on
-- (share update exclusive).

alter table tasks validate constraint tasks_list_id_not_null;
alter table tasks validate constraint tasks_change_pos_not_null;
alter table tasks validate constraint tasks_list_id_fkey;
