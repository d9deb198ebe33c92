-- The service's list (src/store/postgres/mod.rs) for ?limit=20: the 21 newest tasks of a
-- user (one more than the page, to know whether another follows) and the total, which the
-- service sends at once on two connections (unfiltered, it is the trigger-kept count).
\set u random(0, :users - 1)
\set uid 100001 + :u
\set limit 21
\set offset 0
select id, user_id, title, description, status, created_at, updated_at, due_at, priority, tags, position, completed_at, version, deleted_at
  from tasks
 where user_id = :uid and deleted_at is null
 order by created_at desc, id desc
 limit :limit offset :offset;
select coalesce((select tasks from task_owners where user_id = :uid::text), 0);
