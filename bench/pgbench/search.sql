-- The service's list for ?q=task%2012&limit=20, and its total.
\set u random(0, :users - 1)
\set uid 100001 + :u
\set limit 21
\set offset 0
select id, user_id, title, description, status, created_at, updated_at, due_at, priority, tags, position, completed_at, version, deleted_at
  from tasks
 where user_id = :uid and deleted_at is null
   and (title_key like '%task 12%' escape '\' or description_key like '%task 12%' escape '\')
 order by created_at desc, id desc
 limit :limit offset :offset;
select count(*) from tasks
 where user_id = :uid and deleted_at is null
   and (title_key like '%task 12%' escape '\' or description_key like '%task 12%' escape '\');
