//! The application: its routes, its OpenAPI document and the policies around them.
//!
//! [`router`] builds exactly what production serves, so the tests drive the same stack.

use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use crate::http::policy::{self, HttpSettings};
use crate::http::{AppState, ErrorBody, error};
use crate::{changes, dav, lists, probes, tasks};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "todo-backend",
        description = "Each user's tasks, behind a bearer JWT.\n\n\
            Every `/api` route needs `Authorization: Bearer <JWT>`; the token's `sub` is the \
            user, and a user only ever sees their own tasks: another user's task is a 404, \
            exactly like a missing one.\n\n\
            Every error is `{\"detail\": \"...\", \"status_code\": N}`; a 422 adds `errors`, \
            one entry per invalid field. Unknown body fields are refused (422). Unknown query \
            parameters are ignored. A PUT with an empty object changes nothing and returns the \
            task as it is."
    ),
    // The shared error responses of `http::responses` refer to `ErrorBody` without
    // registering it, as a route's own `body = ...` does.
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth),
    tags(
        (name = "tasks", description = "The tasks of the caller's lists"),
        (name = "lists", description = "The caller's lists: their own, and those shared with them"),
        (name = "sharing", description = "Members, roles, invitations, and the caller's data"),
        (name = "calendars", description = "App passwords for calendar apps, which sync the lists over CalDAV at `/dav/`"),
        (name = "operations", description = "Liveness and readiness probes")
    )
)]
struct ApiDoc;

/// Declares the bearer-token security scheme the task routes refer to.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(tasks::routes())
        .merge(lists::routes())
        .merge(changes::routes())
        .merge(dav::api_routes())
        .routes(routes!(probes::health))
        .routes(routes!(probes::ready))
}

/// The OpenAPI document of the whole API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    crate::openapi::complete(api_routes().split_for_parts().1)
}

/// The whole application, ready to serve.
pub fn router(state: AppState, settings: &HttpSettings) -> Router {
    let (api, openapi) = api_routes().split_for_parts();
    let openapi = crate::openapi::complete(openapi);
    let routes = api
        .merge(SwaggerUi::new("/docs").url("/openapi.json", openapi))
        .merge(dav::routes())
        .fallback(error::route_not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .with_state(state);
    policy::apply(routes, settings)
}
