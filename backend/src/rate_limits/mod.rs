//! Rate limits (GCRA): per user, and per client address for requests that fail
//! authentication. In process by default; with `REDIS_URL`, in Redis, so that every instance
//! counts against one shared limit.

pub mod client;
pub mod gcra;
pub mod local;
pub mod redis;

use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::http::{HeaderMap, HeaderName, HeaderValue};

use self::client::TrustedProxies;
use self::gcra::{Decision, Rate};
use self::local::LocalLimits;
use self::redis::RedisLimits;
use crate::domain::UserId;

/// The limits, each `None` when off.
#[derive(Debug, Clone, Default)]
pub struct RateLimitSettings {
    pub per_user: Option<Rate>,
    pub per_address: Option<Rate>,
    pub trusted_proxies: TrustedProxies,
}

/// Where the counts live.
#[derive(Debug)]
enum Counts {
    Local(LocalLimits),
    Redis(RedisLimits),
}

/// Decides whether a request may go on, and says how much is left.
#[derive(Debug)]
pub struct Limiter {
    settings: RateLimitSettings,
    counts: Counts,
}

/// One limit's decision on one request, with what its headers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// The policy's name: `user` or `address`.
    pub policy: &'static str,
    pub rate: Rate,
    pub decision: Decision,
}

impl Limiter {
    /// Counts kept in this process.
    pub fn local(settings: RateLimitSettings) -> Self {
        Limiter {
            settings,
            counts: Counts::Local(LocalLimits::default()),
        }
    }

    /// Counts kept in Redis, shared by every instance using it.
    pub fn shared(settings: RateLimitSettings, redis: RedisLimits) -> Self {
        Limiter {
            settings,
            counts: Counts::Redis(redis),
        }
    }

    /// No limits at all.
    pub fn off() -> Self {
        Limiter::local(RateLimitSettings::default())
    }

    /// The user's limit, for a request whose token verified.
    pub async fn user(&self, user: &UserId) -> Option<Verdict> {
        let rate = self.settings.per_user?;
        Some(
            self.check("user", &format!("rl:u:{}", user.as_str()), rate)
                .await,
        )
    }

    /// The client address's limit, for a request whose authentication failed.
    pub async fn failed_authentication(
        &self,
        peer: IpAddr,
        headers: &HeaderMap,
    ) -> Option<Verdict> {
        let rate = self.settings.per_address?;
        let client = self.settings.trusted_proxies.client(peer, headers);
        Some(self.check("address", &format!("rl:a:{client}"), rate).await)
    }

    async fn check(&self, policy: &'static str, key: &str, rate: Rate) -> Verdict {
        let decision = match &self.counts {
            Counts::Local(counts) => counts.check(key, rate),
            Counts::Redis(counts) => counts.check(key, rate).await,
        };
        if !decision.allowed {
            metrics::counter!("rate_limited_requests_total", "limit" => policy).increment(1);
        }
        Verdict {
            policy,
            rate,
            decision,
        }
    }
}

static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

impl Verdict {
    /// `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers): the quota of
    /// a burst, the window it refills in, what is left and how long until it is whole.
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        let window = (self.rate.tolerance_us().div_ceil(1_000_000)).max(1);
        let policy = format!("\"{}\";q={};w={window}", self.policy, self.rate.burst);
        let reset = self.decision.reset.as_micros().div_ceil(1_000_000);
        let state = format!(
            "\"{}\";r={};t={reset}",
            self.policy, self.decision.remaining
        );
        if let (Ok(policy), Ok(state)) = (
            HeaderValue::from_str(&policy),
            HeaderValue::from_str(&state),
        ) {
            headers.insert(RATELIMIT_POLICY.clone(), policy);
            headers.insert(RATELIMIT.clone(), state);
        }
    }

    /// Whole seconds until a refused request may be retried, at least 1.
    pub fn retry_after_seconds(&self) -> u64 {
        self.decision
            .retry_after
            .as_micros()
            .div_ceil(1_000_000)
            .max(1) as u64
    }
}

/// Where the user's verdict is left for the response's headers: the extractor that checks
/// the limit runs inside the handler, the layer that writes headers outside it.
#[derive(Debug, Clone, Default)]
pub struct QuotaSlot(Arc<Mutex<Option<Verdict>>>);

impl QuotaSlot {
    pub fn put(&self, verdict: Verdict) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(verdict);
    }

    pub fn take(&self) -> Option<Verdict> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// Adds the remaining quota to every response whose request was counted.
pub async fn quota_headers(
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let slot = QuotaSlot::default();
    request.extensions_mut().insert(slot.clone());
    let mut response = next.run(request).await;
    if let Some(verdict) = slot.take() {
        verdict.write_headers(response.headers_mut());
    }
    response
}
