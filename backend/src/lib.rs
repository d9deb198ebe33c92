//! todo-backend: the task API behind the Todo application.
//!
//! A request flows through the policies of [`http::policy`] (request id, log line, security
//! headers, CORS, limits, deadline), is authenticated by [`http::extract::AuthUser`] with the
//! [`auth::Verifier`], validated by the types in [`domain`], and served by a handler in
//! [`tasks`] through a [`store::Tasks`] that scopes every query to the caller. Failures
//! become [`http::ApiError`], whose JSON body is the same everywhere. [`startup`] assembles
//! the whole service, for the binary and for the tests alike.
//!
//! Modules depend downwards only: `commands` → `startup` → `app` (the router) → `tasks`,
//! `changes`, `probes` → `http` → `telemetry`, `live` → `auth`, `rate_limits`, `store` →
//! `domain`.

#![forbid(unsafe_code)]

pub mod app;
pub mod auth;
pub mod changes;
pub mod cli;
pub mod commands;
pub mod config;
pub mod dav;
pub mod domain;
pub mod http;
pub mod lists;
pub mod live;
pub mod maintenance;
mod openapi;
pub mod probes;
pub mod rate_limits;
pub mod server;
pub mod startup;
pub mod store;
pub mod tasks;
pub mod telemetry;
