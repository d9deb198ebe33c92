//! Keyset cursors: where the next page of a list starts, signed so that a cursor edited by
//! hand, or reused with other filters or another sort, is refused instead of giving a wrong
//! page.
//!
//! A cursor is `base64url(payload) "." base64url(mac)`. The payload is JSON holding the sort,
//! a digest of the filters, and the last task's sort value and id; the MAC is HMAC-SHA256 over
//! the caller's id and the payload, with a key every instance reads from the database.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::domain::query::{Assignee, Parent};
use crate::domain::{
    Filter, Keyset, ListId, SortField, SortKey, SortValue, Task, TaskId, TaskUid, UserId,
};
use crate::http::CursorKey;

/// The longest cursor accepted; real ones are under 200 characters.
const MAX_CURSOR_CHARS: usize = 1024;
/// The bytes of the MAC that are kept: 128 bits.
const MAC_BYTES: usize = 16;

#[derive(Serialize, Deserialize)]
struct Payload {
    /// The sort, as in the query (`-due_at`).
    s: String,
    /// A digest of the filters.
    f: String,
    /// The last task's sort value.
    v: Value,
    /// The last task's id.
    i: i64,
}

/// Why a cursor was refused (always a 422 naming `cursor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error("is not a cursor this service issued")]
    Forged,
    #[error("was issued for another sort or other filters; start again without it")]
    OtherQuery,
}

/// The cursor of the page that starts after `last`.
pub fn encode(
    key: &CursorKey,
    user: &UserId,
    sort: SortKey,
    filter: &Filter,
    last: &Task,
) -> String {
    let payload = Payload {
        s: sort.to_string(),
        f: filter_digest(filter),
        v: value_to_json(&SortValue::of(last, sort.field)),
        i: last.id.get(),
    };
    // A struct of strings and numbers always serializes.
    let payload = serde_json::to_vec(&payload).unwrap_or_default();
    let mac = mac(key, user, &payload);
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(&payload),
        URL_SAFE_NO_PAD.encode(&mac[..MAC_BYTES])
    )
}

/// Where the page after `cursor` starts, if `cursor` was issued to `user` for this sort and
/// these filters.
pub fn decode(
    key: &CursorKey,
    user: &UserId,
    sort: SortKey,
    filter: &Filter,
    cursor: &str,
) -> Result<Keyset, CursorError> {
    if cursor.len() > MAX_CURSOR_CHARS {
        return Err(CursorError::Forged);
    }
    let (payload, tag) = cursor.split_once('.').ok_or(CursorError::Forged)?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| CursorError::Forged)?;
    let tag = URL_SAFE_NO_PAD
        .decode(tag)
        .map_err(|_| CursorError::Forged)?;
    let mut check =
        Hmac::<Sha256>::new_from_slice(key.0.as_slice()).map_err(|_| CursorError::Forged)?;
    check.update(user.as_str().as_bytes());
    check.update(&[0]);
    check.update(&payload);
    if tag.len() != MAC_BYTES {
        return Err(CursorError::Forged);
    }
    check
        .verify_truncated_left(&tag)
        .map_err(|_| CursorError::Forged)?;
    // Signed by us: from here on a mismatch means another query, not a forgery.
    let payload: Payload = serde_json::from_slice(&payload).map_err(|_| CursorError::Forged)?;
    if payload.s != sort.to_string() || payload.f != filter_digest(filter) {
        return Err(CursorError::OtherQuery);
    }
    let value = value_from_json(sort.field, payload.v).ok_or(CursorError::Forged)?;
    let id = TaskId::try_from(payload.i).map_err(|_| CursorError::Forged)?;
    Ok(Keyset { value, id })
}

fn mac(key: &CursorKey, user: &UserId, payload: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length; 32 bytes never fails.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key.0.as_slice()) else {
        return vec![0; MAC_BYTES];
    };
    mac.update(user.as_str().as_bytes());
    mac.update(&[0]);
    mac.update(payload);
    mac.finalize().into_bytes().to_vec()
}

