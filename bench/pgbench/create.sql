-- The service's create (src/store/postgres/mod.rs) for {"title": "bench task"}: the user's
-- last position, then the insert after it. pgbench cannot bind NULL or compute the next key,
-- so the description is a literal null and the position a unique literal that is not a valid
-- key: run.sh deletes these rows ("pgbench ceiling") before the service sees them.
\set u random(0, :users - 1)
\set uid 100001 + :u
select max(position) from tasks where user_id = :uid;
insert into tasks (user_id, title, title_key, description, description_key, status,
                   created_at, updated_at, due_at, priority, tags, tag_keys, position,
                   completed_at)
values (:uid, 'pgbench ceiling', 'pgbench ceiling', null, null, :status_new, now(), now(), null, 0, '{}', '{}',
        'z' || :client_id || '-' || nextval('tasks_id_seq'), null)
returning id, user_id, title, description, status, created_at, updated_at, due_at, priority, tags, position, completed_at, version, deleted_at;
