//! Request extractors that reject with [`ApiError`] instead of axum's plain-text rejections.
//!
//! axum's own `Json`, `Query` and `Path` answer bad input with text bodies and, for JSON, a
//! 400/422 split. These wrappers give every rejection the API's JSON error body and name the
//! offending field, so a client can show the message next to the right input. [`AuthUser`]
//! is the only way a handler learns who is calling.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, StatusCode, header, request::Parts};
use serde::de::DeserializeOwned;
use tracing::field;

use super::error::{ApiError, FieldError};

use crate::auth::{self, AuthError, Verified, Verifier};
use crate::domain::{TaskId, UserId};
use crate::rate_limits::{Limiter, QuotaSlot};

/// The TCP peer of a request: the server puts it into every request's extensions, and
/// [`AuthUser`] counts a failed authentication against it (or against the client a trusted
/// proxy names). It lives here, with its reader, because the server sits above the HTTP layer
/// and this layer does not import it.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// The authenticated caller. Taking this as a handler argument makes the route require a
/// valid bearer token; without one the request gets a 401 before the handler runs.
#[derive(Debug, Clone)]
pub struct AuthUser(pub UserId);

/// The authenticated caller and when their token expires (`exp`, seconds since the Unix
/// epoch): for a response that outlives the request, such as the event stream.
#[derive(Debug, Clone)]
pub struct AuthUntil {
    pub user: UserId,
    pub expires_at: u64,
}

impl<S> FromRequestParts<S> for AuthUser
where
    Arc<Verifier>: FromRef<S>,
    Arc<Limiter>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        AuthUntil::from_request_parts(parts, state)
            .await
            .map(|caller| AuthUser(caller.user))
    }
}

impl<S> FromRequestParts<S> for AuthUntil
where
    Arc<Verifier>: FromRef<S>,
    Arc<Limiter>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let limiter = Arc::<Limiter>::from_ref(state);
        let verified = match auth::bearer_token(&parts.headers) {
            Ok(token) => Arc::<Verifier>::from_ref(state).verify_until(token).await,
            Err(error) => Err(error),
        };
        let Verified { user, expires_at } = match verified {
            Ok(verified) => verified,
            Err(error) => {
                // The client gets the reason in its detail; the operator gets it in the
                // request's log line, beside its id (a wrong `iss` or `aud` is a configuration
                // mistake, and "401" alone does not say so).
                tracing::Span::current().record("auth_error", field::display(&error));
                // Failed authentication counts against the client's address: guessing tokens
                // costs a quota. (No peer in process-local tests: nothing to count.)
                if matches!(error, AuthError::KeysUnavailable) {
                    return Err(error.into());
                }
                let peer = parts.extensions.get::<PeerAddr>().map(|peer| peer.0.ip());
                if let Some(peer) = peer
                    && let Some(verdict) = limiter.failed_authentication(peer, &parts.headers).await
                    && !verdict.decision.allowed
                {
                    return Err(ApiError::RateLimited(verdict));
                }
                return Err(error.into());
            }
        };
        tracing::Span::current().record("user_id", user.as_str());
        if let Some(verdict) = limiter.user(&user).await {
            if !verdict.decision.allowed {
                return Err(ApiError::RateLimited(verdict));
            }
            if let Some(slot) = parts.extensions.get::<QuotaSlot>() {
                slot.put(verdict);
            }
        }
        Ok(AuthUntil { user, expires_at })
    }
}

/// The `{task_id}` path parameter: a positive integer in canonical form, else 422.
///
/// Read from the raw path, before percent-decoding: `/api/tasks/%31` is not task 1, so that
/// every task has exactly one URL.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(names("task_id"), parameter_in = Path)]
pub struct TaskIdParam(#[param(value_type = i64, minimum = 1)] pub TaskId);

impl<S: Send + Sync> FromRequestParts<S> for TaskIdParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // Every route with a task id is `/api/tasks/{task_id}[/...]`.
        let raw = parts.uri.path().split('/').nth(3).unwrap_or_default();
        raw.parse()
            .map(TaskIdParam)
            .map_err(|error: crate::domain::InvalidTaskId| {
                ApiError::invalid_field("task_id", error.to_string())
            })
    }
}

