-- The service's list for ?q=task%2012&limit=20 with Prefer: count=none: the page without its
-- total.
\set u random(0, :users - 1)
\set uid 100001 + :u
\set limit 21
\set offset 0
select id, user_id, list_id, assignee_id, title, description, status, created_at, updated_at, due_at, priority, tags, position, completed_at, version, deleted_at
  from tasks
 where list_id in (select m.list_id from list_members m join lists l on l.id = m.list_id where l.deleted_at is null and m.user_id = :uid::text) and deleted_at is null
   and (title_key like '%task 12%' escape '\' or description_key like '%task 12%' escape '\')
 order by created_at desc, id desc
 limit :limit offset :offset;
