//! Token verification: picks the verification path from the token's `alg` header.
//!
//! Each path has its own allow-list of algorithms, so a token can never be checked with a key
//! of the wrong kind (the classic "HS256 signed with the public key" confusion).

use std::time::Duration;

use jsonwebtoken::Algorithm;
use serde::Deserialize;

use super::hs256::{HmacSecret, Hs256Key};
use super::{AuthError, MAX_TOKEN_BYTES, UserId};

/// The claims this service reads. `exp` and `nbf` are checked by `jsonwebtoken` (which also
/// refuses them when they are not numbers); everything else in the payload is ignored.
#[derive(Debug, Deserialize)]
pub(super) struct Claims {
    /// Read as any JSON value so that a missing or non-string `sub` gets its own error.
    #[serde(default)]
    sub: serde_json::Value,
}

/// Verifies bearer tokens with every method the service is configured for.
pub struct Verifier {
    hs256: Option<Hs256Key>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("hs256", &self.hs256.is_some())
            .finish()
    }
}

impl Verifier {
    /// A verifier that accepts HS256 tokens signed with `secret`, allowing `leeway` of clock
    /// skew on `exp` and `nbf`.
    pub fn hs256(secret: &HmacSecret, leeway: Duration) -> Self {
        Verifier {
            hs256: Some(Hs256Key::new(secret, leeway)),
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
            _ => return Err(AuthError::AlgorithmNotAccepted),
        };
        match claims.sub {
            serde_json::Value::String(sub) => UserId::parse(sub),
            _ => Err(AuthError::InvalidSubject),
        }
    }
}
