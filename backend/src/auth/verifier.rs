//! Token verification: picks the verification path from the token's `alg` header.
//!
//! Each path has its own allow-list of algorithms, so a token can never be checked with a key
//! of the wrong kind (the classic "HS256 signed with the public key" confusion).

use std::time::Duration;

use jsonwebtoken::Algorithm;
use serde::Deserialize;

use std::sync::Arc;

use super::cache::VerifiedTokens;
use super::hs256::{HmacSecret, Hs256Key};
use super::jwks::{self, JwksKeys, JwksSettings};
use super::{AuthError, MAX_TOKEN_BYTES, UserId};

/// The claims this service reads. `exp` and `nbf` values are checked by `jsonwebtoken` (which
/// also refuses them when they are not numbers); everything else in the payload is ignored.
/// Both are read as any JSON value so that a missing claim and a claim of the wrong type get
/// their own errors.
#[derive(Debug, Deserialize)]
pub(super) struct Claims {
    #[serde(default)]
    sub: serde_json::Value,
    #[serde(default)]
    exp: serde_json::Value,
}

impl Claims {
    /// The user a verified token was issued to. A token without `exp` never expires, which
    /// this service does not accept.
    fn user(self) -> Result<UserId, AuthError> {
        if self.exp.is_null() {
            return Err(AuthError::MissingClaim("exp".into()));
        }
        match self.sub {
            serde_json::Value::String(sub) => UserId::parse(sub),
            serde_json::Value::Null => Err(AuthError::MissingClaim("sub".into())),
            _ => Err(AuthError::InvalidSubject),
        }
    }
}

/// Verifies bearer tokens with every method the service is configured for.
///
/// The token's `alg` header picks the path: `HS256` goes to the shared secret, the asymmetric
/// algorithms Better Auth issues go to the JWKS keys. Each path accepts only its own
/// algorithms, so no token can be checked with a key of the wrong kind.
pub struct Verifier {
    hs256: Option<Hs256Key>,
    jwks: Option<Arc<JwksKeys>>,
    /// Asymmetric tokens already verified (HS256 is cheaper to check than to look up).
    verified: VerifiedTokens,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("hs256", &self.hs256.is_some())
            .field("jwks", &self.jwks.is_some())
            .finish()
    }
}

impl Verifier {
    /// A verifier for HS256 tokens signed with `secret` and/or asymmetric tokens checked
    /// against a JWKS. Starts fetching the keys in the background, so it must be called inside
    /// a Tokio runtime when `jwks` is given.
    pub fn new(
        hs256: Option<(&HmacSecret, Duration)>,
        jwks: Option<JwksSettings>,
    ) -> Result<Self, reqwest::Error> {
        Ok(Verifier {
            hs256: hs256.map(|(secret, leeway)| Hs256Key::new(secret, leeway)),
            jwks: jwks.map(JwksKeys::start).transpose()?,
            verified: VerifiedTokens::default(),
        })
    }

    /// A verifier that accepts only HS256 tokens signed with `secret`, allowing `leeway` of
    /// clock skew on `exp` and `nbf`.
    pub fn hs256(secret: &HmacSecret, leeway: Duration) -> Self {
        Verifier {
            hs256: Some(Hs256Key::new(secret, leeway)),
            jwks: None,
            verified: VerifiedTokens::default(),
        }
    }

