-- The service's list (src/store/postgres/mod.rs) for ?limit=20: the 21 newest tasks of a
-- user (one more than the page, to know whether another follows) and the total, which the
-- service sends at once on two connections (unfiltered, it is the trigger-kept count).
\set u random(0, :users - 1)
\set uid 100001 + :u
\set limit 21
\set offset 0
select id, user_id, list_id, assignee_id, title, description, status, created_at, updated_at, due_at, priority, tags, position, completed_at, version, deleted_at
  from tasks
 where list_id in (select m.list_id from list_members m join lists l on l.id = m.list_id where l.deleted_at is null and m.user_id = :uid::text) and deleted_at is null
 order by created_at desc, id desc
 limit :limit offset :offset;
select coalesce(sum(l.live_tasks), 0)::bigint from list_members m join lists l on l.id = m.list_id
 where m.user_id = :uid::text;
