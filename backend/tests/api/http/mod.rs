//! The HTTP layer (`src/http/`, `src/probes.rs`): what every route shares, and CORS.

mod cors;
mod every_route;
