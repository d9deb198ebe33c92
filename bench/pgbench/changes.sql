-- The service's change-feed page (src/store/postgres/mod.rs, feed_rows) for
-- ?since=S&limit=100: in one repeatable-read transaction, the bounds, then 101 changes after
-- S of each source (tasks, departures, losses; the list rows only with include=lists).
\set u random(0, :users - 1)
\set uid 100001 + :u
\set since random(:feed_lo, :feed_hi)
begin transaction isolation level repeatable read, read only;
select feed_horizon(), feed_frontier(), (select purged_through from feed_purges),
       greatest((select max(greatest(l.last_pos, m.change_pos))
                 from list_members m join lists l on l.id = m.list_id where m.user_id = :uid::text),
                (select max(pos) from feed_losses where user_id = :uid::text));
select id, user_id, list_id, assignee_id, title, description, status, created_at, updated_at, due_at, priority, tags, position, completed_at, version, deleted_at, change_pos
  from tasks
 where change_pos > :since and change_pos < feed_horizon()
   and list_id in (select list_id from list_members where user_id = :uid::text)
 order by change_pos limit 101;
select pos, task_id from task_departures
 where pos > :since and pos < feed_horizon()
   and list_id in (select list_id from list_members where user_id = :uid::text)
 order by pos limit 101;
select pos, list_id, task_id from feed_losses
 where user_id = :uid::text and pos > :since and pos < feed_horizon() and (false or task_id is not null)
 order by pos limit 101;
commit;