    /// Checks the token and returns the user it was issued to.
    pub async fn verify(&self, token: &str) -> Result<UserId, AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::TooLarge);
        }
        // An unknown `alg` (including "none") fails to parse here.
        let header = jsonwebtoken::decode_header(token).map_err(|error| match error.kind() {
            jsonwebtoken::errors::ErrorKind::Json(_) => AuthError::AlgorithmNotAccepted,
            _ => AuthError::Malformed,
        })?;
        let claims = match header.alg {
            Algorithm::HS256 => self
                .hs256
                .as_ref()
                .ok_or(AuthError::AlgorithmNotAccepted)?
                .decode(token)?,
            alg if jwks::ACCEPTED.contains(&alg) => {
                let jwks = self.jwks.as_ref().ok_or(AuthError::AlgorithmNotAccepted)?;
                let now = jsonwebtoken::get_current_timestamp();
                if let Some(user) = self.verified.get(token, now) {
                    return Ok(user);
                }
                let claims = jwks.decode(token, &header).await?;
                let expires_at = claims.exp.as_u64();
                let user = claims.user()?;
                if let Some(expires_at) = expires_at {
                    self.verified.insert(token, user.clone(), expires_at, now);
                }
                return Ok(user);
            }
            _ => return Err(AuthError::AlgorithmNotAccepted),
        };
        claims.user()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    const SECRET: &str = "unit-test-secret-0123456789abcdefghij";

    fn verifier() -> Verifier {
        let secret = HmacSecret::new(SECRET).expect("long enough");
        Verifier::hs256(&secret, Duration::from_secs(60))
    }

    fn sign(alg: Algorithm, key: &[u8], claims: serde_json::Value) -> String {
        jsonwebtoken::encode(&Header::new(alg), &claims, &EncodingKey::from_secret(key))
            .expect("signs")
    }

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    #[tokio::test]
    async fn a_valid_token_yields_its_subject() {
        let token = sign(
            Algorithm::HS256,
            SECRET.as_bytes(),
            json!({"sub": "alice", "exp": now() + 60}),
        );
        assert_eq!(
            verifier()
                .verify(&token)
                .await
                .map(|u| u.as_str().to_owned()),
            Ok("alice".into())
        );
    }

    #[tokio::test]
    async fn each_defect_has_its_own_reason() {
        let exp = now() + 600;
        let key = SECRET.as_bytes();
        let cases = [
            (
                sign(
                    Algorithm::HS256,
                    b"some-other-secret-0123456789abcdef",
                    json!({"sub": "a", "exp": exp}),
                ),
                AuthError::BadSignature,
            ),
            (
                sign(Algorithm::HS512, key, json!({"sub": "a", "exp": exp})),
                AuthError::AlgorithmNotAccepted,
            ),
            (
                sign(
                    Algorithm::HS256,
                    key,
                    json!({"sub": "a", "exp": now() - 61}),
                ),
                AuthError::Expired,
            ),
            (
                sign(
                    Algorithm::HS256,
                    key,
                    json!({"sub": "a", "exp": exp, "nbf": now() + 61}),
                ),
                AuthError::NotYetValid,
            ),
            (
                sign(Algorithm::HS256, key, json!({"sub": "a"})),
                AuthError::MissingClaim("exp".into()),
            ),
            (
                sign(
                    Algorithm::HS256,
                    key,
                    json!({"sub": "a", "exp": exp.to_string()}),
                ),
                AuthError::InvalidClaim("exp".into()),
            ),
            (
                sign(Algorithm::HS256, key, json!({"exp": exp})),
                AuthError::MissingClaim("sub".into()),
            ),
            (
                sign(Algorithm::HS256, key, json!({"sub": "", "exp": exp})),
                AuthError::InvalidSubject,
            ),
            (
                sign(Algorithm::HS256, key, json!({"sub": 42, "exp": exp})),
                AuthError::InvalidSubject,
            ),
            ("x".repeat(MAX_TOKEN_BYTES + 1), AuthError::TooLarge),
            ("a.b".to_owned(), AuthError::Malformed),
            // {"alg":"none"} . {"sub":"a","exp":9999999999} . (empty signature)
            (
                "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIiwiZXhwIjo5OTk5OTk5OTk5fQ.".to_owned(),
                AuthError::AlgorithmNotAccepted,
            ),
        ];
        for (token, expected) in cases {
            assert_eq!(
                verifier().verify(&token).await,
                Err(expected.clone()),
                "{expected:?}"
            );
        }
    }

    #[tokio::test]
    async fn skew_within_the_leeway_is_tolerated() {
        let key = SECRET.as_bytes();
        let just_expired = sign(
            Algorithm::HS256,
            key,
            json!({"sub": "a", "exp": now() - 30}),
        );
        let almost_valid = sign(
            Algorithm::HS256,
            key,
            json!({"sub": "a", "exp": now() + 600, "nbf": now() + 30}),
        );
        assert!(verifier().verify(&just_expired).await.is_ok());
        assert!(verifier().verify(&almost_valid).await.is_ok());
    }
}
