//! The query string of `GET /api/tasks/changes`: where the page starts and how long it is.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use utoipa::IntoParams;

use crate::domain::{ChangeCursor, FeedLimit};
use crate::http::ApiError;

/// A parsed change-feed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedRequest {
    pub since: ChangeCursor,
    pub limit: u32,
    /// Whether the lists' own entries come too (`include=lists`).
    pub lists: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for FeedRequest {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parse(parts.uri.query().unwrap_or_default())
    }
}

/// Parses a feed query string. Unknown parameters are ignored, as on the list; a known one
/// that repeats or has a bad value is a 422 naming it.
pub fn parse(raw: &str) -> Result<FeedRequest, ApiError> {
    let mut request = FeedRequest {
        since: ChangeCursor::START,
        limit: FeedLimit::DEFAULT,
        lists: false,
    };
    let mut seen = (false, false);
    for (key, value) in crate::http::extract::query_pairs(raw)? {
        let first = match key.as_str() {
            "since" => !std::mem::replace(&mut seen.0, true),
            "limit" => !std::mem::replace(&mut seen.1, true),
            "include" => match value.as_str() {
                "lists" => {
                    request.lists = true;
                    continue;
                }
                _ => return Err(ApiError::invalid_field("include", "must be lists")),
            },
            _ => continue,
        };
        if !first {
            return Err(ApiError::invalid_field(key, "must not be repeated"));
        }
        match key.as_str() {
            // An empty `since` is the start, like no `since`: some clients always send it.
            "since" if value.is_empty() => {}
            "since" => {
                request.since = value
                    .parse()
                    .map_err(|error: crate::domain::InvalidCursor| {
                        ApiError::invalid_field("since", error.to_string())
                    })?;
            }
            _ => {
                request.limit = value
                    .parse::<u32>()
                    .ok()
                    .filter(|_| value.bytes().all(|b| b.is_ascii_digit()))
                    .filter(|limit| (1..=FeedLimit::MAX).contains(limit))
                    .ok_or_else(|| {
                        ApiError::invalid_field(
                            "limit",
                            format!("must be an integer from 1 to {}", FeedLimit::MAX),
                        )
                    })?;
            }
        }
    }
    Ok(request)
}

/// The parameters of `GET /api/tasks/changes`, for the OpenAPI document.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct FeedParams {
    /// Where to start: the `next_cursor` of the previous page (or an event id). Without it,
    /// the feed starts from the beginning.
    #[param(pattern = "^[0-9]{0,19}$")]
    since: Option<String>,
    /// `lists`: the lists' own entries too (a list created, joined, changed, or lost).
    #[param(pattern = "^lists$")]
    include: Option<String>,
    /// How many changes at most, 1–1000; 100 by default.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(raw: &str) -> Option<String> {
        match parse(raw) {
            Err(ApiError::Validation { errors, .. }) => Some(errors[0].field.clone()),
            _ => None,
        }
    }

    #[test]
    fn defaults_and_values() {
        let request = parse("").expect("valid");
        assert_eq!(request.since, ChangeCursor::START);
        assert_eq!(request.limit, 100);
        let request = parse("since=42&limit=1000&x=1").expect("valid");
        assert_eq!(request.since.get(), 42);
        assert_eq!(request.limit, 1000);
        assert_eq!(
            parse("since=").map(|r| r.since).ok(),
            Some(ChangeCursor::START)
        );
    }

    #[test]
    fn bad_values_name_their_parameter() {
        for (raw, field) in [
            ("since=x", "since"),
            ("since=-1", "since"),
            ("since=1&since=2", "since"),
            ("limit=0", "limit"),
            ("limit=1001", "limit"),
            ("limit=%2B5", "limit"),
            ("limit=5&limit=5", "limit"),
        ] {
            assert_eq!(field_of(raw).as_deref(), Some(field), "{raw}");
        }
    }
}
