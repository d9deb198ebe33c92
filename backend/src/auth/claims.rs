//! The claims of a token that this service reads, once its signature has been checked.

use serde::Deserialize;

use super::AuthError;
use crate::domain::UserId;

/// Who a verified token speaks for, and until when (`exp`, seconds since the Unix epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub user: UserId,
    pub expires_at: u64,
}

/// The claims this service reads. `exp` and `nbf` values are checked by `jsonwebtoken` (which
/// also refuses them when they are not numbers); everything else in the payload is ignored.
/// Both are read as any JSON value so that a missing claim and a claim of the wrong type get
/// their own errors.
#[derive(Debug, Deserialize)]
pub(super) struct Claims {
    #[serde(default)]
    sub: serde_json::Value,
    #[serde(default)]
    pub(super) exp: serde_json::Value,
    #[serde(default)]
    iss: serde_json::Value,
}

impl Claims {
    /// The user a verified token was issued to, and when it expires. A token without `exp`
    /// never expires, which this service does not accept.
    pub(super) fn verified(self) -> Result<Verified, AuthError> {
        // A number, or `jsonwebtoken` would have refused it; saturating, as a far-off or
        // fractional `exp` is still a point in time.
        let expires_at = match self.exp.as_f64() {
            Some(exp) if exp.is_finite() && exp >= 0.0 => exp as u64,
            _ => return Err(AuthError::MissingClaim("exp".into())),
        };
        let user = match self.sub {
            serde_json::Value::String(sub) => UserId::parse(sub)?,
            serde_json::Value::Null => return Err(AuthError::MissingClaim("sub".into())),
            _ => return Err(AuthError::InvalidSubject),
        };
        Ok(Verified { user, expires_at })
    }

    /// RFC 7519 makes `iss` a single string; the JWT library would also accept an array that
    /// contains the expected issuer.
    pub(super) fn require_string_issuer(&self) -> Result<(), AuthError> {
        match self.iss {
            serde_json::Value::String(_) => Ok(()),
            serde_json::Value::Null => Err(AuthError::MissingClaim("iss".into())),
            _ => Err(AuthError::InvalidClaim("iss".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(json: serde_json::Value) -> Claims {
        serde_json::from_value(json).expect("claims")
    }

    #[test]
    fn a_verified_token_says_who_and_until_when() {
        let verified = claims(serde_json::json!({"sub": "alice", "exp": 1_800_000_000}))
            .verified()
            .expect("valid");
        assert_eq!(verified.user.as_str(), "alice");
        assert_eq!(verified.expires_at, 1_800_000_000);
        // Fractional: still a point in time.
        let fractional = claims(serde_json::json!({"sub": "a", "exp": 1_800_000_000.5}));
        assert_eq!(
            fractional.verified().map(|v| v.expires_at),
            Ok(1_800_000_000)
        );
        assert_eq!(
            claims(serde_json::json!({"sub": "a"})).verified(),
            Err(AuthError::MissingClaim("exp".into()))
        );
    }
}
