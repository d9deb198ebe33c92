-- The service's PATCH with If-Match (the version check is part of the update statement), for
-- {"title": "bench N"}; pgbench cannot know the version, so the condition is "any version", which
-- costs the same. The timestamp is now().
\set u random(0, :users - 1)
\set uid 100001 + :u
\set id 1 + :u * :tasks + random(0, :tasks - 1)
\set n random(1, 1000000000)
update tasks set
       title = coalesce('bench ' || :n, title),
       title_key = coalesce('bench ' || :n, title_key),
       description = case when false then null else description end,
       description_key = case when false then null else description_key end,
       status = coalesce(null, status),
       completed_at = case
           when null::text is null or null = status then completed_at
           when null = 'completed' then now()
           else null end,
       due_at = case when false then null else due_at end,
       priority = coalesce(null, priority),
       tags = coalesce(null, tags),
       tag_keys = coalesce(null, tag_keys),
       updated_at = greatest(now(), updated_at + interval '1 microsecond'),
       list_id = coalesce(null, list_id),
       position = case when null::bigint is null or null = list_id then position else null end,
       assignee_id = case when false then null when null::bigint is null or null = list_id then assignee_id else null end,
       version = version + 1
 where id = :id and deleted_at is null and list_id in (select m.list_id from list_members m join lists l on l.id = m.list_id
            where m.user_id = :uid::text and m.role <> 'viewer' and l.deleted_at is null)
   and (null::bigint[] is null or version = any(null::bigint[]))
   and (null::bigint is null or null in (select 1))
   and (not false or null::text is null) and (
       title is distinct from coalesce('bench ' || :n, title)
       or (false and description is distinct from null)
       or status is distinct from coalesce(null, status)
       or (false and due_at is distinct from null)
       or priority is distinct from coalesce(null, priority)
       or tags is distinct from coalesce(null, tags)
       or list_id is distinct from coalesce(null, list_id)
       or (false and assignee_id is distinct from null))
returning id, user_id, list_id, assignee_id, title, description, status, created_at, updated_at, due_at, priority, tags, position, completed_at, version, deleted_at;
