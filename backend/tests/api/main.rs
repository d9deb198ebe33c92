//! Integration tests: the real router, on SQLite and (when `TEST_DATABASE_URL` is set) on
//! PostgreSQL, each test with a fresh database of its own.

mod helpers;
mod jwks_server;
mod spawned;
mod sse;

mod auth;
mod cancelled;
mod cli;
mod connections;
mod events;
mod instances;
mod jwks;
mod openapi;
mod operations;
mod server;
mod store;
mod tasks;
mod unavailable;
mod upgrade;
