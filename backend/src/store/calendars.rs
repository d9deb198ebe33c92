//! What both backends share for calendar clients: how an app password's secret is made and
//! kept, and which sync tokens can be served.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use super::StoreError;
use crate::domain::calendar::{CalendarTags, StoredObject};
use crate::domain::{ChangeCursor, ListId, TaskId};

/// A new secret (256 random bits, URL-safe base64) and the hash that is kept of it. Not a
/// password a person chose, so a plain hash is enough: guessing a 256-bit secret is hopeless
/// however fast each guess is, and a slow hash would be paid on every calendar request.
pub(super) fn new_secret() -> Result<(String, [u8; 32]), StoreError> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|error| StoreError::Other(error.to_string().into()))?;
    let secret = URL_SAFE_NO_PAD.encode(secret);
    let hash = secret_hash(&secret);
    Ok((secret, hash))
}

/// The hash an app password is stored and looked up by.
pub(super) fn secret_hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Whether the changes after `since` can be served, given what the database has purged
/// (`purged_through`) and the first position it has not handed out (`frontier`): a token from
/// the start needs no history; one from before a purge, from before lists, or never issued
/// here (a restored backup, another deployment) must start again.
pub(super) fn servable(
    since: ChangeCursor,
    purged_through: i64,
    frontier: i64,
) -> Result<(), StoreError> {
    let position = since.get();
    if since != ChangeCursor::START
        && (since.is_from_before_lists() || position < purged_through || position >= frontier)
    {
        return Err(StoreError::HistoryExpired);
    }
    Ok(())
}

/// The 409 of a user who has as many app passwords as they may.
pub(super) fn too_many() -> StoreError {
    StoreError::Conflict("at most 50 app passwords: revoke one first")
}

/// The 404 of an app password that is not the caller's.
pub(super) fn missing() -> StoreError {
    StoreError::Missing("app password not found")
}

/// A task id as stored.
pub(super) fn task_id(id: i64) -> Result<TaskId, StoreError> {
    TaskId::try_from(id).map_err(|_| StoreError::Other(format!("task id {id}").into()))
}

/// A list id as stored.
pub(super) fn list_id(id: i64) -> Result<ListId, StoreError> {
    ListId::try_from(id).map_err(|_| StoreError::Other(format!("list id {id}").into()))
}

/// A stored object's row: task id, iCalendar text, resource name.
pub(super) fn stored_object(
    (id, ical, name): (i64, Option<String>, Option<String>),
) -> Result<StoredObject, StoreError> {
    Ok(StoredObject {
        task: task_id(id)?,
        ical,
        name,
    })
}

/// A calendar's row: list id, change tag, sync token, name.
pub(super) fn calendar_tags(
    (id, tag, token, name): (i64, i64, i64, Option<String>),
) -> Result<CalendarTags, StoreError> {
    Ok(CalendarTags {
        list: list_id(id)?,
        tag,
        token,
        name,
    })
}
