//! A bounded cache of tokens that already passed verification.
//!
//! An EdDSA or RSA signature check costs tens of microseconds, an HS256 one (with the parsing
//! of the token around it) about a sixth of a get's instructions, and a browser sends the same
//! token with every call for its life. Remembering "this exact token was valid for this user,
//! checked with this key" turns the repeat checks into a hash lookup. The entry holds the
//! whole token, signature included, and is found only by an equal one, byte for byte; the map
//! hashes with SipHash under keys drawn at random for each process, so nobody can make tokens
//! collide on purpose. An entry is only used while the key that verified it is still current
//! (a key removed from the JWKS revokes its tokens at the next refresh), and for no longer
//! than its token's `exp` or the entry's own cap, whichever comes first. Nothing here is
//! per-user state: every instance would compute the same answer, so the service stays
//! stateless.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use super::claims::Verified;

/// Identifies the exact key a token was verified with: its `kid` and a digest of the key
/// itself, so a key id reused for new key material does not inherit old entries.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct KeyIdentity {
    pub kid: String,
    pub fingerprint: [u8; 32],
}

/// The most tokens remembered; each takes its token's length and about 100 bytes.
const CAPACITY: usize = 4_096;

#[derive(Default)]
pub(super) struct VerifiedTokens {
    entries: Mutex<HashMap<Box<str>, Entry>>,
}

struct Entry {
    verified: Verified,
    /// The token's `exp` or the cap, whichever is sooner: the entry is never used after it.
    expires_at: u64,
    key: KeyIdentity,
}

impl VerifiedTokens {
    /// The user of a token verified before, not yet expired, whose key `is_current` still.
    pub(super) fn get(
        &self,
        token: &str,
        now: u64,
        is_current: impl Fn(&KeyIdentity) -> bool,
    ) -> Option<Verified> {
        let mut entries = self.lock();
        match entries.get(token) {
            Some(entry) if entry.expires_at > now && is_current(&entry.key) => {
                Some(entry.verified.clone())
            }
            Some(_) => {
                entries.remove(token);
                None
            }
            None => None,
        }
    }

    /// Remembers a token verified with `key` until `expires_at`.
    pub(super) fn insert(
        &self,
        token: &str,
        verified: Verified,
        key: KeyIdentity,
        expires_at: u64,
        now: u64,
    ) {
        let mut entries = self.lock();
        if entries.len() >= CAPACITY {
            entries.retain(|_, entry| entry.expires_at > now);
            if entries.len() >= CAPACITY {
                // Still full of live tokens: start over rather than grow. Crude, bounded,
                // and a miss only costs one verification.
                entries.clear();
            }
        }
        entries.insert(
            token.into(),
            Entry {
                verified,
                expires_at,
                key,
            },
        );
    }

    /// Forgets every token whose key is no longer current (after a key-set refresh).
    pub(super) fn retain_keys(&self, is_current: impl Fn(&KeyIdentity) -> bool) {
        self.lock().retain(|_, entry| is_current(&entry.key));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> Verified {
        Verified {
            user: crate::domain::UserId::parse(name).expect("valid"),
            expires_at: 2_000,
        }
    }

    fn key(kid: &str) -> KeyIdentity {
        KeyIdentity {
            kid: kid.into(),
            fingerprint: [kid.len() as u8; 32],
        }
    }

    fn any(_: &KeyIdentity) -> bool {
        true
    }

    #[test]
    fn a_token_is_remembered_until_its_expiry() {
        let cache = VerifiedTokens::default();
        cache.insert("token-a", user("alice"), key("k"), 1_000, 500);
        assert_eq!(cache.get("token-a", 999, any), Some(user("alice")));
        assert_eq!(
            cache.get("token-a", 1_000, any),
            None,
            "not at or after exp"
        );
        assert_eq!(
            cache.get("token-a", 999, any),
            None,
            "expired entries are dropped"
        );
    }

    #[test]
    fn a_token_differing_in_any_byte_is_not_found() {
        let cache = VerifiedTokens::default();
        cache.insert(
            "header.payload.signature",
            user("alice"),
            key("k"),
            1_000,
            0,
        );
        assert_eq!(cache.get("header.payload.signaturf", 0, any), None);
        assert_eq!(cache.get("header.payload.signature ", 0, any), None);
    }

    #[test]
    fn a_token_whose_key_is_gone_is_not_found() {
        let cache = VerifiedTokens::default();
        cache.insert("t1", user("alice"), key("old"), 1_000, 0);
        cache.insert("t2", user("bob"), key("new"), 1_000, 0);
        let only_new = |k: &KeyIdentity| *k == key("new");
        assert_eq!(cache.get("t1", 0, only_new), None);
        cache.retain_keys(only_new);
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.get("t2", 0, only_new), Some(user("bob")));
    }

    #[test]
    fn the_cache_never_grows_past_its_capacity() {
        let cache = VerifiedTokens::default();
        for n in 0..(CAPACITY * 2 + 5) {
            cache.insert(&format!("token-{n}"), user("alice"), key("k"), 1_000, 0);
            assert!(cache.len() <= CAPACITY);
        }
    }
}
