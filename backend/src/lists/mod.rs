//! The list routes: the caller's lists, their own order, the trash, sharing (members,
//! invitations, transfer), and the caller's data (export, deletion).

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
        .routes(routes!(handlers::list_members))
        .routes(routes!(handlers::patch_member, handlers::delete_member))
        .routes(routes!(handlers::transfer_list))
        .routes(routes!(
            handlers::create_invitation,
            handlers::list_invitations
        ))
        .routes(routes!(handlers::delete_invitation))
        .routes(routes!(handlers::accept_invitation))
        .routes(routes!(handlers::export_me))
        .routes(routes!(handlers::delete_me))
}
