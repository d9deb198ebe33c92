//! What the tests share: the in-process app and its client (`app`), the binary spawned as a
//! user runs it (`spawned`), a JWKS server (`jwks_server`) and an event-stream reader (`sse`).

pub mod app;
pub mod jwks_server;
pub mod spawned;
pub mod sse;
