//! HS256 tokens signed with a shared secret (`BETTER_AUTH_SECRET`, or the development secret).
//!
//! Better Auth's JWT plugin never signs with HS256; this path is for frontends that mint their
//! own tokens with the shared secret, for tests, and for `todo-backend token`.

use std::fmt;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::Serialize;

use super::cache::{KeyIdentity, VerifiedTokens};
use super::claims::Verified;
use crate::domain::UserId;

/// The shortest secret accepted: 256 bits, the size of the HMAC-SHA256 output.
pub const MIN_SECRET_BYTES: usize = 32;

/// A shared HMAC secret. Its `Debug` never shows the value.
#[derive(Clone)]
pub struct HmacSecret(Vec<u8>);

impl fmt::Debug for HmacSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HmacSecret([redacted])")
    }
}

/// Why a secret was refused; the message never contains the secret.
#[derive(Debug, thiserror::Error)]
#[error("must be at least {MIN_SECRET_BYTES} bytes long (it has {0})")]
pub struct SecretTooShort(usize);

impl HmacSecret {
    pub fn new(secret: impl Into<Vec<u8>>) -> Result<Self, SecretTooShort> {
        let secret = secret.into();
        if secret.len() < MIN_SECRET_BYTES {
            return Err(SecretTooShort(secret.len()));
        }
        Ok(HmacSecret(secret))
    }

    fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Verifies HS256 tokens against one secret.
pub(super) struct Hs256Key {
    key: DecodingKey,
    validation: Validation,
    /// Tokens this secret verified; the secret lives as long as the process, so an entry is
    /// good until its token expires.
    verified: VerifiedTokens,
}

impl Hs256Key {
    pub(super) fn new(secret: &HmacSecret, leeway: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // Presence of `exp` and `sub` is checked by the verifier, so that a malformed claim is
        // reported as malformed rather than as missing.
        validation.set_required_spec_claims::<&str>(&[]);
        validation.validate_exp = true;
        validation.leeway = leeway.as_secs();
        validation.validate_nbf = true;
        // Self-minted tokens carry no agreed audience; `iss`/`aud` are checked on the JWKS
        // path, where Better Auth sets them.
        validation.validate_aud = false;
        Hs256Key {
            key: DecodingKey::from_secret(secret.as_bytes()),
            validation,
            verified: VerifiedTokens::default(),
        }
    }

    /// The user of `token` when this secret verified it before and it has not expired.
    pub(super) fn cached(&self, token: &str, now: u64) -> Option<Verified> {
        self.verified.get(token, now, |_| true)
    }

    /// Checks the token's signature and claims, and remembers it when it passes.
    pub(super) fn verify(&self, token: &str, now: u64) -> Result<Verified, super::AuthError> {
        let verified =
            jsonwebtoken::decode::<super::claims::Claims>(token, &self.key, &self.validation)?
                .claims
                .verified()?;
        let key = KeyIdentity {
            kid: String::new(),
            fingerprint: [0; 32],
        };
        self.verified
            .insert(token, verified.clone(), key, verified.expires_at, now);
        Ok(verified)
    }
}

#[derive(Serialize)]
struct IssuedClaims<'a> {
    sub: &'a str,
    iat: u64,
    exp: u64,
}

/// Signs a token for `user` that expires after `ttl`.
pub fn issue(secret: &HmacSecret, user: &UserId, ttl: Duration) -> Result<String, IssueError> {
    let now = jsonwebtoken::get_current_timestamp();
    let claims = IssuedClaims {
        sub: user.as_str(),
        iat: now,
        exp: now.saturating_add(ttl.as_secs()),
    };
    let key = EncodingKey::from_secret(secret.as_bytes());
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &key,
    )?)
}

/// Signing failed (which, for HMAC, only a broken crypto backend could cause).
#[derive(Debug, thiserror::Error)]
#[error("could not sign the token: {0}")]
pub struct IssueError(#[from] jsonwebtoken::errors::Error);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_shorter_than_32_bytes_are_refused() {
        assert!(HmacSecret::new(vec![b'x'; 31]).is_err());
        assert!(HmacSecret::new(vec![b'x'; 32]).is_ok());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let secret = HmacSecret::new("correct-horse-battery-staple-0123456789").expect("long");
        assert!(!format!("{secret:?}").contains("horse"));
        let error = HmacSecret::new("short-secret").expect_err("short");
        assert!(!error.to_string().contains("short-secret"));
    }
}