/// The `{list_id}` of a list route, in its canonical form only, as a task id.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(names("list_id"), parameter_in = Path)]
pub struct ListIdParam(#[param(value_type = i64, minimum = 1)] pub crate::domain::ListId);

impl<S: Send + Sync> FromRequestParts<S> for ListIdParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // Every route with a list id is `/api/lists/{list_id}[/...]`.
        let raw = parts.uri.path().split('/').nth(3).unwrap_or_default();
        raw.parse()
            .map(ListIdParam)
            .map_err(|error: crate::domain::InvalidTaskId| {
                ApiError::invalid_field("list_id", error.to_string())
            })
    }
}

/// A JSON request body, deserialized into `T` (whose types validate themselves).
#[derive(Debug)]
pub struct ValidJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ValidJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = json_bytes(request, state).await?;
        parse_json(&bytes).map(ValidJson)
    }
}

/// A JSON Merge Patch body (RFC 7396), deserialized into `T`: sent as
/// `application/merge-patch+json` or plain `application/json`. Any other JSON type is a 415,
/// above all `application/json-patch+json` (RFC 6902), whose array of operations means
/// something else entirely and must not be applied as a merge.
#[derive(Debug)]
pub struct MergePatch<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for MergePatch<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let essence = content_type_essence(request.headers());
        if !matches!(
            essence.as_deref(),
            Some("application/merge-patch+json" | "application/json")
        ) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = json_bytes(request, state).await?;
        parse_json(&bytes).map(MergePatch)
    }
}

/// The bytes of a JSON request body: 415 unless it says it is JSON, 413 beyond the limit.
pub async fn json_bytes<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, ApiError> {
    if !has_json_content_type(request.headers()) {
        return Err(ApiError::UnsupportedMediaType);
    }
    // `Bytes` honours the router's `DefaultBodyLimit`, chunked bodies included.
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::invalid_field("body", "could not be read")
            }
        })
}

fn has_json_content_type(headers: &HeaderMap) -> bool {
    content_type_essence(headers).is_some_and(|essence| {
        essence == "application/json"
            || (essence.starts_with("application/") && essence.ends_with("+json"))
    })
}

/// The media type of the body, lowercased, without its parameters.
fn content_type_essence(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next().unwrap_or_default().trim();
    Some(essence.to_ascii_lowercase())
}

/// The pairs of a query string, decoded (`+` is a space, `%XX` a byte). A key or value that is
/// not UTF-8 once decoded is a 422: decoding it lossily would search for, or compare with,
/// text the client never sent.
pub fn query_pairs(raw: &str) -> Result<Vec<(String, String)>, ApiError> {
    let decode = |part: &str| {
        let spaced = part.replace('+', " ");
        percent_encoding::percent_decode_str(&spaced)
            .decode_utf8()
            .map(std::borrow::Cow::into_owned)
    };
    raw.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let key =
                decode(key).map_err(|_| ApiError::invalid_field("query", "must be valid UTF-8"))?;
            let value =
                decode(value).map_err(|_| ApiError::invalid_field(&key, "must be valid UTF-8"))?;
            Ok((key, value))
        })
        .collect()
}

