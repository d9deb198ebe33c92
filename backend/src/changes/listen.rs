//! Hearing of other instances' writes sooner than the poll: PostgreSQL `LISTEN`/`NOTIFY`.
//!
//! Optional (`DATABASE_LISTEN_URL`), because `LISTEN` needs a session of its own, which a
//! transaction pooler cannot give. Every write through an instance is announced after it
//! commits, batched, from a task of its own; the listener wakes the streams of the users
//! named. Announcements lost while the listener was away are covered by waking every stream
//! when it is back, and by the poll, which stays on.

use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use tokio::sync::mpsc;

use super::hub::Hub;
use crate::domain::UserId;
use crate::store::TaskStore;
use crate::store::postgres::NOTIFY_CHANNEL;

/// Writes waiting to be announced; past it they are dropped, and the poll carries them.
const ANNOUNCE_QUEUE: usize = 4096;

/// The most users one announcing statement names.
const ANNOUNCE_BATCH: usize = 256;

/// The longest wait between two attempts to get the listening session back.
const MAX_RETRY: Duration = Duration::from_secs(10);

/// Starts announcing writes to the other instances: the queue to give
/// [`Hub::announcing`], drained by a task of its own.
pub fn announcements(store: Arc<dyn TaskStore>) -> mpsc::Sender<UserId> {
    let (sender, receiver) = mpsc::channel(ANNOUNCE_QUEUE);
    tokio::spawn(announce(store, receiver));
    sender
}

/// Announces queued writes, everything waiting in one statement. A failure is logged once
/// until announcing works again.
async fn announce(store: Arc<dyn TaskStore>, mut queue: mpsc::Receiver<UserId>) {
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

/// Listens on a session of its own (from `options`) and wakes the streams of the users other
/// instances announce, until the hub is gone. When the session drops it is opened again with
/// backoff, and every stream is woken: what was announced meanwhile was not heard.
pub async fn listen(options: PgConnectOptions, hub: Weak<Hub>) {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_lazy_with(options);
    let mut retry = Duration::from_millis(250);
    let mut failing = false;
    let mut heard = false;
    loop {
        let listening = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(NOTIFY_CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let mut listener = match listening.await {
            Ok(listener) => listener,
            Err(error) => {
                if !std::mem::replace(&mut failing, true) {
                    tracing::warn!(%error, "cannot listen for other instances' writes; polling only");
                }
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(MAX_RETRY);
                continue;
            }
        };
        let Some(live) = hub.upgrade() else { return };
        match std::mem::replace(&mut failing, false) {
            true => tracing::info!("listening for other instances' writes again"),
            false if !std::mem::replace(&mut heard, true) => tracing::info!(
                channel = NOTIFY_CHANNEL,
                "listening for other instances' writes (LISTEN)"
            ),
            false => {}
        }
        live.wake_all();
        drop(live);
        retry = Duration::from_millis(250);
        // `try_recv` tells a lost session apart (`None`), instead of reconnecting unseen.
        while let Ok(Some(notification)) = listener.try_recv().await {
            let Some(hub) = hub.upgrade() else { return };
            if let Ok(user) = UserId::parse(notification.payload()) {
                hub.wake(&user);
            }
        }
        tracing::warn!("lost the session listening for other instances' writes; reopening");
        failing = true;
    }
}
