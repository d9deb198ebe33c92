-- The service's create (src/store/postgres.rs) for {"title": "bench task"}. pgbench cannot
-- bind NULL, so description ($3) is a literal null; the timestamp ($5) is now().
\set u random(0, 1)
\set uid 100001 + :u
insert into tasks (user_id, title, description, status, created_at, updated_at)
values (:uid, :title, null, :status_new, now(), now())
returning id, user_id, title, description, status, created_at, updated_at;
