//! What every handler can reach.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::FromRef;

use crate::auth::Verifier;
use crate::store::TaskStore;

/// The application state: the store, the token verifier and the shutdown flag.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn TaskStore>,
    pub verifier: Arc<Verifier>,
    pub shutdown: ShutdownFlag,
}

impl AppState {
    pub fn new(store: Arc<dyn TaskStore>, verifier: Arc<Verifier>) -> Self {
        AppState {
            store,
            verifier,
            shutdown: ShutdownFlag::default(),
        }
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
