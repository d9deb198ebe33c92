//! JWKS verification: the asymmetric tokens Better Auth's JWT plugin issues (EdDSA by
//! default), checked against the public keys it publishes at `/api/auth/jwks`.
//!
//! The keys are cached in memory. They are fetched at start-up (retried in the background
//! while the auth server is unreachable), refreshed on a fixed interval, and refetched at once
//! when a token names a key id we do not know, which is how a key rotation reaches us. That
//! refetch is single-flight and rate-limited, so a flood of tokens with made-up key ids costs
//! the auth server at most one request per cooldown. A failed fetch never discards the keys
//! we already have.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use url::Url;

use super::AuthError;
use super::cache::{KeyIdentity, VerifiedTokens};
use super::claims::{Claims, Verified};

/// The algorithms accepted on this path: what Better Auth can issue and this service can
/// verify. (Better Auth's ES512 needs P-521, which the JWT library does not support.)
pub const ACCEPTED: [Algorithm; 4] = [
    Algorithm::EdDSA,
    Algorithm::ES256,
    Algorithm::RS256,
    Algorithm::PS256,
];

/// The largest JWKS document accepted; a real one is a few KiB.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// Where the keys come from and what tokens must say.
#[derive(Debug, Clone)]
pub struct JwksSettings {
    pub url: Url,
    /// The exact `iss` required.
    pub issuer: String,
    /// The `aud` required (a token's `aud` may be an array that contains it).
    pub audience: String,
    pub leeway: Duration,
    /// How often the keys are refreshed even when nothing asks for it.
    pub refresh_interval: Duration,
    /// The least time between two fetches triggered by unknown key ids.
    pub refetch_cooldown: Duration,
    /// The whole fetch, connection included, must finish within this.
    pub fetch_timeout: Duration,
}

impl JwksSettings {
    /// Settings with the service's default timings.
    pub fn new(url: Url, issuer: String, audience: String, leeway: Duration) -> Self {
        JwksSettings {
            url,
            issuer,
            audience,
            leeway,
            refresh_interval: Duration::from_secs(10 * 60),
            refetch_cooldown: Duration::from_secs(30),
            fetch_timeout: Duration::from_secs(5),
        }
    }
}

/// A public key from the set, with the one algorithm it may verify.
struct VerifyingKey {
    alg: Algorithm,
    key: DecodingKey,
    /// A digest of the JWK, so cached verifications are tied to this exact key.
    fingerprint: [u8; 32],
}

type KeySet = HashMap<String, VerifyingKey>;

/// Whether the key a cached verification used is still in `keys`, unchanged.
fn is_current(keys: &KeySet, identity: &KeyIdentity) -> bool {
    keys.get(&identity.kid)
        .is_some_and(|key| key.fingerprint == identity.fingerprint)
}

/// The cached key set of one JWKS URL.
pub(super) struct JwksKeys {
    settings: JwksSettings,
    client: reqwest::Client,
    /// `None` until the first successful fetch.
    keys: RwLock<Option<Arc<KeySet>>>,
    /// Tokens already verified with one of `keys`.
    verified: VerifiedTokens,
    /// Set while fetches fail, so an outage is logged once, not once per retry.
    failing: AtomicBool,
    /// Held while fetching: concurrent refetches queue here and share the result.
    fetch_lock: tokio::sync::Mutex<Option<Instant>>,
    /// Counts fetch attempts, so a waiter can tell that someone fetched while it waited.
    attempts: AtomicU64,
}

