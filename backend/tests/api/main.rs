//! Integration tests: the real router, on SQLite and (when `TEST_DATABASE_URL` is set) on
//! PostgreSQL, each test with a fresh database of its own. The modules mirror `src/`; the
//! machinery they share is in `support`.

mod support;

mod auth;
mod changes;
mod cli;
mod dav;
mod http;
mod lists;
mod openapi;
mod operations;
mod server;
mod store;
mod tasks;
