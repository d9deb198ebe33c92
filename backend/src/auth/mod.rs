//! Who is calling: bearer-token verification and the [`AuthUser`] extractor.
//!
//! Handlers learn the caller's identity only through [`AuthUser`], which verifies the token
//! with the [`Verifier`] held in the application state. The token's `sub` claim becomes the
//! [`UserId`] that every storage call is scoped to.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::{HeaderMap, header, request::Parts};

use crate::error::ApiError;

mod cache;
pub mod dev_secret;
mod error;
pub mod hs256;
pub mod jwks;
mod verifier;

pub use error::AuthError;
pub use jwks::JwksSettings;
pub use verifier::Verifier;

/// Tokens larger than this are refused before any decoding (a defence against CPU and
/// memory abuse; real tokens are well under 2 KiB).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The most characters a user id (`sub`) may have; mirrors the `tasks.user_id` check.
pub const MAX_USER_ID_CHARS: usize = 255;

/// The id of an authenticated user: the `sub` claim of a verified token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserId(String);

impl UserId {
    /// Accepts a non-empty id of at most 255 characters without control characters
    /// (PostgreSQL cannot store NUL, and control characters have no business in an id).
    pub fn parse(sub: impl Into<String>) -> Result<Self, AuthError> {
        let sub = sub.into();
        let length = sub.chars().count();
        if length == 0 || length > MAX_USER_ID_CHARS || sub.chars().any(char::is_control) {
            return Err(AuthError::InvalidSubject);
        }
        Ok(UserId(sub))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The authenticated caller. Taking this as a handler argument makes the route require a
/// valid bearer token; without one the request gets a 401 before the handler runs.
#[derive(Debug, Clone)]
pub struct AuthUser(pub UserId);

impl<S> FromRequestParts<S> for AuthUser
where
    Arc<Verifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = bearer_token(&parts.headers)?;
        let verifier = Arc::<Verifier>::from_ref(state);
        let user = verifier.verify(token).await?;
        tracing::Span::current().record("user_id", user.as_str());
        Ok(AuthUser(user))
    }
}

/// The token of the request's single `Authorization: Bearer <token>` header.
fn bearer_token(headers: &HeaderMap) -> Result<&str, AuthError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next().ok_or(AuthError::MissingToken)?;
    if values.next().is_some() {
        // Two headers could be read differently by a proxy and by us: refuse both.
        return Err(AuthError::DuplicateHeader);
    }
    let value = value.to_str().map_err(|_| AuthError::Malformed)?;
    let value = value.trim();
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::WrongScheme);
    }
    match token.trim() {
        "" => Err(AuthError::MissingToken),
        token => Ok(token),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(values: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header::AUTHORIZATION, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        for value in ["Bearer abc", "bearer abc", "BEARER abc", "Bearer   abc  "] {
            assert_eq!(bearer_token(&headers(&[value])), Ok("abc"), "{value}");
        }
    }

    #[test]
    fn other_schemes_and_shapes_are_refused() {
        let cases = [
            (vec![], AuthError::MissingToken),
            (vec!["Basic dXNlcjpwYXNz"], AuthError::WrongScheme),
            (vec!["Token abc"], AuthError::WrongScheme),
            (vec!["abc"], AuthError::WrongScheme),
            (vec!["Bearer"], AuthError::MissingToken),
            (vec!["Bearer  "], AuthError::MissingToken),
            (vec!["Bearer a", "Bearer b"], AuthError::DuplicateHeader),
        ];
        for (values, expected) in cases {
            assert_eq!(bearer_token(&headers(&values)), Err(expected), "{values:?}");
        }
    }

    #[test]
    fn user_ids_are_bounded_and_printable() {
        assert!(UserId::parse("alice").is_ok());
        assert!(UserId::parse("u".repeat(255)).is_ok());
        assert!(UserId::parse("ü".repeat(255)).is_ok());
        for bad in [String::new(), "u".repeat(256), "a\0b".into(), "a\nb".into()] {
            assert_eq!(
                UserId::parse(bad.clone()),
                Err(AuthError::InvalidSubject),
                "{bad:?}"
            );
        }
    }
}
