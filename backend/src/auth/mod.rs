//! Who is calling: bearer-token verification.
//!
//! [`AuthSettings`] says how tokens are checked (a shared HS256 secret, Better Auth's JWKS, or
//! the development secret), and [`Verifier::from_settings`] builds the one verifier that does
//! it. A verified token's `sub` becomes the [`UserId`](crate::domain::UserId) that every storage call is scoped to.
//! Nothing here knows about HTTP responses: the HTTP layer turns an [`AuthError`] into a 401.

use axum::http::{HeaderMap, header};

mod cache;
mod claims;
pub mod dev_secret;
mod error;
pub mod hs256;
pub mod jwks;
mod settings;
mod verifier;

pub use claims::Verified;
pub use error::{AuthError, SetupError};
pub use jwks::JwksSettings;
pub use settings::{AuthSettings, SharedSecret};
pub use verifier::Verifier;

/// Tokens larger than this are refused before any decoding (a defence against CPU and
/// memory abuse; real tokens are well under 2 KiB).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The token of the request's single `Authorization: Bearer <token>` header.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, AuthError> {
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
}
