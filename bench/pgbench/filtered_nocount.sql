-- The service's list for ?status=pending&tag=work&sort=due_at&limit=20 with Prefer: count=none:
-- the page without its total. The service binds the arrays; pgbench cannot, so they are
-- literals of the same type.
\set u random(0, :users - 1)
\set uid 100001 + :u
\set limit 21
\set offset 0
select id, user_id, list_id, assignee_id, title, description, status, created_at, updated_at, due_at, priority, tags, position, completed_at, version, deleted_at
  from tasks
 where list_id in (select m.list_id from list_members m join lists l on l.id = m.list_id where l.deleted_at is null and m.user_id = :uid::text) and deleted_at is null and status = any('{pending}'::text[]) and tag_keys @> '{work}'::text[]
 order by due_at asc nulls last, id asc
 limit :limit offset :offset;
