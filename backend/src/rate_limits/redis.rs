//! Rate-limit state in Redis, shared by every instance: one round trip per request, a Lua
//! script doing the GCRA of [`super::gcra`] on Redis's own clock (so that instances' clocks
//! need not agree). When Redis is down or slow the request goes through (fail open): a limit
//! is a protection, not a reason to refuse service.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::gcra::{Decision, Rate};

/// The GCRA of `gcra::decide`, on Redis's clock. KEYS[1]: the key; ARGV: interval and
/// tolerance in microseconds. Returns allowed (0/1), remaining, retry-after and reset (µs).
const SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local next = tat + interval
if next - now > tolerance then
  return {0, 0, next - now - tolerance, tat - now}
end
redis.call('SET', KEYS[1], next, 'PX', math.ceil((next - now) / 1000) + 1)
return {1, math.floor((tolerance - (next - now)) / interval), 0, next - now}
";

/// The shared limits, through one multiplexed connection that reconnects by itself.
pub struct RedisLimits {
    connection: Arc<OnceLock<ConnectionManager>>,
    script: redis::Script,
    timeout: Duration,
    failing: AtomicBool,
}

impl std::fmt::Debug for RedisLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLimits")
            .field("connected", &self.connection.get().is_some())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisLimits {
    /// Connects in the background, retrying until Redis answers; until then, and whenever
    /// it fails, requests go through.
    pub fn connect(client: redis::Client, timeout: Duration) -> Self {
        let connection = Arc::new(OnceLock::new());
        let slot = connection.clone();
        // One attempt at a time, each bounded: the first failure is reported at once (not
        // after the manager's own retries), later ones are not repeated until Redis answers.
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(0)
            .set_connection_timeout(Some(Duration::from_secs(2)));
        tokio::spawn(async move {
            let mut retry = Duration::from_millis(200);
            let mut warned = false;
            loop {
                match ConnectionManager::new_with_config(client.clone(), config.clone()).await {
                    Ok(manager) => {
                        match warned {
                            true => tracing::info!("Redis answers now; rate limits are enforced"),
                            false => tracing::info!("rate limits shared through Redis"),
                        }
                        let _ = slot.set(manager);
                        return;
                    }
                    Err(error) => {
                        if !std::mem::replace(&mut warned, true) {
                            tracing::warn!(
                                %error,
                                "cannot reach Redis; requests go through unlimited until it answers"
                            );
                        }
                        tokio::time::sleep(retry).await;
                        retry = (retry * 2).min(Duration::from_secs(5));
                    }
                }
            }
        });
        RedisLimits {
            connection,
            script: redis::Script::new(SCRIPT),
            timeout,
            failing: AtomicBool::new(false),
        }
    }

    pub async fn check(&self, key: &str, rate: Rate) -> Decision {
        let Some(connection) = self.connection.get() else {
            metrics::counter!("rate_limit_store_failures_total").increment(1);
            return Decision::unknown(rate);
        };
        let mut connection = connection.clone();
        let mut invocation = self.script.key(key);
        invocation.arg(rate.interval_us).arg(rate.tolerance_us());
        let answer = tokio::time::timeout(
            self.timeout,
            invocation.invoke_async::<(u8, u64, u64, u64)>(&mut connection),
        )
        .await;
        match answer {
            Ok(Ok((allowed, remaining, retry_after, reset))) => {
                if self.failing.swap(false, Ordering::AcqRel) {
                    tracing::info!("Redis answers again; rate limits are enforced");
                }
                Decision {
                    allowed: allowed == 1,
                    remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
                    retry_after: Duration::from_micros(retry_after),
                    reset: Duration::from_micros(reset),
                }
            }
            failed => {
                metrics::counter!("rate_limit_store_failures_total").increment(1);
                if !self.failing.swap(true, Ordering::AcqRel) {
                    let why = match failed {
                        Ok(Err(error)) => error.to_string(),
                        _ => format!("no answer within {} ms", self.timeout.as_millis()),
                    };
                    tracing::warn!(
                        error = %why,
                        "Redis failed; requests go through unlimited until it answers again"
                    );
                }
                Decision::unknown(rate)
            }
        }
    }
}
