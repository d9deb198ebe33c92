//! Telling the other instances that a user wrote: a queue drained by a task of its own, so
//! that a writer never waits for it, and many writes go out in one statement.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::domain::UserId;
use crate::store::ChangeFeed;

/// Writes waiting to be announced; past it they are dropped, and the poll carries them.
const ANNOUNCE_QUEUE: usize = 4096;

/// The most users one announcing statement names.
const ANNOUNCE_BATCH: usize = 256;

/// Starts announcing writes to the other instances: the queue to give
/// [`super::hub::Hub::announcing`], drained by a task of its own.
pub fn announcements(
    store: Arc<dyn ChangeFeed>,
) -> (mpsc::Sender<UserId>, tokio::task::JoinHandle<()>) {
    let (sender, receiver) = mpsc::channel(ANNOUNCE_QUEUE);
    (sender, tokio::spawn(announce(store, receiver)))
}

/// Announces queued writes, everything waiting in one statement. A failure is logged once
/// until announcing works again.
async fn announce(store: Arc<dyn ChangeFeed>, mut queue: mpsc::Receiver<UserId>) {
    let mut batch = Vec::with_capacity(ANNOUNCE_BATCH);
    let mut failing = false;
    while queue.recv_many(&mut batch, ANNOUNCE_BATCH).await > 0 {
        batch.sort_by(|a: &UserId, b: &UserId| a.as_str().cmp(b.as_str()));
        batch.dedup();
        match store.announce(&batch).await {
            Ok(()) if failing => {
                failing = false;
                tracing::info!("announcing writes to the other instances again");
            }
            Ok(()) => {}
            Err(error) if !failing => {
                failing = true;
                tracing::warn!(
                    %error,
                    "cannot announce writes; other instances see them at their next poll"
                );
            }
            Err(_) => {}
        }
        batch.clear();
    }
}