impl JwksKeys {
    /// Creates the cache and starts its background refresher, which stops when the cache is
    /// dropped. Must be called inside a Tokio runtime.
    pub(super) fn start(settings: JwksSettings) -> Result<Arc<Self>, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(settings.fetch_timeout)
            .connect_timeout(settings.fetch_timeout)
            // The JWKS URL is configuration; a redirect elsewhere is not followed.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("todo-backend/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let keys = Arc::new(JwksKeys {
            settings,
            client,
            keys: RwLock::new(None),
            verified: VerifiedTokens::default(),
            failing: AtomicBool::new(false),
            fetch_lock: tokio::sync::Mutex::new(None),
            attempts: AtomicU64::new(0),
        });
        tokio::spawn(refresh_in_background(Arc::downgrade(&keys)));
        Ok(keys)
    }

    /// Verifies a token whose header names an accepted asymmetric algorithm, from the cache
    /// of verified tokens when it was seen before with a key that is still current.
    pub(super) async fn verify(&self, token: &str, header: &Header) -> Result<Verified, AuthError> {
        let now = jsonwebtoken::get_current_timestamp();
        if let Some(keys) = self.current()
            && let Some(verified) = self.verified.get(token, now, |id| is_current(&keys, id))
        {
            metrics::counter!("auth_verified_token_cache_total", "result" => "hit").increment(1);
            return Ok(verified);
        }
        metrics::counter!("auth_verified_token_cache_total", "result" => "miss").increment(1);
        let (claims, key) = self.decode(token, header).await?;
        claims.require_string_issuer()?;
        let verified = claims.verified()?;
        // Capped at the refresh interval, so that even a token with a far-off `exp` is
        // checked again against a key set no older than one refresh.
        let cap = now.saturating_add(self.settings.refresh_interval.as_secs());
        let until = verified.expires_at.min(cap);
        self.verified
            .insert(token, verified.clone(), key, until, now);
        Ok(verified)
    }

    /// Checks the token's signature and claims with the key its `kid` names.
    async fn decode(
        &self,
        token: &str,
        header: &Header,
    ) -> Result<(Claims, KeyIdentity), AuthError> {
        let kid = header.kid.as_deref().ok_or(AuthError::MissingKeyId)?;
        let keys = match self.current() {
            Some(keys) => keys,
            None => {
                // Still starting, or the auth server has been down since start-up.
                self.refetch().await;
                self.current().ok_or(AuthError::KeysUnavailable)?
            }
        };
        let keys = if keys.contains_key(kid) {
            keys
        } else {
            self.refetch().await;
            self.current().ok_or(AuthError::KeysUnavailable)?
        };
        let key = keys.get(kid).ok_or(AuthError::UnknownKey)?;
        // The key decides the algorithm, never the token: an RS256 key cannot be made to
        // check a PS256 or HS256 signature.
        if key.alg != header.alg {
            return Err(AuthError::AlgorithmNotAccepted);
        }
        let mut validation = Validation::new(key.alg);
        validation.set_required_spec_claims(&["iss", "aud"]);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        validation.leeway = self.settings.leeway.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        let claims = jsonwebtoken::decode(token, &key.key, &validation)?.claims;
        let identity = KeyIdentity {
            kid: kid.to_owned(),
            fingerprint: key.fingerprint,
        };
        Ok((claims, identity))
    }

    fn current(&self) -> Option<Arc<KeySet>> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Fetches the set again, unless another fetch happened while we waited for the lock or
    /// the last fetch was less than a cooldown ago.
    async fn refetch(&self) {
        let seen = self.attempts.load(Ordering::Acquire);
        let mut last_attempt = self.fetch_lock.lock().await;
        if self.attempts.load(Ordering::Acquire) != seen {
            return;
        }
        if last_attempt.is_some_and(|at| at.elapsed() < self.settings.refetch_cooldown) {
            return;
        }
        *last_attempt = Some(Instant::now());
        self.fetch_and_store().await;
    }

    /// One fetch; on success the new set replaces the old, on failure the old one stays.
    async fn fetch_and_store(&self) -> bool {
        let result = self.fetch().await;
        self.attempts.fetch_add(1, Ordering::AcqRel);
        let outcome = if result.is_ok() { "ok" } else { "error" };
        metrics::counter!("jwks_fetches_total", "outcome" => outcome).increment(1);
        match result {
            Ok(keys) => {
                let recovered = self.failing.swap(false, Ordering::AcqRel);
                if recovered || self.current().is_none() {
                    tracing::info!(url = %self.settings.url, keys = keys.len(), "JWKS loaded");
                } else {
                    tracing::debug!(url = %self.settings.url, keys = keys.len(), "JWKS refreshed");
                }
                // Tokens verified with a key that is gone (or changed) must be checked again.
                self.verified.retain_keys(|id| is_current(&keys, id));
                *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(keys));
                true
            }
            Err(error) => {
                let kept = self.current().map_or(0, |keys| keys.len());
                if self.failing.swap(true, Ordering::AcqRel) {
                    tracing::debug!(url = %self.settings.url, "JWKS still unreachable: {error}");
                    return false;
                }
                tracing::warn!(
                    url = %self.settings.url,
                    kept_keys = kept,
                    "cannot fetch JWKS: {error}{}",
                    if kept == 0 {
                        "; requests with asymmetric tokens get 503 until it succeeds"
                    } else {
                        ""
                    }
                );
                false
            }
        }
    }

    async fn fetch(&self) -> Result<KeySet, String> {
        let mut response = self
            .client
            .get(self.settings.url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|error| error.to_string())?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|error| error.to_string())? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(format!("response larger than {MAX_JWKS_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        parse_key_set(&body)
    }
}

/// Loads the keys at start-up, retrying with backoff while that fails, then refreshes them on
/// the configured interval. Ends when the cache is dropped.
async fn refresh_in_background(keys: Weak<JwksKeys>) {
    let mut retry = Duration::from_millis(500);
    loop {
        let Some(strong) = keys.upgrade() else { return };
        let loaded = {
            // Shares the lock with on-demand refetches, so the two never fetch at once. It
            // does not start their cooldown: a key the auth server adds just after this load
            // (Better Auth makes its first key on first use) must still be fetched on sight.
            let _fetching = strong.fetch_lock.lock().await;
            strong.fetch_and_store().await
        };
        let wait = if loaded {
            retry = Duration::from_millis(500);
            strong.settings.refresh_interval
        } else {
            retry = (retry * 2).min(Duration::from_secs(10));
            retry.min(strong.settings.refresh_interval)
        };
        drop(strong);
        tokio::time::sleep(wait).await;
    }
}

