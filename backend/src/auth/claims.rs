//! The claims of a token that this service reads, once its signature has been checked.

use serde::Deserialize;

use super::AuthError;
use crate::domain::UserId;

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
    /// The user a verified token was issued to. A token without `exp` never expires, which
    /// this service does not accept.
    pub(super) fn user(self) -> Result<UserId, AuthError> {
        if self.exp.is_null() {
            return Err(AuthError::MissingClaim("exp".into()));
        }
        match self.sub {
            serde_json::Value::String(sub) => Ok(UserId::parse(sub)?),
            serde_json::Value::Null => Err(AuthError::MissingClaim("sub".into())),
            _ => Err(AuthError::InvalidSubject),
        }
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
