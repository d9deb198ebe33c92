//! The one error type of the HTTP layer.
//!
//! Every failure a client can see, whether raised by a handler, an extractor or the router
//! itself, becomes an [`ApiError`], and every `ApiError` becomes the same JSON body:
//! `{"detail": "...", "status_code": N}`, plus `errors` for validation failures.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::AuthError;
use crate::store::StoreError;

use super::request_limits::{
    BODY_LIMIT_BYTES, DAV_BODY_LIMIT_BYTES, MAX_HEADER_BYTES, MAX_HEADERS, MAX_URI_BYTES,
};

/// How long a client should wait before retrying after a 503, in seconds.
const RETRY_AFTER_SECONDS: &str = "1";

/// The JSON body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A human-readable sentence saying what went wrong.
    #[schema(example = "task not found")]
    pub detail: String,
    /// The HTTP status code, repeated for clients that only see the body.
    #[schema(example = 404)]
    pub status_code: u16,
    /// For 422 responses: which input was wrong and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

/// One invalid input: a body field, a query parameter or a path parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The name of the input, e.g. `title`, `limit` or `task_id`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Unauthorized(AuthError),
    /// The task does not exist, or belongs to someone else: the two are indistinguishable.
    #[error("task not found")]
    TaskNotFound,
    /// The list does not exist, or the caller is not a member: the two are indistinguishable.
    #[error("list not found")]
    ListNotFound,
    /// Something else the request names does not exist (for the caller).
    #[error("{0}")]
    Missing(&'static str),
    /// A member of the list without the role the request needs.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The request conflicts with the current state.
    #[error("{0}")]
    Conflict(&'static str),
    /// The list already holds a task with the uid the request gives: `Location` names it.
    #[error("the list already holds a task with this uid: /api/tasks/{0}")]
    UidTaken(crate::domain::TaskId),
    #[error("no route for {0}")]
    RouteNotFound(String),
    #[error("method not allowed for this path")]
    MethodNotAllowed,
    #[error("cross-origin requests from this origin are not allowed")]
    OriginNotAllowed,
    /// A malformed header: a condition or a key the client meant but wrote wrong.
    #[error("{0}")]
    BadRequest(String),
    /// `If-Match` named another version than the task's; `etag` is the current one.
    #[error("the task has changed since you read it (its ETag is now {}); fetch it and retry", etag.to_str().unwrap_or_default())]
    PreconditionFailed { etag: HeaderValue },
    #[error("a request with this Idempotency-Key is still in progress; retry shortly")]
    KeyInFlight,
    #[error(
        "changes after this cursor are no longer kept: sync again from the start, without since"
    )]
    HistoryExpired,
    #[error("{detail}")]
    Validation {
        detail: String,
        errors: Vec<FieldError>,
    },
    #[error("the request target is longer than {} KiB", MAX_URI_BYTES / 1024)]
    UriTooLong,
    #[error(
        "the request carries more than {} headers or {} KiB of them",
        MAX_HEADERS,
        MAX_HEADER_BYTES / 1024
    )]
    HeadersTooLarge,
    #[error("request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    #[error("request body is larger than the {} KiB limit", BODY_LIMIT_BYTES / 1024)]
    PayloadTooLarge,
    #[error("request body is larger than the {} KiB limit of calendar requests", DAV_BODY_LIMIT_BYTES / 1024)]
    CalendarBodyTooLarge,
    #[error("the request took too long to process")]
    Timeout,
    #[error("the service is temporarily unavailable, retry shortly")]
    Unavailable,
    /// Over a rate limit; the verdict says which, and when to retry.
    #[error("too many requests: over the {} rate limit; retry in {} s", .0.policy, .0.retry_after_seconds())]
    RateLimited(crate::rate_limits::Verdict),
    /// The user already has this many event streams open on this instance.
    #[error("too many open event streams for this user (at most {0}); close one and retry")]
    TooManyStreams(usize),
    /// Anything else. The cause is logged; the client only learns that it happened.
    #[error("internal server error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// A 422 for a single invalid input.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let (field, message) = (field.into(), message.into());
        ApiError::Validation {
            detail: format!("invalid {field}: {message}"),
            errors: vec![FieldError { field, message }],
        }
    }

    pub fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::TaskNotFound
            | ApiError::ListNotFound
            | ApiError::Missing(_)
            | ApiError::RouteNotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Conflict(_) | ApiError::UidTaken(_) => StatusCode::CONFLICT,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::OriginNotAllowed => StatusCode::FORBIDDEN,
            ApiError::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            ApiError::KeyInFlight => StatusCode::CONFLICT,
            ApiError::TooManyStreams(_) | ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::HistoryExpired => StatusCode::GONE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge | ApiError::CalendarBodyTooLarge => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ApiError::UriTooLong => StatusCode::URI_TOO_LONG,
            ApiError::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::Timeout | ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::KeysUnavailable => ApiError::Unavailable,
            other => ApiError::Unauthorized(other),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => ApiError::TaskNotFound,
            StoreError::ListNotFound => ApiError::ListNotFound,
            StoreError::Missing(what) => ApiError::Missing(what),
            StoreError::Forbidden(why) => ApiError::Forbidden(why),
            StoreError::Invalid { field, message } => ApiError::invalid_field(field, message),
            StoreError::Conflict(why) => ApiError::Conflict(why),
            StoreError::UidTaken(id) => ApiError::UidTaken(id),
            StoreError::VersionMismatch { id, version } => ApiError::PreconditionFailed {
                etag: super::etag::task_etag(id, version),
            },
            StoreError::KeyInFlight => ApiError::KeyInFlight,
            StoreError::KeyReused => ApiError::invalid_field(
                "Idempotency-Key",
                "was used with a different request; use a new key for a new request",
            ),
            StoreError::HistoryExpired => ApiError::HistoryExpired,
            StoreError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "database unavailable");
                ApiError::Unavailable
            }
            StoreError::Other(cause) => ApiError::Internal(cause),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        if let ApiError::Internal(cause) = &self {
            // Logged inside the request span, so the line carries the request id.
            tracing::error!(error = %cause, "request failed");
        }
        let body = ErrorBody {
            detail: self.to_string(),
            status_code: status.as_u16(),
            errors: match &self {
                ApiError::Validation { errors, .. } => Some(errors.clone()),
                _ => None,
            },
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        match &self {
            ApiError::Unauthorized(error) => {
                headers.insert(header::WWW_AUTHENTICATE, error.www_authenticate());
            }
            ApiError::Unavailable
            | ApiError::Timeout
            | ApiError::KeyInFlight
            | ApiError::TooManyStreams(_) => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_static(RETRY_AFTER_SECONDS),
                );
            }
            ApiError::PreconditionFailed { etag } => {
                headers.insert(header::ETAG, etag.clone());
            }
            ApiError::UidTaken(id) => {
                if let Ok(location) = HeaderValue::from_str(&format!("/api/tasks/{id}")) {
                    headers.insert(header::LOCATION, location);
                }
            }
            ApiError::RateLimited(verdict) => {
                verdict.write_headers(headers);
                headers.insert(header::RETRY_AFTER, verdict.retry_after_seconds().into());
            }
            _ => {}
        }
        response
    }
}

