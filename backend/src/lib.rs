//! todo-backend: the task API behind the Todo application.
//!
//! A request flows through the policies of [`http::policy`] (request id, log line, security
//! headers, CORS, limits, deadline), is authenticated by [`http::extract::AuthUser`] with the
//! [`auth::Verifier`], validated by the types in [`domain`], and served by a handler in
//! [`tasks`] through a [`store::TaskStore`] that scopes every query to the caller. Failures
//! become [`http::ApiError`], whose JSON body is the same everywhere.
//!
//! Modules depend downwards only: `app` (the router) → `tasks`, `probes` → `http` → `auth`,
//! `rate_limits`, `store`, `telemetry` → `domain`.

#![forbid(unsafe_code)]

pub mod app;
pub mod auth;
pub mod changes;
pub mod cli;
pub mod config;
pub mod domain;
pub mod http;
pub mod maintenance;
pub mod probes;
pub mod rate_limits;
pub mod server;
pub mod store;
pub mod tasks;
pub mod telemetry;
