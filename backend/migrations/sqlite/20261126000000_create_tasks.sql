-- Each user's tasks, with the same meaning as the PostgreSQL table. Timestamps are
-- microseconds since the Unix epoch (UTC): exact, and ordered like the numbers they are.
create table tasks (
    -- AUTOINCREMENT: SQLite never reuses an id, even after the newest task is deleted.
    id          integer primary key autoincrement,
    user_id     text    not null check (length(user_id) between 1 and 255),
    title       text    not null check (length(title) between 1 and 200),
    description text    check (length(description) <= 2000),
    status      text    not null default 'pending'
                        check (status in ('pending', 'in_progress', 'completed')),
    created_at  integer not null,
    updated_at  integer not null,
    check (updated_at >= created_at)
);

create index tasks_user_id_created_at_idx on tasks (user_id, created_at desc, id desc);
create index tasks_user_id_id_idx on tasks (user_id, id);
