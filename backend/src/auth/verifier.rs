//! Token verification: picks the verification path from the token's `alg` header.
//!
//! Each path has its own allow-list of algorithms, so a token can never be checked with a key
//! of the wrong kind (the classic "HS256 signed with the public key" confusion).

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::Algorithm;

use super::hs256::{HmacSecret, Hs256Key};
use super::jwks::{self, JwksKeys};
use super::{AuthError, AuthSettings, MAX_TOKEN_BYTES, SetupError, Verified};
use crate::domain::UserId;

/// Verifies bearer tokens with every method the service is configured for.
///
/// The token's `alg` header picks the path: `HS256` goes to the shared secret, the asymmetric
/// algorithms Better Auth issues go to the JWKS keys. Each path accepts only its own
/// algorithms, so no token can be checked with a key of the wrong kind.
pub struct Verifier {
    hs256: Option<Hs256Key>,
    jwks: Option<Arc<JwksKeys>>,
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
    /// The verifier `settings` describe. Creates the development secret if that is the one in
    /// use, and starts fetching the JWKS in the background, so it must be called inside a Tokio
    /// runtime when JWKS is configured.
    pub fn from_settings(settings: &AuthSettings) -> Result<Self, SetupError> {
        let hs256 = settings
            .hs256_secret()?
            .map(|secret| Hs256Key::new(&secret, settings.leeway));
        if let Some(jwks) = &settings.jwks {
            tracing::info!(
                jwks = %jwks.url, issuer = %jwks.issuer, audience = %jwks.audience,
                "verifying Better Auth tokens against its JWKS"
            );
        }
        let jwks = settings.jwks.clone().map(JwksKeys::start).transpose()?;
        Ok(Verifier { hs256, jwks })
    }

    /// A verifier that accepts only HS256 tokens signed with `secret`, allowing `leeway` of
    /// clock skew on `exp` and `nbf`.
    pub fn hs256(secret: &HmacSecret, leeway: Duration) -> Self {
        Verifier {
            hs256: Some(Hs256Key::new(secret, leeway)),
            jwks: None,
        }
    }

    /// Checks the token and returns the user it was issued to.
    pub async fn verify(&self, token: &str) -> Result<UserId, AuthError> {
        self.verify_until(token).await.map(|verified| verified.user)
    }

    /// Checks the token and returns the user it was issued to and when it expires.
    pub async fn verify_until(&self, token: &str) -> Result<Verified, AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::TooLarge);
        }
        let now = jsonwebtoken::get_current_timestamp();
        // A token the secret verified before: no parsing, no HMAC.
        if let Some(verified) = self.hs256.as_ref().and_then(|key| key.cached(token, now)) {
            return Ok(verified);
        }
        // An unknown `alg` (including "none") fails to parse here.
        let header = jsonwebtoken::decode_header(token).map_err(|error| match error.kind() {
            jsonwebtoken::errors::ErrorKind::Json(_) => AuthError::AlgorithmNotAccepted,
            _ => AuthError::Malformed,
        })?;
        // RFC 7515 §4.1.11: a recipient must refuse extensions it does not understand, and
        // this service understands none.
        if header.crit.is_some() {
            return Err(AuthError::UnsupportedCritical);
        }
        match header.alg {
            Algorithm::HS256 => self
                .hs256
                .as_ref()
                .ok_or(AuthError::AlgorithmNotAccepted)?
                .verify(token, now),
            alg if jwks::ACCEPTED.contains(&alg) => {
                let jwks = self.jwks.as_ref().ok_or(AuthError::AlgorithmNotAccepted)?;
                jwks.verify(token, &header).await
            }
            _ => Err(AuthError::AlgorithmNotAccepted),
        }
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
    async fn a_token_with_critical_extensions_is_refused() {
        let mut header = Header::new(Algorithm::HS256);
        header.crit = Some(vec!["x-unknown".into()]);
        let claims = json!({"sub": "a", "exp": now() + 60, "x-unknown": 1});
        let key = EncodingKey::from_secret(SECRET.as_bytes());
        let token = jsonwebtoken::encode(&header, &claims, &key).expect("signs");
        assert_eq!(
            verifier().verify(&token).await,
            Err(AuthError::UnsupportedCritical)
        );
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
