//! Cross-cutting HTTP behaviour: request ids and the request deadline.

use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// The header that carries a request's id, in and out.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest a request may take before it is answered with a 503.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The id of the current request, as a request extension.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Gives every request an id: the client's `X-Request-Id` when it is sane, else a new UUID.
/// The id goes into the logs and back to the client, so one can quote it in a bug report.
pub async fn request_id(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| is_sane(id))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    let header = HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("-"));
    request
        .headers_mut()
        .insert(X_REQUEST_ID.clone(), header.clone());
    request.extensions_mut().insert(RequestId(id));
    let mut response = next.run(request).await;
    response.headers_mut().insert(X_REQUEST_ID.clone(), header);
    response
}

/// Short, and made only of characters that cannot forge log lines or headers.
fn is_sane(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Answers a CORS preflight from an origin that is not allowed with a clear 403, instead of
/// the 200-without-permission (or 405) a browser would otherwise get.
pub async fn refuse_foreign_preflight(
    allowed: Vec<HeaderValue>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_from_clients_are_checked() {
        assert!(is_sane("abc-123_x.y:z"));
        assert!(is_sane(&"a".repeat(128)));
        for bad in ["", " ", "a b", "a\nb", "<script>", &"a".repeat(129)] {
            assert!(!is_sane(bad), "{bad:?}");
        }
    }
}
