//! The list routes: the caller's lists, their own order, and the trash.

pub mod handlers;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::AppState;

/// The `/api/lists` routes, with their OpenAPI descriptions.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::list_lists, handlers::create_list))
        .routes(routes!(
            handlers::get_list,
            handlers::patch_list,
            handlers::delete_list
        ))
        .routes(routes!(handlers::restore_list))
        .routes(routes!(handlers::move_list))
}
