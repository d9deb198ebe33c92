//! The entity tags of the API's representations (RFC 9110 §8.8.3).
//!
//! A task's ETag is `"<id>-<version>"`, strong: the version changes with every change to the
//! task, so two representations with one tag are the same bytes. A list's is weak, a digest
//! of the caller and the page.

use axum::http::HeaderValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::domain::{TaskId, UserId};

/// The strong ETag of a task at `version`.
pub fn task_etag(id: TaskId, version: i64) -> HeaderValue {
    // Digits, a dash and quotes: always a valid header value.
    HeaderValue::from_str(&format!("\"{id}-{version}\""))
        .unwrap_or(HeaderValue::from_static("\"\""))
}

/// The weak ETag of one page of a list: the same page for the same caller, byte for byte,
/// with the same total. The caller is part of it, so two users' lists never share a tag.
pub fn list_etag(user: &UserId, body: &[u8], total: i64) -> HeaderValue {
    let mut digest = Sha256::new();
    digest.update(user.as_str().as_bytes());
    digest.update([0]);
    digest.update(total.to_be_bytes());
    digest.update(body);
    let tag = URL_SAFE_NO_PAD.encode(&digest.finalize()[..16]);
    HeaderValue::from_str(&format!("W/\"{tag}\"")).unwrap_or(HeaderValue::from_static("W/\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_tags_differ_per_user() {
        let alice = UserId::parse("alice".to_owned()).expect("valid");
        let bob = UserId::parse("bob".to_owned()).expect("valid");
        assert_ne!(list_etag(&alice, b"[]", 0), list_etag(&bob, b"[]", 0));
        assert_eq!(list_etag(&alice, b"[]", 0), list_etag(&alice, b"[]", 0));
        assert_ne!(list_etag(&alice, b"[]", 0), list_etag(&alice, b"[]", 1));
    }
}
