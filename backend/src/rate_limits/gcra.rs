//! The generic cell rate algorithm: one number per key (the theoretical arrival time, TAT),
//! so the same arithmetic runs in process and as a Lua script in Redis.

use std::time::Duration;

/// A rate with a burst: `burst` requests at once, then one every `interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Microseconds between two requests at the sustained rate.
    pub interval_us: u64,
    /// How many requests may come at once after a quiet spell.
    pub burst: u32,
}

impl Rate {
    /// `per_minute` requests a minute on average, `burst` at once; `None` when `per_minute`
    /// is 0 (no limit).
    pub fn per_minute(per_minute: u32, burst: u32) -> Option<Rate> {
        (per_minute > 0).then(|| Rate {
            interval_us: (60_000_000 / u64::from(per_minute)).max(1),
            burst: burst.max(1),
        })
    }

    /// The most time a key may bank: a full burst.
    pub fn tolerance_us(&self) -> u64 {
        self.interval_us * u64::from(self.burst)
    }
}

/// What one request was told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Requests left in the burst after this one.
    pub remaining: u32,
    /// When a refused request may be retried.
    pub retry_after: Duration,
    /// Until the burst is whole again.
    pub reset: Duration,
}

impl Decision {
    /// A request let through without a decision (the shared store did not answer).
    pub fn unknown(rate: Rate) -> Decision {
        Decision {
            allowed: true,
            remaining: rate.burst,
            retry_after: Duration::ZERO,
            reset: Duration::ZERO,
        }
    }
}

/// Decides one request at `now_us` against the key's `tat_us` (none: never seen), and returns
/// the decision with the TAT to store (unchanged when refused).
pub fn decide(rate: Rate, tat_us: Option<u64>, now_us: u64) -> (Decision, u64) {
    let tat = tat_us.unwrap_or(now_us).max(now_us);
    let next = tat + rate.interval_us;
    let tolerance = rate.tolerance_us();
    if next - now_us > tolerance {
        let decision = Decision {
            allowed: false,
            remaining: 0,
            retry_after: Duration::from_micros(next - now_us - tolerance),
            reset: Duration::from_micros(tat - now_us),
        };
        return (decision, tat);
    }
    let decision = Decision {
        allowed: true,
        remaining: u32::try_from((tolerance - (next - now_us)) / rate.interval_us).unwrap_or(0),
        retry_after: Duration::ZERO,
        reset: Duration::from_micros(next - now_us),
    };
    (decision, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000;

    #[test]
    fn a_burst_then_the_sustained_rate() {
        // 600 a minute (one every 100 ms), bursts of 100.
        let rate = Rate::per_minute(600, 100).expect("a rate");
        assert_eq!(rate.interval_us, 100_000);
        let (mut tat, now) = (None, 1_000 * SECOND);
        for n in 0..100 {
            let (decision, next) = decide(rate, tat, now);
            assert!(decision.allowed, "request {n} of the burst");
            assert_eq!(decision.remaining, 99 - n);
            tat = Some(next);
        }
        let (refused, kept) = decide(rate, tat, now);
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 0);
        assert_eq!(refused.retry_after, Duration::from_millis(100));
        assert_eq!(kept, tat.expect("a tat"), "a refusal spends nothing");
        // 100 ms later exactly one more fits, then none.
        let later = now + 100_000;
        let (allowed, next) = decide(rate, tat, later);
        assert!(allowed.allowed);
        assert_eq!(allowed.remaining, 0);
        assert!(!decide(rate, Some(next), later).0.allowed);
        // After 10 s of quiet the burst is whole again.
        let (rested, _) = decide(rate, Some(next), later + 10 * SECOND);
        assert_eq!(rested.remaining, 99);
    }

    #[test]
    fn over_a_minute_the_count_is_burst_plus_rate() {
        let rate = Rate::per_minute(60, 10).expect("a rate");
        let (mut tat, mut allowed) = (None, 0);
        // A request every 10 ms for 60 s: 10 at once, then one a second.
        for step in 0..6_000u64 {
            let (decision, next) = decide(rate, tat, 5 * SECOND + step * 10_000);
            if decision.allowed {
                allowed += 1;
            }
            tat = Some(next);
        }
        assert_eq!(allowed, 10 + 59);
    }

    #[test]
    fn zero_means_no_limit() {
        assert_eq!(Rate::per_minute(0, 100), None);
    }
}
