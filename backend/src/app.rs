//! The application: its state, its routes and the middleware around them.
//!
//! [`router`] builds exactly what production serves, so the tests drive the same stack.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRef, State};
use axum::http::{HeaderValue, Method, header};
use axum::{Json, Router, middleware as mw};
use serde::Serialize;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use crate::auth::Verifier;
use crate::error::{self, ApiError, BODY_LIMIT_BYTES, ErrorBody};
use crate::middleware::{self, X_REQUEST_ID};
use crate::store::TaskStore;
use crate::{tasks, telemetry};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn TaskStore>,
    pub verifier: Arc<Verifier>,
    pub shutdown: ShutdownFlag,
}

/// Raised when the service starts shutting down, so that `/ready` fails (and load balancers
/// stop sending traffic) while in-flight requests finish.
#[derive(Debug, Clone, Default)]
pub struct ShutdownFlag(Arc<AtomicBool>);

impl ShutdownFlag {
    pub fn raise(&self) {
        self.0.store(true, Ordering::Release);
    }

    pub fn is_raised(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

impl FromRef<AppState> for Arc<Verifier> {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}

/// HTTP settings that shape the router.
#[derive(Debug, Clone, Default)]
pub struct HttpSettings {
    /// Browser origins allowed to call the API; empty turns CORS off, `*` allows any.
    pub cors_allowed_origins: Vec<HeaderValue>,
}

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
    modifiers(&BearerAuth),
    tags(
        (name = "tasks", description = "The caller's tasks"),
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
        .routes(routes!(health))
        .routes(routes!(ready))
}

/// The OpenAPI document of the whole API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_routes().split_for_parts().1
}

/// The whole application, ready to serve.
pub fn router(state: AppState, settings: &HttpSettings) -> Router {
    let (api, openapi) = api_routes().split_for_parts();
    let router = api
        .merge(SwaggerUi::new("/docs").url("/openapi.json", openapi))
        .fallback(error::route_not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .layer(mw::from_fn(middleware::timeout));
    let router = match cors(&settings.cors_allowed_origins) {
        Some(cors) => router.layer(cors),
        None => router,
    };
    // Outside the CORS layer, which would answer a foreign preflight 200 with no grant.
    let allowed = settings.cors_allowed_origins.clone();
    let router = router.layer(mw::from_fn(move |request, next| {
        middleware::refuse_foreign_preflight(allowed.clone(), request, next)
    }));
    // Layers run outside-in from the last added: request id, then the span, then the rest.
    router
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(mw::from_fn(telemetry::trace_request))
        .layer(mw::from_fn(middleware::request_id))
        .with_state(state)
}

fn cors(origins: &[HeaderValue]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow_origin = if origins.iter().any(|origin| origin == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().cloned())
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                X_REQUEST_ID.clone(),
            ])
            .expose_headers([header::LOCATION, X_REQUEST_ID.clone()])
            .max_age(Duration::from_secs(600)),
    )
}

/// The body of the probe endpoints.
#[derive(Debug, Serialize, ToSchema)]
struct ProbeStatus {
    #[schema(example = "ok")]
    status: String,
}

/// Liveness: the process is up. Touches nothing else.
#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    responses((status = 200, description = "The process is up", body = ProbeStatus))
)]
async fn health() -> Json<ProbeStatus> {
    Json(ProbeStatus {
        status: "ok".into(),
    })
}

/// Readiness: the service is not shutting down and the database answers.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "operations",
    responses(
        (status = 200, description = "Ready to serve", body = ProbeStatus),
        (status = 503, description = "Shutting down, or the database does not answer", body = ErrorBody),
    )
)]
async fn ready(State(state): State<AppState>) -> Result<Json<ProbeStatus>, ApiError> {
    if state.shutdown.is_raised() {
        return Err(ApiError::Unavailable);
    }
    state.store.ping().await.map_err(|error| {
        tracing::warn!(%error, "readiness check failed");
        ApiError::Unavailable
    })?;
    Ok(Json(ProbeStatus {
        status: "ready".into(),
    }))
}
