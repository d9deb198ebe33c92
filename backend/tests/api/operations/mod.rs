//! The binary as operators run it, one file per subject: its metrics, its rate limits (in
//! process and shared through Redis), its start-up next to a database still booting, and log
//! lines a collector can read.

mod logs;
mod metrics;
mod rate_limits;
mod startup;

use crate::support::spawned::{RawResponse, exchange};

/// `method path` on a connection of its own, with `token` and `headers`; a POST sends a small
/// task to create.
pub(crate) fn request(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
) -> RawResponse {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    if let Some(token) = token {
        raw.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    if method == "POST" {
        let body = r#"{"title":"metered"}"#;
        raw.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
    } else {
        raw.push_str("\r\n");
    }
    exchange(port, &raw)
}