/// A digest of the filters in a canonical form: the order of repeated parameters and the
/// spelling of dates do not matter, their meaning does.
fn filter_digest(filter: &Filter) -> String {
    let mut statuses: Vec<&str> = filter.statuses.iter().map(|s| s.as_str()).collect();
    statuses.sort_unstable();
    statuses.dedup();
    let mut tags: Vec<String> = filter.tags.iter().map(|tag| tag.key()).collect();
    tags.sort_unstable();
    tags.dedup();
    let mut priorities: Vec<i16> = filter.priorities.iter().map(|p| p.rank()).collect();
    priorities.sort_unstable();
    priorities.dedup();
    let micros = |time: Option<chrono::DateTime<chrono::Utc>>| time.map(|t| t.timestamp_micros());
    let mut canonical = serde_json::json!([
        statuses,
        tags,
        priorities,
        filter.search,
        micros(filter.due_before),
        micros(filter.due_after),
        filter.has_due,
        micros(filter.updated_since),
        filter.trashed,
    ]);
    // The filters added since, only when given: a cursor without them keeps its digest.
    let parent = filter.parent.map(|parent| match parent {
        Parent::Task(id) => id.get().to_string(),
        Parent::Nobody => "none".into(),
    });
    let assignee = filter.assignee.as_ref().map(|assignee| match assignee {
        Assignee::Me => "me".to_owned(),
        Assignee::User(user) => format!("user:{user}"),
        Assignee::Nobody => "none".to_owned(),
    });
    let uid = filter.uid.as_ref().map(TaskUid::as_str);
    let list = filter.list.map(ListId::get);
    let given = list.is_some() || assignee.is_some() || parent.is_some() || uid.is_some();
    if given && let Some(all) = canonical.as_array_mut() {
        all.push(serde_json::json!([list, assignee, parent, uid]));
    }
    let digest = Sha256::digest(canonical.to_string().as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..12])
}

fn value_to_json(value: &SortValue) -> Value {
    match value {
        SortValue::Micros(micros) => micros.map_or(Value::Null, Value::from),
        SortValue::Rank(rank) => Value::from(*rank),
        SortValue::Text(text) => Value::from(text.as_str()),
    }
}

fn value_from_json(field: SortField, value: Value) -> Option<SortValue> {
    match (field, value) {
        (SortField::DueAt, Value::Null) => Some(SortValue::Micros(None)),
        (SortField::CreatedAt | SortField::UpdatedAt | SortField::DueAt, Value::Number(n)) => {
            Some(SortValue::Micros(Some(n.as_i64()?)))
        }
        (SortField::Priority, Value::Number(n)) => Some(SortValue::Rank(n.as_i64()?)),
        (SortField::Title | SortField::Position, Value::String(text)) => {
            Some(SortValue::Text(text))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Position, Priority, Tags, TaskStatus};
    use std::sync::Arc;

    fn key(byte: u8) -> CursorKey {
        CursorKey(Arc::new([byte; 32]))
    }

    fn task() -> Task {
        let now = chrono::Utc::now();
        Task {
            id: TaskId::try_from(7).expect("positive"),
            title: "Buy milk".into(),
            description: None,
            status: TaskStatus::Pending,
            user_id: UserId::parse("alice").expect("valid"),
            list_id: crate::domain::ListId::try_from(1).expect("positive"),
            assignee_id: None,
            created_at: now,
            updated_at: now,
            due_at: None,
            priority: Priority::High,
            tags: Tags::default(),
            position: Position::first(),
            completed_at: None,
            version: 1,
            deleted_at: None,
            uid: crate::domain::TaskUid::random(),
            parent_id: None,
            recurrence: None,
            completed_count: 0,
            last_completed_at: None,
        }
    }

    #[test]
    fn a_cursor_round_trips_for_its_own_query_only() {
        let alice = UserId::parse("alice").expect("valid");
        let sort: SortKey = "-due_at".parse().expect("valid");
        let filter = Filter::default();
        let cursor = encode(&key(1), &alice, sort, &filter, &task());
        let keyset = decode(&key(1), &alice, sort, &filter, &cursor).expect("valid");
        assert_eq!(keyset.id.get(), 7);
        assert_eq!(keyset.value, SortValue::Micros(None));

        let other_sort: SortKey = "due_at".parse().expect("valid");
        assert_eq!(
            decode(&key(1), &alice, other_sort, &filter, &cursor),
            Err(CursorError::OtherQuery)
        );
        let other_filter = Filter {
            has_due: Some(true),
            ..Filter::default()
        };
        assert_eq!(
            decode(&key(1), &alice, sort, &other_filter, &cursor),
            Err(CursorError::OtherQuery)
        );
        let bob = UserId::parse("bob").expect("valid");
        assert_eq!(
            decode(&key(1), &bob, sort, &filter, &cursor),
            Err(CursorError::Forged)
        );
        assert_eq!(
            decode(&key(2), &alice, sort, &filter, &cursor),
            Err(CursorError::Forged)
        );
    }

    #[test]
    fn an_edited_cursor_is_refused() {
        let alice = UserId::parse("alice").expect("valid");
        let sort = SortKey::default();
        let filter = Filter::default();
        let cursor = encode(&key(1), &alice, sort, &filter, &task());
        let (payload, mac) = cursor.split_once('.').expect("two parts");
        let mut json: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64"))
                .expect("json");
        json["i"] = Value::from(1);
        let edited = format!(
            "{}.{mac}",
            URL_SAFE_NO_PAD.encode(json.to_string().as_bytes())
        );
        for bad in [edited.as_str(), "", ".", "abc", "a.b.c", &"x".repeat(2000)] {
            assert_eq!(
                decode(&key(1), &alice, sort, &filter, bad),
                Err(CursorError::Forged),
                "{bad}"
            );
        }
    }
}
