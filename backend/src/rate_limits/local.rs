//! Rate-limit state in this process: right for one instance, or when each instance may
//! grant the whole limit.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use super::gcra::{self, Decision, Rate};

/// Locks are per shard, so that writers for different keys rarely meet.
const SHARDS: usize = 16;

/// Past this many keys, a shard drops those whose burst is whole again (they are as good as
/// never seen).
const PRUNE_AT: usize = 4096;

/// TATs by key, in shards.
#[derive(Debug)]
pub struct LocalLimits {
    shards: Vec<Mutex<HashMap<String, u64>>>,
    hasher: RandomState,
    epoch: Instant,
}

impl Default for LocalLimits {
    fn default() -> Self {
        LocalLimits {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
            epoch: Instant::now(),
        }
    }
}

impl LocalLimits {
    pub fn check(&self, key: &str, rate: Rate) -> Decision {
        let now = u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
        let shard = &self.shards[self.hasher.hash_one(key) as usize % SHARDS];
        let mut tats = shard.lock().unwrap_or_else(PoisonError::into_inner);
        let (decision, tat) = gcra::decide(rate, tats.get(key).copied(), now);
        if decision.allowed {
            if tats.len() >= PRUNE_AT && !tats.contains_key(key) {
                tats.retain(|_, tat| *tat > now);
            }
            tats.insert(key.to_owned(), tat);
        }
        decision
    }
}
