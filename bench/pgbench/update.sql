-- The service's update (src/store/postgres.rs) for {"status": "completed"}. pgbench cannot
-- bind NULL or booleans, so title ($3), the description flag and value ($4, $5) are
-- literals; the timestamp ($7) is now().
\set u random(0, 1)
\set uid 100001 + :u
\set id 1 + :u * :tasks + random(0, :tasks - 1)
update tasks set
       title = coalesce(null, title),
       description = case when false then null else description end,
       status = coalesce(:status_done, status),
       updated_at = greatest(now(), updated_at + interval '1 microsecond')
 where user_id = :uid and id = :id
returning id, user_id, title, description, status, created_at, updated_at;
