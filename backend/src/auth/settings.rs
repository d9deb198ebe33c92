//! How tokens are verified, decided once from the configuration.

use std::time::Duration;

use super::hs256::HmacSecret;
use super::jwks::JwksSettings;
use super::{SetupError, dev_secret};

/// Everything token verification needs, validated: which paths are on and with what keys.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// The HS256 path.
    pub shared_secret: SharedSecret,
    /// The JWKS path (Better Auth's asymmetric tokens), when configured.
    pub jwks: Option<JwksSettings>,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway: Duration,
}

/// Where the HS256 secret comes from.
#[derive(Debug, Clone)]
pub enum SharedSecret {
    /// `JWT_SECRET` (or `BETTER_AUTH_SECRET`) was set.
    Configured(HmacSecret),
    /// Nothing at all was configured: the development secret, created on first use.
    Development,
    /// Only JWKS is configured, so HS256 tokens are refused.
    Off,
}

impl AuthSettings {
    /// The policy: a configured secret is used; with none, the development secret, unless
    /// JWKS is configured (then a forgotten secret must not silently enable HS256).
    pub fn new(secret: Option<HmacSecret>, jwks: Option<JwksSettings>, leeway: Duration) -> Self {
        let shared_secret = match (secret, &jwks) {
            (Some(secret), _) => SharedSecret::Configured(secret),
            (None, Some(_)) => SharedSecret::Off,
            (None, None) => SharedSecret::Development,
        };
        AuthSettings {
            shared_secret,
            jwks,
            leeway,
        }
    }

    /// The HS256 secret, creating the development secret if that is the one in use.
    pub fn hs256_secret(&self) -> Result<Option<HmacSecret>, SetupError> {
        match &self.shared_secret {
            SharedSecret::Configured(secret) => Ok(Some(secret.clone())),
            SharedSecret::Development => dev_secret::resolve().map(Some),
            SharedSecret::Off => Ok(None),
        }
    }

    /// The secret `todo-backend token` signs with.
    pub fn signing_secret(&self) -> Result<HmacSecret, SetupError> {
        self.hs256_secret()?.ok_or(SetupError::NoSigningSecret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwks() -> JwksSettings {
        let url = "https://auth.example.com/api/auth/jwks"
            .parse()
            .expect("url");
        JwksSettings::new(url, "i".into(), "a".into(), Duration::ZERO)
    }

    fn secret() -> HmacSecret {
        HmacSecret::new("0123456789abcdef0123456789abcdef").expect("long enough")
    }

    #[test]
    fn a_configured_secret_always_wins() {
        for jwks in [None, Some(jwks())] {
            let settings = AuthSettings::new(Some(secret()), jwks, Duration::ZERO);
            assert!(matches!(
                settings.shared_secret,
                SharedSecret::Configured(_)
            ));
        }
    }

    #[test]
    fn the_development_secret_only_when_nothing_is_configured() {
        let bare = AuthSettings::new(None, None, Duration::ZERO);
        assert!(matches!(bare.shared_secret, SharedSecret::Development));
        let jwks_only = AuthSettings::new(None, Some(jwks()), Duration::ZERO);
        assert!(matches!(jwks_only.shared_secret, SharedSecret::Off));
        assert!(matches!(
            jwks_only.signing_secret(),
            Err(SetupError::NoSigningSecret)
        ));
    }
}
