//! Live fan-out: which streams are open on this instance and what wakes them (a write here,
//! another instance's announcement, the poll). Below `http/`, beside `auth/` and `rate_limits/`:
//! the state and the metrics need it, not only the handlers.

pub mod announce;
pub mod announcing;
pub mod hub;
pub mod listen;
