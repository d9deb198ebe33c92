//! The sizes and times a request must stay within.

use std::time::Duration;

/// The largest request body the API accepts.
pub const BODY_LIMIT_BYTES: usize = 64 * 1024;

/// The largest request body a calendar app may send to `/dav/`: an iCalendar object with an
/// attachment, or a multiget of many hrefs.
pub const DAV_BODY_LIMIT_BYTES: usize = 1024 * 1024;

/// The longest a request may take before it is answered with a 503.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest request target (path and query) accepted; longer gets a JSON 414.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// The most header fields a request may carry; more gets a JSON 431.
pub const MAX_HEADERS: usize = 100;

/// The most bytes of header names and values a request may carry; more gets a JSON 431.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
