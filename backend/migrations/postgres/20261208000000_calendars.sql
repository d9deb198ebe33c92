-- Calendar clients (CalDAV): the app passwords they sign in with, and each task's iCalendar
-- object as a calendar client last wrote it, so that what the service does not model (alarms,
-- attachments, X- properties) goes back to the client unchanged. A nullable column without a
-- default: no rewrite of the table, no lock beyond a catalogue change.

create table app_passwords (
    id           bigint generated always as identity primary key,
    user_id      text        not null check (char_length(user_id) between 1 and 255),
    name         text        not null check (char_length(name) between 1 and 100),
    -- SHA-256 of the secret: the secret itself is shown once and never kept.
    secret_hash  bytea       not null unique check (length(secret_hash) = 32),
    created_at   timestamptz not null,
    last_used_at timestamptz
);

create index app_passwords_user_id_idx on app_passwords (user_id);

alter table tasks add column ical text;
-- The name a client gave a task's resource (`{dav_name}.ics`) when it is not the task's uid,
-- and the name it gave a calendar it made (MKCALENDAR), so that both stay where the client
-- put them.
alter table tasks add column dav_name text;
alter table lists add column dav_name text;
