-- The service's change-feed page (src/store/postgres/mod.rs, changes()) for
-- ?since=S&limit=100: 101 changes after S, then the user's counters.
\set u random(0, :users - 1)
\set uid 100001 + :u
\set since random(0, :tasks - 100)
select id, user_id, title, description, status, created_at, updated_at, due_at, priority, tags, position, completed_at, version, deleted_at, change_seq
  from tasks
 where user_id = :uid and change_seq > :since
 order by change_seq limit 101;
select last_change, purged_through from task_owners where user_id = :uid;
