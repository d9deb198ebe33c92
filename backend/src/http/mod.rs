//! The HTTP layer's shared pieces: the state handlers reach, the one error type, the
//! extractors that validate and authenticate, and the policies every request passes through.
//!
//! The router itself is assembled in [`crate::app`], above the handlers that use these.

pub mod conditional;
pub mod error;
pub mod etag;
pub mod extract;
pub mod idempotency;
pub mod middleware;
pub mod policy;
pub mod prefer;
pub mod request_limits;
pub mod responses;
pub mod state;

pub use error::{ApiError, ErrorBody};
pub use state::{AppState, CursorKey, ShutdownFlag};
