//! What a client catches up from: the caller's changes in commit order, as pages for a
//! client that was offline and as a live stream for one that is open.

pub mod events;
pub mod handlers;
pub mod query;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::AppState;

/// `/api/tasks/changes` and `/api/tasks/events`, with their OpenAPI description.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::list_changes))
        .routes(routes!(events::stream_events))
}
