-- The service's get (src/store/postgres/mod.rs), as pgbench -M prepared sends it: each :var
-- is a bind parameter, like $1 and $2 in the service. User u owns ids u*tasks+1 .. (u+1)*tasks.
\set u random(0, :users - 1)
\set uid 100001 + :u
\set id 1 + :u * :tasks + random(0, :tasks - 1)
select id, user_id, list_id, assignee_id, title, description, status, created_at, updated_at, due_at, priority, tags, position, completed_at, version, deleted_at
  from tasks
 where id = :id and deleted_at is null and list_id in (select list_id from list_members where user_id = :uid::text);
