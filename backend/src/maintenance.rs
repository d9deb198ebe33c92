//! Work on a timer rather than per request: purging the trash and expired idempotency
//! records. Every instance runs it; the purge is written so that they do not collide.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use crate::domain::sync::IDEMPOTENCY_KEY_LIFETIME;
use crate::store::Upkeep;

/// How often an instance purges.
const PURGE_INTERVAL: Duration = Duration::from_secs(60 * 60);

/// Purges now and then every [`PURGE_INTERVAL`], starting at a random point of the first
/// minute so that instances started together spread out. A failed purge is logged and tried
/// again at the next tick.
pub fn spawn(store: Arc<dyn Upkeep>, trash_retention: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut jitter = [0u8; 1];
        let first = match getrandom::fill(&mut jitter) {
            Ok(()) => Duration::from_millis(u64::from(jitter[0]) * 60_000 / 256),
            Err(_) => Duration::ZERO,
        };
        tokio::time::sleep(first).await;
        let mut ticks = tokio::time::interval(PURGE_INTERVAL);
        loop {
            ticks.tick().await;
            purge_once(store.as_ref(), trash_retention).await;
        }
    })
}

/// One purge of what is older than its retention, as of now.
pub async fn purge_once(store: &dyn Upkeep, trash_retention: Duration) {
    let now = Utc::now();
    let (Ok(trash), Ok(keys)) = (
        chrono::Duration::from_std(trash_retention),
        chrono::Duration::from_std(IDEMPOTENCY_KEY_LIFETIME),
    ) else {
        return;
    };
    match store.purge(now - trash, now - keys).await {
        Ok(purged) if purged.tasks + purged.lists + purged.history + purged.keys > 0 => {
            tracing::info!(
                tasks = purged.tasks,
                lists = purged.lists,
                history = purged.history,
                idempotency_keys = purged.keys,
                "purged expired trash, history and idempotency keys"
            );
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "purge failed; trying again later"),
    }
}