/// The JSON error body for a response that has none: a status set below the handlers (by a
/// library's own handler or layer) without a body of ours.
pub fn bare_status_body(status: StatusCode) -> Response {
    let body = ErrorBody {
        detail: status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_ascii_lowercase(),
        status_code: status.as_u16(),
        errors: None,
    };
    (status, Json(body)).into_response()
}

/// Router fallback: unknown paths get the JSON 404.
pub async fn route_not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::RouteNotFound(uri.path().to_owned())
}

/// Router fallback for a known path with the wrong method; axum adds the `Allow` header.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn render(error: ApiError) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
        let response = error.into_response();
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.expect("body").to_bytes();
        let json = serde_json::from_slice(&bytes).expect("error body is JSON");
        (parts.status, parts.headers, json)
    }

    #[tokio::test]
    async fn every_error_renders_its_status_in_header_and_body() {
        let cases: Vec<(ApiError, u16)> = vec![
            (ApiError::Unauthorized(AuthError::MissingToken), 401),
            (ApiError::TaskNotFound, 404),
            (ApiError::RouteNotFound("/nope".into()), 404),
            (ApiError::MethodNotAllowed, 405),
            (ApiError::OriginNotAllowed, 403),
            (ApiError::invalid_field("title", "must not be blank"), 422),
            (ApiError::UnsupportedMediaType, 415),
            (ApiError::PayloadTooLarge, 413),
            (ApiError::UriTooLong, 414),
            (ApiError::HeadersTooLarge, 431),
            (ApiError::Timeout, 503),
            (ApiError::Unavailable, 503),
            (ApiError::Internal("boom".into()), 500),
        ];
        for (error, expected) in cases {
            let name = format!("{error:?}");
            let (status, _, body) = render(error).await;
            assert_eq!(status.as_u16(), expected, "{name}");
            assert_eq!(body["status_code"], expected, "{name}");
            assert!(
                body["detail"].as_str().is_some_and(|d| !d.is_empty()),
                "{name}"
            );
        }
    }

    #[tokio::test]
    async fn internal_errors_do_not_leak_their_cause() {
        let (_, _, body) = render(ApiError::Internal("password=hunter2".into())).await;
        assert_eq!(body["detail"], "internal server error");
        assert!(!body.to_string().contains("hunter2"));
    }

    #[tokio::test]
    async fn validation_errors_list_the_field() {
        let (_, _, body) = render(ApiError::invalid_field("limit", "must be 1 to 100")).await;
        assert_eq!(body["errors"][0]["field"], "limit");
        assert_eq!(body["errors"][0]["message"], "must be 1 to 100");
    }

    #[tokio::test]
    async fn unavailable_tells_the_client_when_to_retry() {
        let (_, headers, _) = render(ApiError::Unavailable).await;
        assert_eq!(headers[header::RETRY_AFTER], RETRY_AFTER_SECONDS);
    }

    #[tokio::test]
    async fn unauthorized_carries_www_authenticate() {
        let (_, headers, body) = render(ApiError::Unauthorized(AuthError::Expired)).await;
        let challenge = headers[header::WWW_AUTHENTICATE].to_str().expect("ascii");
        assert!(challenge.starts_with("Bearer"), "{challenge}");
        assert!(
            challenge.contains(r#"error="invalid_token""#),
            "{challenge}"
        );
        assert_eq!(body["detail"], "token has expired");
    }

    #[test]
    fn errors_other_than_validation_have_no_errors_list() {
        let body = ErrorBody {
            detail: "x".into(),
            status_code: 404,
            errors: None,
        };
        let json = serde_json::to_value(body).expect("serializes");
        assert!(json.get("errors").is_none());
    }
}
