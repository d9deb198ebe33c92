//! Request policies written as middleware: the deadline, limits on what a request may
//! declare, CORS preflights from foreign origins, and JSON bodies on every error.
//!
//! [`super::policy`] stacks them in order.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::{self, ApiError};
use super::limits::{
    BODY_LIMIT_BYTES, MAX_HEADER_BYTES, MAX_HEADERS, MAX_URI_BYTES, REQUEST_TIMEOUT,
};

/// Answers a CORS preflight from an origin that is not allowed with a clear 403, instead of
/// the 200-without-permission (or 405) a browser would otherwise get.
pub async fn refuse_foreign_preflight(
    State(allowed): State<Arc<[HeaderValue]>>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let is_preflight = request.method() == axum::http::Method::OPTIONS
        && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if let Some(origin) = headers.get(header::ORIGIN).filter(|_| is_preflight) {
        let permitted = allowed
            .iter()
            .any(|allowed| allowed == "*" || allowed == origin);
        if !permitted {
            return ApiError::OriginNotAllowed.into_response();
        }
    }
    next.run(request).await
}

/// Answers 503 when the handler has not finished within [`REQUEST_TIMEOUT`].
pub async fn timeout(request: Request, next: Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout.into_response(),
    }
}

/// Refuses, before anything is read, a request whose target or headers exceed the limits,
/// or whose declared body is larger than the body limit (so a client declaring a gigabyte
/// gets a 413 at once instead of holding the connection until the deadline).
pub async fn limit_request_head(request: Request, next: Next) -> Response {
    let uri_bytes = request
        .uri()
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    if uri_bytes > MAX_URI_BYTES {
        return ApiError::UriTooLong.into_response();
    }
    let headers = request.headers();
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > MAX_HEADERS || header_bytes > MAX_HEADER_BYTES {
        return ApiError::HeadersTooLarge.into_response();
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > BODY_LIMIT_BYTES as u64) {
        return ApiError::PayloadTooLarge.into_response();
    }
    next.run(request).await
}

/// Gives an error response that has no body of its own (a library's 404 or 405, say) the
/// API's JSON error body, so that every error a client sees has the same shape.
pub async fn json_error_bodies(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
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
