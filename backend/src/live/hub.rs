//! Who is listening on this instance, and how they learn that their user wrote.
//!
//! A stream never receives changes from here: it is only woken, and reads the change feed
//! from its own cursor. So a wake can never be lost in a queue or delivered twice, a slow
//! client holds up nobody (there is nothing to queue for it), and a stream that missed wakes
//! during an outage catches up on the next one. A user's streams on one instance share their
//! reads: woken together, they want the same page, and one read of the database serves them
//! all (see [`Subscription::changes`]). Two things wake a user's streams: a write through
//! this instance (at once), and the poll of the users' change counters, which always runs,
//! works through any pooler, and runs at once (within [`NUDGED_POLL_GAP`]) after every write
//! through this instance and every `NOTIFY` from another (see [`super::listen`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use axum::body::Bytes;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::domain::{Change, ChangeCursor, UserId};
use crate::store::{ChangeFeed, StoreError};

/// What a stream follows and what a write wakes: one user's change feed, which merges every
/// list they can read. A write wakes its writer's streams at once and nudges the poll, which
/// reads the newest position of every user streamed to here and wakes those that moved: the
/// other members of the list written, on every instance.
pub type Topic = UserId;

/// The shortest time between two polls a write hurried: under a steady stream of writes the
/// poll runs at most this often, not once per write, and a member of a list written to
/// hears of it this much later at most.
const NUDGED_POLL_GAP: Duration = Duration::from_millis(10);

/// Streams' reads of the feed, by `outcome`: `read` from the database, `shared` (another
/// stream's page), `skipped` (a wake for changes the stream had sent already).
pub const FEED_READS: &str = "events_feed_reads_total";

/// A wake: when it was sent, and, when the poll sent it, the user's change counter then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wake {
    /// A read that began at this instant or later holds every change the wake is for.
    pub at: Instant,
    /// The newest position of the user's feed as the poll read it at `at`: a stream whose
    /// cursor has reached it has read every change committed before then, and need not read
    /// (changes commit above every cursor handed out, see [`ChangeCursor`]). `None` for a
    /// write heard of directly, whose position is not known here: every stream reads.
    pub through: Option<i64>,
}

impl Wake {
    fn now() -> Self {
        Wake {
            at: Instant::now(),
            through: None,
        }
    }
}

/// The limits and timings of live streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventSettings {
    /// How often the change counters of the users streamed to are read.
    pub poll_interval: Duration,
    /// Open streams one user may have on this instance.
    pub max_per_user: usize,
    /// Open streams this instance serves at most.
    pub max_streams: usize,
    /// How often an idle stream sends a comment, so that proxies keep it open.
    pub heartbeat: Duration,
}

impl Default for EventSettings {
    fn default() -> Self {
        EventSettings {
            poll_interval: Duration::from_millis(250),
            max_per_user: 10,
            max_streams: 10_000,
            heartbeat: Duration::from_secs(15),
        }
    }
}

/// Why a stream was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The user has [`EventSettings::max_per_user`] streams open already.
    User(usize),
    /// The instance serves [`EventSettings::max_streams`] streams already.
    Instance,
}

/// The streams open on this instance, by user.
pub struct Hub {
    store: Arc<dyn ChangeFeed>,
    settings: EventSettings,
    state: Mutex<State>,
    /// Raised when the instance stops: every stream ends.
    closing: watch::Sender<bool>,
    polling: AtomicBool,
    /// Raised by every write heard of (here or from another instance): the poll runs at once,
    /// and wakes every member of the lists written whose streams are here.
    nudged: Arc<tokio::sync::Notify>,
    /// Users whose writes other instances should hear of, when they listen.
    announcements: Option<mpsc::Sender<Topic>>,
}

#[derive(Default)]
struct State {
    users: HashMap<Topic, Listeners>,
    streams: usize,
}

/// One user's streams on this instance.
struct Listeners {
    streams: usize,
    /// The user's change counter as last polled; `None` before the first poll.
    seen: Option<i64>,
    /// The streams' last wake.
    wake: watch::Sender<Wake>,
    reads: Arc<SharedRead>,
}

/// The last read of one user's feed on this instance, kept for the user's other streams.
#[derive(Default)]
struct SharedRead {
    /// Held while a read runs, so that the streams woken with it wait for its page instead of
    /// each reading the same one.
    last: tokio::sync::Mutex<Option<LastRead>>,
}

struct LastRead {
    since: ChangeCursor,
    limit: u32,
    lists: bool,
    read: FeedRead,
}

/// A page of a user's feed, and when its read began: it holds every change committed before
/// then (or says it is settling, as any read then would).
#[derive(Clone)]
pub struct FeedRead {
    pub page: Arc<RenderedPage>,
    pub began: Instant,
}

