//! The change feed, written once over a backend's [`Statements`].

use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::statements::{FeedBounds, Statements};
use super::{ChangeFeed, StoreError};
use crate::domain::{Change, ChangeCursor, ChangePage, UserId};

/// How long a feed read waits for changes that committed but cannot be read yet.
const SETTLE_WITHIN: Duration = Duration::from_secs(1);

#[async_trait]
impl<S: Statements> ChangeFeed for S {
    async fn changes(
        &self,
        owner: &UserId,
        since: ChangeCursor,
        limit: u32,
        lists: bool,
    ) -> Result<ChangePage, StoreError> {
        // Refused before any read: its positions mean something else now.
        if since.is_from_before_lists() {
            return Err(StoreError::HistoryExpired);
        }
        // A change below the head that cannot be read yet waits for an older transaction,
        // of any writer, to end; they are short, so a moment's wait lets a client read its
        // own write. Past the wait the page is still exact, only shorter.
        let deadline = Instant::now() + SETTLE_WITHIN;
        let mut pause = Duration::from_millis(1);
        loop {
            let (changes, bounds) = self
                .feed_rows(owner, since, i64::from(limit) + 1, lists)
                .await?;
            let page = feed_page(changes, since, limit, bounds)?;
            if !page.settling || page.has_more || Instant::now() + pause > deadline {
                return Ok(page);
            }
            // Waiting, ask only for the horizon (one small statement) until it passes the
            // head, then read the rows again: under many writers a read may settle often.
            loop {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(50));
                if self.feed_horizon().await? > bounds.head || Instant::now() + pause > deadline {
                    break;
                }
            }
        }
    }

    async fn change_counters(&self, owners: &[UserId]) -> Result<Vec<(UserId, i64)>, StoreError> {
        Ok(counters(self.counter_rows(owners).await?))
    }

    async fn announce(&self, owners: &[UserId]) -> Result<(), StoreError> {
        Statements::announce(self, owners).await
    }
}

/// A feed page from the changes after `since` (one more than `limit`, to tell whether more
/// follow) and the bounds read in the same snapshot: a purge that removed a change the rows
/// missed has then raised `purged_through` past `since`.
fn feed_page(
    changes: Vec<Change>,
    since: ChangeCursor,
    limit: u32,
    bounds: FeedBounds,
) -> Result<ChangePage, StoreError> {
    let mut changes = changes;
    let since_position = since.get();
    // A cursor from the start needs no history; one from before a purge, or one this
    // database never issued (restored from a backup, another deployment), cannot be served.
    if since != ChangeCursor::START
        && (since_position < bounds.purged_through || since_position >= bounds.frontier)
    {
        return Err(StoreError::HistoryExpired);
    }
    let has_more = changes.len() > limit as usize;
    changes.truncate(limit as usize);
    // Never the head: a change committed below it but after the snapshot would be skipped.
    let next_cursor = changes.last().map_or(since, Change::cursor);
    Ok(ChangePage {
        changes,
        next_cursor,
        has_more,
        settling: bounds.head >= bounds.horizon,
    })
}

/// Counter rows as read, with the owners parsed back (a stored owner always parses).
fn counters(rows: Vec<(String, i64)>) -> Vec<(UserId, i64)> {
    rows.into_iter()
        .filter_map(|(owner, counter)| Some((UserId::parse(owner).ok()?, counter)))
        .collect()
}
