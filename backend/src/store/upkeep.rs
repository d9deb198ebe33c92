//! Upkeep and the pool, written once over a backend's [`Statements`]: purges in batches,
//! migrations and the folding of rows written before them, keys shared by every instance.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::statements::{Purge, Statements};
use super::{Pool, PoolStatus, Purged, StoreError, Upkeep};
use crate::domain::query::fold;

/// How many rows one purge statement removes: no single statement holds locks (SQLite's one
/// write lock above all) for long.
const PURGE_BATCH: i64 = 500;

/// How many unfolded rows one pass of the start-up fold reads.
const FOLD_BATCH: i64 = 500;

#[async_trait]
impl<S: Statements> Upkeep for S {
    async fn purge(
        &self,
        trashed_before: DateTime<Utc>,
        keys_before: DateTime<Utc>,
    ) -> Result<Purged, StoreError> {
        let mut purged = Purged::default();
        for (what, before, total) in [
            (Purge::Trashed, trashed_before, &mut purged.tasks),
            // Trashed lists once their tasks are gone, then the departures and losses as old
            // as the trash: each feed entry goes when a tombstone of its age would.
            (Purge::Lists, trashed_before, &mut purged.lists),
            (Purge::History, trashed_before, &mut purged.history),
            (Purge::Keys, keys_before, &mut purged.keys),
        ] {
            loop {
                let batch = self.purge_batch(what, before, PURGE_BATCH).await?;
                *total += batch;
                if batch < PURGE_BATCH as u64 {
                    break;
                }
            }
        }
        Ok(purged)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let (before, migrator) = self.run_migrations().await?;
        report_migrations(migrator, &before);
        // Rows written before the folded columns existed: a pass over all owners at start-up;
        // every instance computes the same values, so several at once are harmless.
        loop {
            let rows = self.unfolded(FOLD_BATCH).await?;
            if rows.is_empty() {
                return Ok(());
            }
            for (id, title, description) in rows {
                self.set_folded(id, fold(&title), description.as_deref().map(fold))
                    .await?;
            }
        }
    }

    async fn shared_key(&self, name: &str) -> Result<[u8; 32], StoreError> {
        let stored = self.keep_key(name, random_key()?).await?;
        key_from(stored)
    }
}

#[async_trait]
impl<S: Statements> Pool for S {
    async fn ping(&self) -> Result<(), StoreError> {
        Statements::ping(self).await
    }

    async fn close(&self) {
        Statements::close(self).await;
    }

    fn pool_status(&self) -> PoolStatus {
        Statements::pool_status(self)
    }
}

/// Logs which of `migrator`'s migrations this start applied (those not in `before`, the
/// versions the database had), or that the schema was already current.
fn report_migrations(migrator: &sqlx::migrate::Migrator, before: &[i64]) {
    let mut applied = 0;
    for migration in migrator.iter().filter(|m| !before.contains(&m.version)) {
        applied += 1;
        tracing::info!(
            version = migration.version,
            "applied migration {} ({})",
            migration.version,
            migration.description
        );
    }
    if let Some(latest) = migrator.iter().last() {
        tracing::info!(
            applied,
            "database schema at migration {} ({})",
            latest.version,
            latest.description
        );
    }
}

/// 32 random bytes, for a new shared key.
fn random_key() -> Result<[u8; 32], StoreError> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|error| StoreError::Other(error.to_string().into()))?;
    Ok(key)
}

/// A shared key as stored.
fn key_from(bytes: Vec<u8>) -> Result<[u8; 32], StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Other("a stored shared key is not 32 bytes".into()))
}
