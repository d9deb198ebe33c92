//! Logs (`src/telemetry/`) as a collector reads them: JSON lines with each field once, and
//! why a token was refused.

use crate::support::app::{SECRET, token};
use crate::support::spawned::Server;

use super::request;

#[test]
fn json_logs_carry_each_field_once_and_a_rounded_latency() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(
        dir.path(),
        &[
            ("BETTER_AUTH_SECRET", SECRET),
            ("DATABASE_URL", "sqlite::memory:"),
            ("LOG_FORMAT", "json"),
        ],
    );
    assert_eq!(
        request(server.port, "GET", "/api/tasks", Some(&token("alice")), &[]).status,
        200
    );
    let expired = crate::support::app::sign(&serde_json::json!({"sub": "alice", "exp": 1_000_000}));
    let refused = request(server.port, "GET", "/api/tasks", Some(&expired), &[]);
    assert_eq!(refused.status, 401);
    let request_id = refused
        .header("x-request-id")
        .expect("a request id")
        .to_owned();
    let (_, log) = server.stop();
    let lines: Vec<serde_json::Value> = log
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .collect();
    // Why a token was refused is in the operator's log line of that request, with its id.
    let why = lines
        .iter()
        .find(|line| line["message"] == "response" && line["status"] == 401)
        .expect("the refused request's line");
    assert_eq!(why["span"]["auth_error"], "token has expired");
    assert_eq!(why["span"]["request_id"], request_id.as_str());
    let line = lines
        .iter()
        .find(|line| line["message"] == "response")
        .expect("a JSON response line");
    assert!(
        line.get("spans").is_none(),
        "the span's fields twice: {line}"
    );
    assert_eq!(line["span"]["route"], "/api/tasks");
    let latency = line["latency_ms"].to_string();
    let decimals = latency
        .split_once('.')
        .map_or(0, |(_, digits)| digits.len());
    assert!(decimals <= 3, "latency_ms {latency}");
}
