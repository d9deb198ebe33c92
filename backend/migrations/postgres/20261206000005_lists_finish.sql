-- Lists, last step: not null from the validated checks (no scan), and what the per-user
-- feed needed, gone.

alter table tasks alter column list_id set not null;
alter table tasks drop constraint tasks_list_id_not_null;
alter table tasks alter column change_pos set not null;
alter table tasks drop constraint tasks_change_pos_not_null;

drop index tasks_user_id_position_idx;
-- The per-user indexes: every query now goes by list (tasks_user_id_idx finds a creator's).
drop index tasks_user_id_created_at_idx;
drop index tasks_user_id_id_idx;
drop index tasks_user_id_updated_at_idx;
drop index tasks_user_id_due_at_idx;
drop index tasks_user_id_due_at_desc_idx;
drop index tasks_user_id_priority_idx;
drop index tasks_user_id_title_key_idx;
drop index tasks_user_id_change_seq_idx;
alter table tasks drop column change_seq;
drop table task_owners;
drop sequence migrated_positions;