/// Parses a JWKS document, keeping every key this service can use and logging the others.
fn parse_key_set(body: &[u8]) -> Result<KeySet, String> {
    #[derive(Deserialize)]
    struct KeySet {
        keys: Vec<serde_json::Value>,
    }
    let set: KeySet =
        serde_json::from_slice(body).map_err(|error| format!("not a JWKS document: {error}"))?;
    let mut keys = HashMap::new();
    for value in set.keys {
        let kid = value
            .get("kid")
            .and_then(|kid| kid.as_str())
            .unwrap_or("?")
            .to_owned();
        match verifying_key(value) {
            Ok((kid, key)) => {
                keys.insert(kid, key);
            }
            Err(why) => tracing::warn!(kid, "ignoring JWKS key: {why}"),
        }
    }
    if keys.is_empty() {
        return Err(format!(
            "no usable key in the set (accepted algorithms: {})",
            ACCEPTED.map(|alg| format!("{alg:?}")).join(", ")
        ));
    }
    Ok(keys)
}

/// Turns one JWK into a key id and a key bound to a single accepted algorithm.
fn verifying_key(value: serde_json::Value) -> Result<(String, VerifyingKey), String> {
    let fingerprint = Sha256::digest(value.to_string().as_bytes()).into();
    let jwk: Jwk = serde_json::from_value(value).map_err(|error| error.to_string())?;
    let kid = jwk.common.key_id.clone().ok_or("the key has no kid")?;
    if matches!(&jwk.common.public_key_use, Some(usage) if *usage != PublicKeyUse::Signature) {
        return Err("the key is not for signatures".into());
    }
    let alg = match jwk.common.key_algorithm {
        Some(alg) => Algorithm::try_from(alg).map_err(|error| error.to_string())?,
        // Without `alg`, only curves that allow a single algorithm are unambiguous.
        None => match &jwk.algorithm {
            AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
            AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
                Algorithm::ES256
            }
            _ => return Err("the key has no alg and its type does not imply one".into()),
        },
    };
    if !ACCEPTED.contains(&alg) {
        return Err(format!("algorithm {alg:?} is not accepted"));
    }
    let fits = match (&jwk.algorithm, alg) {
        (AlgorithmParameters::OctetKeyPair(p), Algorithm::EdDSA) => {
            p.curve == EllipticCurve::Ed25519
        }
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES256) => p.curve == EllipticCurve::P256,
        (AlgorithmParameters::RSA(_), Algorithm::RS256 | Algorithm::PS256) => true,
        _ => false,
    };
    if !fits {
        return Err(format!("the key's type or curve does not fit {alg:?}"));
    }
    let key = DecodingKey::from_jwk(&jwk).map_err(|error| error.to_string())?;
    Ok((
        kid,
        VerifyingKey {
            alg,
            key,
            fingerprint,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ED25519_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

    #[test]
    fn usable_keys_are_kept_and_others_ignored() {
        let set = json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "x": ED25519_X, "kid": "ed", "alg": "EdDSA"},
            {"kty": "OKP", "crv": "Ed25519", "x": ED25519_X, "kid": "no-alg"},
            {"kty": "OKP", "crv": "Ed25519", "x": ED25519_X, "alg": "EdDSA"},
            {"kty": "OKP", "crv": "Ed25519", "x": ED25519_X, "kid": "enc", "alg": "EdDSA", "use": "enc"},
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac", "alg": "HS256"},
            {"kty": "EC", "crv": "P-521", "x": "AQ", "y": "AQ", "kid": "p521", "alg": "ES512"},
            {"kty": "OKP", "crv": "Ed25519", "x": ED25519_X, "kid": "lies", "alg": "ES256"},
        ]});
        let keys = parse_key_set(set.to_string().as_bytes()).expect("some keys usable");
        let mut kids: Vec<&str> = keys.keys().map(String::as_str).collect();
        kids.sort_unstable();
        assert_eq!(kids, ["ed", "no-alg"]);
        assert!(keys.values().all(|key| key.alg == Algorithm::EdDSA));
    }

    #[test]
    fn a_set_without_usable_keys_is_an_error() {
        for body in [
            r#"{"keys": []}"#,
            r#"{"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "h", "alg": "HS256"}]}"#,
            "not json",
            r#"{"no": "keys"}"#,
        ] {
            assert!(parse_key_set(body.as_bytes()).is_err(), "{body}");
        }
    }
}