/// Parses a whole JSON object into `T`, naming the field that failed.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Every body of this API is an object. serde would also accept a struct written as an
    // array of its fields (`["title"]`), which no client means: refuse it up front.
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|&b| b != b'{') {
        return Err(ApiError::invalid_field("body", "must be a JSON object"));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let message = without_position(&inner);
        if inner.is_data() {
            field_error(&path, message)
        } else {
            ApiError::Validation {
                detail: format!("request body is not valid JSON: {message}"),
                errors: vec![FieldError {
                    field: "body".into(),
                    message,
                }],
            }
        }
    })?;
    // Trailing bytes after the document (`{"title":"a"} x`) are malformed JSON too.
    deserializer.end().map_err(|error| ApiError::Validation {
        detail: format!(
            "request body is not valid JSON: {}",
            without_position(&error)
        ),
        errors: vec![FieldError {
            field: "body".into(),
            message: without_position(&error),
        }],
    })?;
    Ok(value)
}

/// serde_json appends " at line L column C", which means little to an API client.
fn without_position(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    message
        .strip_suffix(&suffix)
        .map(str::to_owned)
        .unwrap_or(message)
}

/// Turns a deserialization failure at `path` into a 422 that names the field.
///
/// Errors about the object as a whole (a missing, unknown or duplicate field) are reported
/// at the root path by serde, with the field's name in backticks in the message.
fn field_error(path: &str, message: String) -> ApiError {
    let field = if path == "." {
        backticked_name(&message).unwrap_or("body").to_owned()
    } else {
        path.to_owned()
    };
    ApiError::invalid_field(field, message)
}

fn backticked_name(message: &str) -> Option<&str> {
    let known = ["missing field `", "unknown field `", "duplicate field `"];
    known.iter().find_map(|prefix| {
        let rest = message.strip_prefix(prefix)?;
        rest.split('`').next()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        count: u8,
    }

    fn field_of(error: ApiError) -> String {
        match error {
            ApiError::Validation { errors, .. } => errors[0].field.clone(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn json_errors_name_the_field() {
        let cases = [
            (r#"{"name":"a","count":"x"}"#, "count"),
            (r#"{"name":"a","count":300}"#, "count"),
            (r#"{"count":1}"#, "name"),
            (r#"{"name":"a","count":1,"admin":true}"#, "admin"),
            (r#"{"name":"a","name":"b","count":1}"#, "name"),
            (r#"{"name":"a""#, "body"),
            (r#"[]"#, "body"),
            (r#"["a", 1]"#, "body"),
            ("null", "body"),
            (r#"{"name":"a","count":1} trailing"#, "body"),
            ("", "body"),
        ];
        for (json, field) in cases {
            let error = parse_json::<Body>(json.as_bytes()).expect_err(json);
            assert_eq!(field_of(error), field, "{json}");
        }
    }

    #[test]
    fn json_messages_drop_the_line_and_column() {
        let error = parse_json::<Body>(br#"{"name":"a","count":"x"}"#).expect_err("bad count");
        let ApiError::Validation { errors, .. } = error else {
            panic!("expected validation error");
        };
        assert!(!errors[0].message.contains("line"), "{}", errors[0].message);
    }

    #[test]
    fn deeply_nested_json_is_refused_not_overflowed() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse_json::<serde_json::Value>(deep.as_bytes()).is_err());
    }

    #[test]
    fn query_strings_decode_strictly() {
        let pairs = query_pairs("q=milk+%26+eggs&tag=%C3%A9t%C3%A9&&flag").expect("valid");
        assert_eq!(
            pairs,
            [
                ("q".to_owned(), "milk & eggs".to_owned()),
                ("tag".to_owned(), "été".to_owned()),
                ("flag".to_owned(), String::new()),
            ]
        );
        for bad in ["q=%FF", "q=%C3", "%FF=1", "q=%ED%A0%80"] {
            assert!(query_pairs(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_content_types() {
        let mut headers = HeaderMap::new();
        assert!(!has_json_content_type(&headers));
        for (value, ok) in [
            ("application/json", true),
            ("application/json; charset=utf-8", true),
            ("Application/JSON", true),
            ("application/merge-patch+json", true),
            ("text/plain", false),
            ("application/x-www-form-urlencoded", false),
            ("text/json+xml", false),
        ] {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
            assert_eq!(has_json_content_type(&headers), ok, "{value}");
        }
    }
}
