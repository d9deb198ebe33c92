//! Every HTTP policy in one stack: request ids and logs, security headers, JSON error bodies,
//! CORS, size limits and the request deadline, in the order a request meets them.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::{Router, middleware as mw};
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::middleware;
use super::request_limits::BODY_LIMIT_BYTES;
use super::{idempotency, prefer};
use crate::telemetry::X_REQUEST_ID;

/// HTTP settings that shape the policies.
#[derive(Debug, Clone, Default)]
pub struct HttpSettings {
    /// Browser origins allowed to call the API; empty turns CORS off, `*` allows any.
    pub cors_allowed_origins: Vec<HeaderValue>,
}

/// Wraps `router` in the policies, outermost first.
pub fn apply(router: Router, settings: &HttpSettings) -> Router {
    let allowed: Arc<[HeaderValue]> = settings.cors_allowed_origins.clone().into();
    router.layer(
        ServiceBuilder::new()
            .layer(mw::from_fn_with_state(allowed, middleware::outer))
            .option_layer(cors(&settings.cors_allowed_origins))
            .layer(mw::from_fn(middleware::inner))
            .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES)),
    )
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
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::IF_MATCH,
                header::IF_NONE_MATCH,
                prefer::PREFER,
                HeaderName::from_static(idempotency::HEADER),
                HeaderName::from_static("last-event-id"),
                X_REQUEST_ID.clone(),
            ])
            .expose_headers([
                header::ETAG,
                header::LOCATION,
                header::LINK,
                header::RETRY_AFTER,
                HeaderName::from_static("x-total-count"),
                HeaderName::from_static("idempotent-replayed"),
                prefer::PREFERENCE_APPLIED,
                HeaderName::from_static("ratelimit"),
                HeaderName::from_static("ratelimit-policy"),
                X_REQUEST_ID.clone(),
            ])
            .max_age(Duration::from_secs(600)),
    )
}
