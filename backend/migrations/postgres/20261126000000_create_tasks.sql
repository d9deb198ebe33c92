-- Each user's tasks. The checks mirror the API's validation, so a bug in the service can
-- never store a task the API would have refused.
create table tasks (
    -- "always": ids come only from the sequence, and a sequence never hands one out twice.
    id          bigint generated always as identity primary key,
    user_id     text        not null check (char_length(user_id) between 1 and 255),
    title       text        not null check (char_length(title) between 1 and 200),
    description text        check (char_length(description) <= 2000),
    status      text        not null default 'pending'
                            check (status in ('pending', 'in_progress', 'completed')),
    created_at  timestamptz not null,
    updated_at  timestamptz not null,
    check (updated_at >= created_at)
);

-- "This user's tasks, newest first": the list query reads this index in order.
create index tasks_user_id_created_at_idx on tasks (user_id, created_at desc, id desc);

-- "This user's task with this id": get, update and delete.
create index tasks_user_id_id_idx on tasks (user_id, id);