/// A page of the feed as streams send it: each change made into its bytes once, when it is
/// read, and sent as they are by every stream that shares the page. Only the bytes are
/// kept, not the changes they were made from.
pub struct RenderedPage {
    /// Each change's cursor and its bytes, in feed order.
    pub events: Box<[(ChangeCursor, Bytes)]>,
    /// As [`crate::domain::ChangePage::has_more`].
    pub has_more: bool,
    /// As [`crate::domain::ChangePage::settling`].
    pub settling: bool,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("settings", &self.settings)
            .field("streams", &self.lock().streams)
            .finish_non_exhaustive()
    }
}

impl Hub {
    pub fn new(store: Arc<dyn ChangeFeed>, settings: EventSettings) -> Arc<Self> {
        Hub::with(store, settings, None)
    }

    /// As [`Hub::new`], and every write through this instance is also queued on
    /// `announcements` (made by [`super::announce::announcements`]), to tell the other instances.
    pub fn announcing(
        store: Arc<dyn ChangeFeed>,
        settings: EventSettings,
        announcements: mpsc::Sender<Topic>,
    ) -> Arc<Self> {
        Hub::with(store, settings, Some(announcements))
    }

    fn with(
        store: Arc<dyn ChangeFeed>,
        settings: EventSettings,
        announcements: Option<mpsc::Sender<Topic>>,
    ) -> Arc<Self> {
        Arc::new(Hub {
            store,
            settings,
            state: Mutex::default(),
            closing: watch::Sender::new(false),
            polling: AtomicBool::new(false),
            nudged: Arc::new(tokio::sync::Notify::new()),
            announcements,
        })
    }

    pub fn settings(&self) -> &EventSettings {
        &self.settings
    }

    /// Opens a stream for `user`, within the limits. The first stream starts the poll.
    pub fn subscribe(self: &Arc<Self>, user: &Topic) -> Result<Subscription, Refused> {
        let (wake, reads) = {
            let mut state = self.lock();
            if state.streams >= self.settings.max_streams {
                return Err(Refused::Instance);
            }
            let listeners = state
                .users
                .entry(user.clone())
                .or_insert_with(|| Listeners {
                    streams: 0,
                    seen: None,
                    wake: watch::Sender::new(Wake::now()),
                    reads: Arc::default(),
                });
            if listeners.streams >= self.settings.max_per_user {
                return Err(Refused::User(self.settings.max_per_user));
            }
            listeners.streams += 1;
            let subscribed = (listeners.wake.subscribe(), listeners.reads.clone());
            state.streams += 1;
            subscribed
        };
        if !self.polling.swap(true, Ordering::AcqRel) {
            tokio::spawn(poll(Arc::downgrade(self), self.nudged.clone()));
        }
        Ok(Subscription {
            hub: self.clone(),
            user: user.clone(),
            wake,
            reads,
            closing: self.closing.subscribe(),
        })
    }

    /// `user` wrote through this instance: wakes their streams here, and tells the other
    /// instances when they listen. Called once the write has committed.
    pub fn written(&self, user: &Topic) {
        self.wake(user);
        self.nudged.notify_one();
        if let Some(announcements) = &self.announcements {
            // Full means the database is slow or gone; the poll still carries the change.
            let _ = announcements.try_send(user.clone());
        }
    }

    /// Wakes `user`'s streams on this instance, if they have any, and polls at once for the
    /// other members of what they wrote.
    pub fn wake(&self, user: &Topic) {
        if let Some(listeners) = self.lock().users.get(user) {
            listeners.wake.send_replace(Wake::now());
        }
        self.nudged.notify_one();
    }

    /// Another instance announced a write: polls at once. The poll wakes every stream here
    /// whose user's feed moved, the writer's as the other members', each with the position to
    /// reach; so an instance that hears its own announcement, or many at once, costs the
    /// streams no read they do not need.
    pub fn heard(&self) {
        self.nudged.notify_one();
    }

    /// Wakes every stream: after a gap in what this instance heard (a listener reconnected).
    pub fn wake_all(&self) {
        for listeners in self.lock().users.values() {
            listeners.wake.send_replace(Wake::now());
        }
    }

    /// Ends every stream, for shutdown: each client gets the end of its response, and
    /// reconnects (to another instance) from its last event id.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// How many streams are open on this instance.
    pub fn open_streams(&self) -> usize {
        self.lock().streams
    }

    fn leave(&self, user: &Topic) {
        let mut state = self.lock();
        state.streams -= 1;
        if let Some(listeners) = state.users.get_mut(user) {
            listeners.streams -= 1;
            if listeners.streams == 0 {
                state.users.remove(user);
            }
        }
    }

