-- Finding tasks without reading each one. Search by a trigram index of the folded title and
-- description: a query of three or more characters reads the tasks that hold it from the
-- index, where it tested every task of the caller's lists. The index holds no text of its own
-- (content = 'tasks'): triggers keep it in step with the two columns, and only when one of
-- them changes. And the count of a list filtered by status and tags from an index alone.

create virtual table tasks_search using fts5(
    title_key,
    description_key,
    content = 'tasks',
    content_rowid = 'id',
    -- The keys are folded already: matching is exact, byte for byte, as instr() was.
    tokenize = 'trigram case_sensitive 1'
);

insert into tasks_search (tasks_search) values ('rebuild');

create trigger tasks_search_insert after insert on tasks begin
    insert into tasks_search (rowid, title_key, description_key)
    values (new.id, new.title_key, new.description_key);
end;

create trigger tasks_search_delete after delete on tasks begin
    insert into tasks_search (tasks_search, rowid, title_key, description_key)
    values ('delete', old.id, old.title_key, old.description_key);
end;

create trigger tasks_search_update after update of title_key, description_key on tasks
when old.title_key is not new.title_key or old.description_key is not new.description_key
begin
    insert into tasks_search (tasks_search, rowid, title_key, description_key)
    values ('delete', old.id, old.title_key, old.description_key);
    insert into tasks_search (rowid, title_key, description_key)
    values (new.id, new.title_key, new.description_key);
end;

-- What a filtered count reads (status, tags) beside the list, for the live tasks only: the
-- count of "pending, tagged work" walks one range of this index instead of the list's rows.
create index tasks_list_id_status_idx on tasks (list_id, status, tag_keys) where deleted_at is null;
