//! The task API through the real router (`src/tasks/`), one file per concern.

mod conditional;
mod create;
mod delete;
mod fields;
mod finding;
mod idempotency;
mod ordering;
mod read;
mod recurrence;
mod subtasks;
mod trash;
mod uids;
mod update;
mod validation;
