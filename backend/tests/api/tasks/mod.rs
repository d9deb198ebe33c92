//! The task API through the real router (SPEC §4), one file per concern.

mod conditional;
mod cors;
mod create;
mod delete;
mod feed;
mod fields;
mod finding;
mod http;
mod idempotency;
mod ordering;
mod read;
mod trash;
mod update;
mod validation;
