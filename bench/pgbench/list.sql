-- The service's list (src/store/postgres.rs): the 20 newest tasks of a user.
\set u random(0, 1)
\set uid 100001 + :u
\set limit 20
\set offset 0
select id, user_id, title, description, status, created_at, updated_at
  from tasks
 where user_id = :uid
 order by created_at desc, id desc
 limit :limit offset :offset;
