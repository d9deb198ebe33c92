//! The task routes: handlers, the list query and its cursors.

pub mod cursor;
pub mod handlers;
pub mod query;
pub mod respond;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::AppState;

/// The `/api/tasks` routes, with their OpenAPI descriptions.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::create_task, handlers::list_tasks))
        .routes(routes!(
            handlers::get_task,
            handlers::update_task,
            handlers::patch_task,
            handlers::delete_task
        ))
        .routes(routes!(handlers::move_task))
        .routes(routes!(handlers::restore_task))
}
