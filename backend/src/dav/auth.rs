//! Who is calling `/dav/`: HTTP Basic with the user's id and one of their app passwords.
//! Calendar apps cannot get a Better Auth token; a bearer token is not accepted here, and an
//! app password is not accepted anywhere else.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::domain::UserId;
use crate::http::extract::PeerAddr;
use crate::http::{ApiError, AppState, ErrorBody};
use crate::rate_limits::QuotaSlot;

/// What a calendar app is asked for: a user name and a password, in UTF-8.
const CHALLENGE: &str = r#"Basic realm="todo-backend", charset="UTF-8""#;

/// The caller of a `/dav/` request, signed in with an app password.
#[derive(Debug, Clone)]
pub struct DavUser(pub UserId);

/// Why a `/dav/` request is not signed in.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DavAuthError {
    #[error("sign in with your user id and an app password (HTTP Basic)")]
    Missing,
    #[error("the Authorization header is not HTTP Basic user:password")]
    Malformed,
    #[error("the user name or the app password is wrong, or the password was revoked")]
    Refused,
}

impl IntoResponse for DavAuthError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            detail: self.to_string(),
            status_code: 401,
            errors: None,
        };
        let mut response = (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(CHALLENGE),
        );
        response
    }
}

/// The user name and password of the request's one Basic `Authorization` header.
pub fn credentials(headers: &HeaderMap) -> Result<(UserId, String), DavAuthError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next().ok_or(DavAuthError::Missing)?;
    if values.next().is_some() {
        return Err(DavAuthError::Malformed);
    }
    let value = value.to_str().map_err(|_| DavAuthError::Malformed)?.trim();
    let (scheme, encoded) = value.split_once(' ').ok_or(DavAuthError::Malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") || encoded.len() > 2048 {
        return Err(DavAuthError::Malformed);
    }
    let decoded = STANDARD
        .decode(encoded.trim())
        .map_err(|_| DavAuthError::Malformed)?;
    let decoded = String::from_utf8(decoded).map_err(|_| DavAuthError::Malformed)?;
    let (user, password) = decoded.split_once(':').ok_or(DavAuthError::Malformed)?;
    let user = UserId::parse(user).map_err(|_| DavAuthError::Refused)?;
    Ok((user, password.to_owned()))
}

impl FromRequestParts<AppState> for DavUser {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let checked = match credentials(&parts.headers) {
            Ok((user, password)) => {
                match state.calendars.check_app_password(&user, &password).await {
                    Ok(true) => Ok(user),
                    Ok(false) => Err(DavAuthError::Refused),
                    Err(error) => return Err(ApiError::from(error).into_response()),
                }
            }
            Err(error) => Err(error),
        };
        let limiter = Arc::clone(&state.limiter);
        let user = match checked {
            Ok(user) => user,
            Err(error) => {
                tracing::Span::current().record("auth_error", tracing::field::display(&error));
                // A wrong password counts against the client's address, as a wrong token
                // does: guessing costs a quota. A client that has not tried yet has not
                // guessed.
                let peer = parts.extensions.get::<PeerAddr>().map(|peer| peer.0.ip());
                if error != DavAuthError::Missing
                    && let Some(peer) = peer
                    && let Some(verdict) = limiter.failed_authentication(peer, &parts.headers).await
                    && !verdict.decision.allowed
                {
                    return Err(ApiError::RateLimited(verdict).into_response());
                }
                return Err(error.into_response());
            }
        };
        tracing::Span::current().record("user_id", user.as_str());
        if let Some(verdict) = limiter.user(&user).await {
            if !verdict.decision.allowed {
                return Err(ApiError::RateLimited(verdict).into_response());
            }
            if let Some(slot) = parts.extensions.get::<QuotaSlot>() {
                slot.put(verdict);
            }
        }
        Ok(DavUser(user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(value).expect("a header value"),
        );
        headers
    }

    #[test]
    fn basic_credentials_are_read() {
        let encoded = STANDARD.encode("alice:se:cret");
        let (user, password) = credentials(&basic(&format!("Basic {encoded}"))).expect("read");
        assert_eq!(user.as_str(), "alice");
        assert_eq!(password, "se:cret");
    }

    #[test]
    fn anything_else_is_refused() {
        assert_eq!(credentials(&HeaderMap::new()), Err(DavAuthError::Missing));
        for value in ["Bearer abc", "Basic", "Basic !!!", "Basic YWxpY2U="] {
            assert_eq!(
                credentials(&basic(value)),
                Err(DavAuthError::Malformed),
                "{value}"
            );
        }
        let empty_user = STANDARD.encode(":pw");
        assert_eq!(
            credentials(&basic(&format!("Basic {empty_user}"))),
            Err(DavAuthError::Refused)
        );
    }
}
