//! What every handler can reach.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::FromRef;

use crate::auth::Verifier;
use crate::changes::hub::{EventSettings, Hub};
use crate::rate_limits::Limiter;
use crate::store::TaskStore;

/// The application state: the store, the token verifier, the key list cursors are signed
/// with, the live streams, the rate limits and the shutdown flag.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn TaskStore>,
    pub verifier: Arc<Verifier>,
    pub cursor_key: CursorKey,
    pub events: Arc<Hub>,
    pub limiter: Arc<Limiter>,
    pub shutdown: ShutdownFlag,
}

impl AppState {
    /// With default stream settings, no announcing of writes to other instances and no rate
    /// limits.
    pub fn new(store: Arc<dyn TaskStore>, verifier: Arc<Verifier>, cursor_key: CursorKey) -> Self {
        let events = Hub::new(store.clone(), EventSettings::default());
        AppState::with_events(store, verifier, cursor_key, events)
    }

    pub fn with_events(
        store: Arc<dyn TaskStore>,
        verifier: Arc<Verifier>,
        cursor_key: CursorKey,
        events: Arc<Hub>,
    ) -> Self {
        AppState {
            store,
            verifier,
            cursor_key,
            events,
            limiter: Arc::new(Limiter::off()),
            shutdown: ShutdownFlag::default(),
        }
    }

    pub fn with_limiter(mut self, limiter: Arc<Limiter>) -> Self {
        self.limiter = limiter;
        self
    }
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
