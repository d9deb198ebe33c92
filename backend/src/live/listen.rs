//! Hearing of other instances' writes sooner than the poll: PostgreSQL `LISTEN`/`NOTIFY`.
//!
//! Optional (`DATABASE_LISTEN_URL`), because `LISTEN` needs a session of its own, which a
//! transaction pooler cannot give. Every write through an instance is announced after it
//! commits (see [`super::announce`]); hearing one hurries the poll, which wakes the streams
//! here whose feed moved, the writer's and those of the other members of what they wrote.
//! Announcements lost while the listener was away are covered by waking every stream when
//! it is back, and by the poll, which stays on.

use std::sync::Weak;
use std::time::Duration;

use super::hub::Hub;
use crate::store::postgres::notify::{Listening, NOTIFY_CHANNEL};

/// The longest wait between two attempts to get the listening session back.
const MAX_RETRY: Duration = Duration::from_secs(10);

/// Listens on a session of its own (from `options`) and wakes the streams of the users other
/// instances announce, until the hub is gone. When the session drops it is opened again with
/// backoff, and every stream is woken: what was announced meanwhile was not heard.
pub async fn listen(listening: Listening, hub: Weak<Hub>) {
    let mut retry = Duration::from_millis(250);
    let mut failing = false;
    let mut heard = false;
    loop {
        let mut listener = match listening.open().await {
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
        // `next` tells a lost session apart (`false`), instead of reconnecting unseen.
        while listener.next().await {
            let Some(hub) = hub.upgrade() else { return };
            hub.heard();
        }
        tracing::warn!("lost the session listening for other instances' writes; reopening");
        failing = true;
    }
}
