//! A bounded cache of tokens that already passed asymmetric verification.
//!
//! An EdDSA or RSA signature check costs tens of microseconds, and a browser sends the same
//! Better Auth token with every call for its 15 minutes of life. Remembering "this exact token
//! is valid for this user until its `exp`" turns the repeat checks into a hash lookup. The
//! key is a SHA-256 of the whole token, signature included, so a token that differs in any byte
//! is verified afresh. Nothing here is per-user state: every instance would compute the same
//! answer, so the service stays stateless.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use sha2::{Digest, Sha256};

use super::UserId;

/// The most tokens remembered; about 100 bytes each.
const CAPACITY: usize = 10_000;

#[derive(Default)]
pub(super) struct VerifiedTokens {
    entries: Mutex<HashMap<[u8; 32], Entry>>,
}

struct Entry {
    user: UserId,
    /// The token's `exp`: the entry is never used after it.
    expires_at: u64,
}

impl VerifiedTokens {
    /// The user of a token verified before and not yet expired.
    pub(super) fn get(&self, token: &str, now: u64) -> Option<UserId> {
        let key = digest(token);
        let mut entries = self.lock();
        match entries.get(&key) {
            Some(entry) if entry.expires_at > now => Some(entry.user.clone()),
            Some(_) => {
                entries.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Remembers a verified token until its `exp`.
    pub(super) fn insert(&self, token: &str, user: UserId, expires_at: u64, now: u64) {
        let mut entries = self.lock();
        if entries.len() >= CAPACITY {
            entries.retain(|_, entry| entry.expires_at > now);
            if entries.len() >= CAPACITY {
                // Still full of live tokens: start over rather than grow. Crude, bounded,
                // and a miss only costs one verification.
                entries.clear();
            }
        }
        entries.insert(digest(token), Entry { user, expires_at });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> UserId {
        UserId::parse(name).expect("valid")
    }

    #[test]
    fn a_token_is_remembered_until_its_expiry() {
        let cache = VerifiedTokens::default();
        cache.insert("token-a", user("alice"), 1_000, 500);
        assert_eq!(cache.get("token-a", 999), Some(user("alice")));
        assert_eq!(cache.get("token-a", 1_000), None, "not at or after exp");
        assert_eq!(
            cache.get("token-a", 999),
            None,
            "expired entries are dropped"
        );
    }

    #[test]
    fn a_token_differing_in_any_byte_is_not_found() {
        let cache = VerifiedTokens::default();
        cache.insert("header.payload.signature", user("alice"), 1_000, 0);
        assert_eq!(cache.get("header.payload.signaturf", 0), None);
        assert_eq!(cache.get("header.payload.signature ", 0), None);
    }

    #[test]
    fn the_cache_never_grows_past_its_capacity() {
        let cache = VerifiedTokens::default();
        for n in 0..(CAPACITY * 2 + 5) {
            cache.insert(&format!("token-{n}"), user("alice"), 1_000, 0);
            assert!(cache.len() <= CAPACITY);
        }
    }
}
