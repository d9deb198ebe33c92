-- The service's create (src/store/postgres/writes.rs) for {"title": "bench task"}: the insert
-- into the user's Inbox after its last position, in one statement. pgbench cannot bind NULL or compute the next key,
-- so the description is a literal null and the position a unique literal that is not a valid
-- key: run.sh deletes these rows ("pgbench ceiling") before the service sees them.
\set u random(0, :users - 1)
\set uid 100001 + :u
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