    /// Reads the counters of every user streamed to, in one query, and wakes those that
    /// moved. A user's first reading always wakes: a write may have landed between the
    /// stream's first read and it.
    async fn poll_once(&self) {
        let users: Vec<Topic> = self.lock().users.keys().cloned().collect();
        if users.is_empty() {
            return;
        }
        // The query's snapshot is taken after this: it sees every change committed before.
        let began = Instant::now();
        let counters = match self.store.change_counters(&users).await {
            Ok(counters) => counters,
            Err(error) => {
                tracing::debug!(%error, "cannot poll the change counters; trying again");
                return;
            }
        };
        let mut state = self.lock();
        for (user, counter) in counters {
            let Some(listeners) = state.users.get_mut(&user) else {
                continue;
            };
            if listeners.seen.is_none_or(|seen| counter > seen) {
                listeners.seen = Some(counter);
                listeners.wake.send_if_modified(|wake| {
                    // A write heard of after the query began may be past the counter read:
                    // that wake stands, every stream reads for it, and it covers this one.
                    let older = wake.at < began;
                    if older {
                        *wake = Wake {
                            at: began,
                            through: Some(counter),
                        };
                    }
                    older
                });
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Polls while the hub lives; costs nothing but a timer while nobody listens.
async fn poll(hub: Weak<Hub>, nudged: Arc<tokio::sync::Notify>) {
    let Some(interval) = hub.upgrade().map(|hub| hub.settings.poll_interval) else {
        return;
    };
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = Instant::now();
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = nudged.notified() => {
                // Writes that arrive meanwhile leave one permit: they share the next poll.
                tokio::time::sleep_until(last + NUDGED_POLL_GAP).await;
            }
        }
        let Some(hub) = hub.upgrade() else { return };
        last = Instant::now();
        hub.poll_once().await;
    }
}

/// One open stream's place in the hub; leaving it when dropped.
pub struct Subscription {
    hub: Arc<Hub>,
    user: Topic,
    wake: watch::Receiver<Wake>,
    reads: Arc<SharedRead>,
    closing: watch::Receiver<bool>,
}

impl Subscription {
    /// Completes when the user may have written since the last call (or since subscribing),
    /// with the latest wake; or when the instance stops: `None`.
    pub async fn woken(&mut self) -> Option<Wake> {
        let closing = &mut self.closing;
        let closed = async move { closing.wait_for(|closing| *closing).await.is_ok() };
        let woken = tokio::select! {
            biased;
            true = closed => return None,
            changed = self.wake.changed() => changed.is_ok(),
        };
        if !woken {
            // The sender lives as long as the hub's entry for the user, which outlives this
            // subscription; were it gone anyway, nothing would wake us again but the end.
            self.closing().await;
            return None;
        }
        Some(*self.wake.borrow_and_update())
    }

    /// Up to `limit` of the user's changes after `since` (as [`ChangeFeed::changes`]), from a
    /// read that began at `fresh_from` or later: the wake the stream answers was sent after
    /// its write committed, so such a read holds that write. When another stream of the user
    /// here read the same page late enough, that page is shared; while one reads, the others
    /// wait for it. So a write that wakes many streams of a user costs one read per instance.
    ///
    /// `render` makes a change into the bytes a stream sends; every stream passes the same.
    pub async fn changes(
        &self,
        since: ChangeCursor,
        limit: u32,
        lists: bool,
        fresh_from: Instant,
        render: fn(&Change) -> Bytes,
    ) -> Result<FeedRead, StoreError> {
        let mut last = self.reads.last.lock().await;
        if let Some(last) = last.as_ref().filter(|last| {
            last.since == since
                && last.limit == limit
                && last.lists == lists
                && last.read.began >= fresh_from
        }) {
            metrics::counter!(FEED_READS, "outcome" => "shared").increment(1);
            return Ok(last.read.clone());
        }
        metrics::counter!(FEED_READS, "outcome" => "read").increment(1);
        let began = Instant::now();
        let page = self
            .hub
            .store
            .changes(&self.user, since, limit, lists)
            .await?;
        let events = page
            .changes
            .iter()
            .map(|change| (change.cursor(), render(change)))
            .collect();
        let read = FeedRead {
            page: Arc::new(RenderedPage {
                events,
                has_more: page.has_more,
                settling: page.settling,
            }),
            began,
        };
        *last = Some(LastRead {
            since,
            limit,
            lists,
            read: read.clone(),
        });
        Ok(read)
    }

    /// Completes when the instance stops.
    pub async fn closing(&mut self) {
        if self.closing.wait_for(|closing| *closing).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.leave(&self.user);
    }
}
