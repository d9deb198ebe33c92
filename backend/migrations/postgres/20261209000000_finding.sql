-- The count of a list filtered by status and tags, from an index alone: "pending, tagged
-- work" walks one range of it (an index-only scan where the table's pages are all visible)
-- instead of every live task of the list. Built as the other indexes were: readers go on.

create index tasks_list_id_status_idx on tasks (list_id, status) include (tag_keys, priority)
    where deleted_at is null;
