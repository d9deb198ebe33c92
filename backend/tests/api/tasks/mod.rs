//! The task API through the real router (SPEC §4), one file per concern.

mod cors;
mod create;
mod delete;
mod fields;
mod finding;
mod http;
mod ordering;
mod read;
mod update;
mod validation;
