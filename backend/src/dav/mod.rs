//! Calendar clients over CalDAV (docs/calendar-apps.md): every list the caller can read is a
//! calendar of VTODOs at `/dav/calendars/{user}/{list_id}/`, signed in to with an app
//! password (`/api/app-passwords`).
//!
//! `auth` signs the caller in; `paths` maps URLs to resources; `xml` reads the WebDAV bodies
//! and writes the answers; `ical` reads and writes iCalendar; `mapping` turns a VTODO into a
//! task and back; `objects` loads a calendar's tasks; `query` evaluates calendar-query
//! filters; `handlers` answers each method through the same store calls as the JSON API.

pub mod app_passwords;
mod auth;
mod handlers;
pub mod ical;
mod mapping;
mod objects;
mod paths;
mod query;
mod xml;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::any;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::AppState;

/// `/api/app-passwords`, with their OpenAPI descriptions.
pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(
            app_passwords::create_app_password,
            app_passwords::list_app_passwords
        ))
        .routes(routes!(app_passwords::delete_app_password))
}

/// `/dav/` and `/.well-known/caldav`: not in the OpenAPI document (WebDAV's methods and XML
/// bodies are not what it describes).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/.well-known/caldav", any(handlers::well_known))
        .route("/dav", any(handlers::dav))
        .route("/dav/", any(handlers::dav))
        .route("/dav/{*path}", any(handlers::dav))
        .layer(DefaultBodyLimit::max(handlers::MAX_BODY_BYTES))
}
