//! What every handler can reach.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::FromRef;

use crate::auth::Verifier;
use crate::live::hub::Hub;
use crate::rate_limits::Limiter;
use crate::store::{Calendars, ChangeFeed, Lists, Pool, Tasks};

/// The application state: the parts of the store the handlers use, the token verifier, the
/// key list cursors are signed with, the live streams, the rate limits and the shutdown flag.
/// Assembled once, by [`crate::startup`].
#[derive(Clone)]
pub struct AppState {
    /// The tasks, with every write announced to [`AppState::events`].
    pub tasks: Arc<dyn Tasks>,
    pub lists: Arc<dyn Lists>,
    pub feed: Arc<dyn ChangeFeed>,
    /// App passwords, calendar clients' objects and sync reports.
    pub calendars: Arc<dyn Calendars>,
    pub pool: Arc<dyn Pool>,
    pub verifier: Arc<Verifier>,
    pub cursor_key: CursorKey,
    pub events: Arc<Hub>,
    pub limiter: Arc<Limiter>,
    pub shutdown: ShutdownFlag,
}

impl FromRef<AppState> for Arc<Limiter> {
    fn from_ref(state: &AppState) -> Self {
        state.limiter.clone()
    }
}

/// The key list cursors are signed with: the same on every instance (it is kept in the
/// database), so a cursor from one instance is honoured by another.
#[derive(Clone)]
pub struct CursorKey(pub Arc<[u8; 32]>);

impl CursorKey {
    /// The name the key is stored under.
    pub const NAME: &'static str = "list-cursor";
}

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey([redacted])")
    }
}

impl FromRef<AppState> for Arc<Verifier> {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}

/// Raised when the service starts shutting down, so that `/ready` fails (and load balancers
/// stop sending traffic) for a grace period before the listener closes.
#[derive(Debug, Clone, Default)]
pub struct ShutdownFlag(Arc<AtomicBool>);

impl ShutdownFlag {
    pub fn raise(&self) {
        self.0.store(true, Ordering::Release);
    }

    pub fn is_raised(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}
