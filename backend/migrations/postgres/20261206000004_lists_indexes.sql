-- Lists, fifth step: the indexes of lists' queries (built while readers go on).

-- One position per list: each list's manual order is total.
create unique index tasks_list_id_position_idx on tasks (list_id, position);
create index tasks_list_id_change_pos_idx on tasks (list_id, change_pos, id);
create index tasks_list_id_created_at_idx on tasks (list_id, created_at desc, id desc);
create index tasks_list_id_updated_at_idx on tasks (list_id, updated_at, id);
create index tasks_list_id_due_at_idx on tasks (list_id, due_at asc nulls last, id asc);
create index tasks_list_id_due_at_desc_idx on tasks (list_id, due_at desc nulls last, id desc);
create index tasks_list_id_priority_idx on tasks (list_id, priority, id);
create index tasks_list_id_title_key_idx on tasks (list_id, title_key, id);
create index tasks_user_id_idx on tasks (user_id);
