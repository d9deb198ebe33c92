//! Request policies written as middleware, in two layers around CORS (one each, so that a
//! request pays for two middleware calls, not one per policy): request ids, logs, safety
//! headers, JSON error bodies and foreign preflights outside it; limits on what a request may
//! declare, the deadline and the quota headers inside it.
//!
//! [`super::policy`] stacks them in order.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::{self, ApiError};
use super::request_limits::{
    BODY_LIMIT_BYTES, DAV_BODY_LIMIT_BYTES, MAX_HEADER_BYTES, MAX_HEADERS, MAX_URI_BYTES,
    REQUEST_TIMEOUT,
};
use crate::telemetry::{self, X_REQUEST_ID};

/// Outside CORS, outermost first: an id for the request (so that the log line and every
/// response carry it), its span, log line and metrics, the safety headers, a JSON body for
/// every error, and a clear 403 for a foreign preflight (before the CORS layer, which would
/// answer it 200 with no grant).
pub async fn outer(
    State(allowed): State<Arc<[HeaderValue]>>,
    mut request: Request,
    next: Next,
) -> Response {
    let id = telemetry::assign_request_id(&mut request);
    let mut response = telemetry::traced(request, async |request| {
        let response = match refuse_foreign_preflight(&allowed, &request) {
            Some(refusal) => refusal,
            None => next.run(request).await,
        };
        let mut response = json_error_body(response);
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        response
    })
    .await;
    response.headers_mut().insert(X_REQUEST_ID.clone(), id);
    response
}

/// Inside CORS, so that a browser can read why its request was refused: the limits on the
/// request's head, then the deadline around the handler and the quota headers.
pub async fn inner(request: Request, next: Next) -> Response {
    if let Err(refusal) = check_request_head(&request) {
        return refusal.into_response();
    }
    let handled = crate::rate_limits::quota_headers(request, next);
    match tokio::time::timeout(REQUEST_TIMEOUT, handled).await {
        Ok(response) => response,
        // The handler has not finished within the deadline.
        Err(_) => ApiError::Timeout.into_response(),
    }
}

/// A clear 403 for a CORS preflight from an origin that is not allowed, instead of the
/// 200-without-permission (or 405) a browser would otherwise get.
fn refuse_foreign_preflight(allowed: &[HeaderValue], request: &Request) -> Option<Response> {
    let headers = request.headers();
    let is_preflight = request.method() == axum::http::Method::OPTIONS
        && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let origin = headers.get(header::ORIGIN).filter(|_| is_preflight)?;
    let permitted = allowed
        .iter()
        .any(|allowed| allowed == "*" || allowed == origin);
    (!permitted).then(|| ApiError::OriginNotAllowed.into_response())
}

/// Refuses, before anything is read, a request whose target or headers exceed the limits,
/// or whose declared body is larger than the body limit (so a client declaring a gigabyte
/// gets a 413 at once instead of holding the connection until the deadline).
fn check_request_head(request: &Request) -> Result<(), ApiError> {
    let uri_bytes = request
        .uri()
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    if uri_bytes > MAX_URI_BYTES {
        return Err(ApiError::UriTooLong);
    }
    let headers = request.headers();
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > MAX_HEADERS || header_bytes > MAX_HEADER_BYTES {
        return Err(ApiError::HeadersTooLarge);
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    // Calendar apps send iCalendar objects, which may carry an attachment.
    let (limit, too_large) = match request.uri().path().starts_with("/dav/") {
        true => (DAV_BODY_LIMIT_BYTES, ApiError::CalendarBodyTooLarge),
        false => (BODY_LIMIT_BYTES, ApiError::PayloadTooLarge),
    };
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large);
    }
    Ok(())
}

/// Gives an error response that has no body of its own (a library's 404 or 405, say) the
/// API's JSON error body, so that every error a client sees has the same shape.
fn json_error_body(response: Response) -> Response {
    let status = response.status();
    if (status.is_client_error() || status.is_server_error())
        && !response.headers().contains_key(header::CONTENT_TYPE)
    {
        let mut replaced = error::bare_status_body(status);
        for (name, value) in response.headers() {
            if name != header::CONTENT_LENGTH {
                replaced.headers_mut().append(name, value.clone());
            }
        }
        return replaced;
    }
    response
}
