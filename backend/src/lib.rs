//! todo-backend: the task API behind the Todo application.
//!
//! A request flows through [`app::router`]'s middleware (request id, tracing, deadline, body
//! limit), is authenticated by [`auth::AuthUser`], validated by the types in
//! [`tasks::model`], and served by a [`store::TaskStore`] that scopes every query to the
//! caller. Failures become [`error::ApiError`], whose JSON body is the same everywhere.

#![forbid(unsafe_code)]

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod error;
pub mod extract;
pub mod middleware;
pub mod server;
pub mod store;
pub mod tasks;
pub mod telemetry;
