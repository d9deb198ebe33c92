-- The service's create with an Idempotency-Key (src/store/postgres/mod.rs, once()): in one
-- transaction, the key's lock, the look-up of an earlier outcome, the insert (as create.sql)
-- and the record of the outcome. The body recorded is a literal of a task's size.
\set u random(0, :users - 1)
\set uid 100001 + :u
\set k random(1, 1000000000000)
begin;
select pg_try_advisory_xact_lock(hashtext(:uid::text), hashtext('pgbench-' || :client_id || '-' || :k));
select fingerprint, status, body, task_id, version from idempotency_keys
 where user_id = :uid::text and key = 'pgbench-' || :client_id || '-' || :k
   and created_at > now() - interval '24 hours';
with target as (select coalesce(null::bigint, inbox_for(:uid::text)) as id)
insert into tasks (user_id, list_id, assignee_id, title, title_key, description, description_key,
                   status, created_at, updated_at, due_at, priority, tags, tag_keys, position,
                   completed_at)
select :uid, target.id, null, 'pgbench ceiling', 'pgbench ceiling', null, null, :status_new, now(),
       now(), null, 0, '{}', '{}',
       coalesce('z' || :client_id || '-' || nextval('tasks_id_seq'),
                (select max(position) from tasks where list_id = target.id)), null
from target
where (null::bigint is null or exists (select 1 from list_members m join lists l on l.id = m.list_id
        where m.list_id = target.id and m.user_id = :uid::text and m.role <> 'viewer'
          and l.deleted_at is null))
  and (null::text is null or null = :uid::text)
returning id, user_id, list_id, assignee_id, title, description, status, created_at, updated_at, due_at, priority, tags, position, completed_at, version, deleted_at;
insert into idempotency_keys (user_id, key, fingerprint, status, body, task_id, version, created_at)
values (:uid::text, 'pgbench-' || :client_id || '-' || :k, sha256('x'::bytea), 201,
        repeat('x', 330), currval('tasks_id_seq'), 1, now())
on conflict (user_id, key) do update set created_at = excluded.created_at
 where idempotency_keys.created_at <= now() - interval '24 hours';
commit;
