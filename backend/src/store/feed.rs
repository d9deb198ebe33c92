//! The change feed, written once over a backend's [`Statements`].

use async_trait::async_trait;

use super::statements::Statements;
use super::{ChangeFeed, StoreError};
use crate::domain::{Change, ChangeCursor, ChangePage, UserId};

#[async_trait]
impl<S: Statements> ChangeFeed for S {
    async fn changes(
        &self,
        owner: &UserId,
        since: ChangeCursor,
        limit: u32,
    ) -> Result<ChangePage, StoreError> {
        let (changes, counters) = self.feed_rows(owner, since, i64::from(limit) + 1).await?;
        feed_page(changes, since, limit, counters)
    }

    async fn change_counters(&self, owners: &[UserId]) -> Result<Vec<(UserId, i64)>, StoreError> {
        Ok(counters(self.counter_rows(owners).await?))
    }

    async fn announce(&self, owners: &[UserId]) -> Result<(), StoreError> {
        Statements::announce(self, owners).await
    }
}

/// A feed page from the changes after `since` (one more than `limit`, to tell whether more
/// follow) and the owner's counters, read after the changes: a purge that removed a change the
/// rows missed has then raised `purged_through` past `since`.
fn feed_page(
    changes: Vec<Change>,
    since: ChangeCursor,
    limit: u32,
    counters: Option<(i64, i64)>,
) -> Result<ChangePage, StoreError> {
    let mut changes = changes;
    let (last_change, purged_through) = counters.unwrap_or_default();
    let since_seq = since.get();
    // A cursor from the start needs no history; one from before a purge, or one this
    // database never issued (restored from a backup, another deployment), cannot be served.
    if since != ChangeCursor::START && (since_seq < purged_through || since_seq > last_change) {
        return Err(StoreError::HistoryExpired);
    }
    let has_more = changes.len() > limit as usize;
    changes.truncate(limit as usize);
    // Never the owner's counter: a change committed between the two reads would be skipped.
    let next_cursor = changes.last().map_or(since, Change::cursor);
    Ok(ChangePage {
        changes,
        next_cursor,
        has_more,
    })
}

/// Counter rows as read, with the owners parsed back (a stored owner always parses).
fn counters(rows: Vec<(String, i64)>) -> Vec<(UserId, i64)> {
    rows.into_iter()
        .filter_map(|(owner, counter)| Some((UserId::parse(owner).ok()?, counter)))
        .collect()
}
