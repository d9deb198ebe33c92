//! Metrics (`src/telemetry/metrics.rs`) as Prometheus scrapes them: counted by route and
//! status, bounded in their series, on the main port or an address of their own.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::support::app::{SECRET, token};
use crate::support::spawned::{Server, free_port, run};

use super::request;

/// Samples of the Prometheus text format: `name{labels}` → value. Panics on a line that is
/// not a comment, a sample or blank: the output must parse.
fn parse_prometheus(text: &str) -> HashMap<String, f64> {
    let mut samples = HashMap::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not a sample: {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("not a number: {line:?}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':'),
            "bad metric name in {line:?}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "unclosed labels in {line:?}");
        }
        samples.insert(series.to_owned(), value);
    }
    samples
}

/// The value of the series `name` whose labels include every one of `labels`.
fn sample(samples: &HashMap<String, f64>, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples.iter().find_map(|(series, value)| {
        let rest = series.strip_prefix(name)?;
        let matches = (rest.is_empty() && labels.is_empty())
            || (rest.starts_with('{')
                && labels
                    .iter()
                    .all(|(key, wanted)| rest.contains(&format!("{key}=\"{wanted}\""))));
        matches.then_some(*value)
    })
}

#[test]
fn metrics_count_what_was_sent_by_route_and_status() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(
        dir.path(),
        &[
            ("BETTER_AUTH_SECRET", SECRET),
            ("DATABASE_URL", "sqlite::memory:"),
            ("METRICS_ADDR", "main"),
        ],
    );
    let alice = token("alice");
    for _ in 0..3 {
        assert_eq!(
            request(server.port, "GET", "/api/tasks", Some(&alice), &[]).status,
            200
        );
    }
    for _ in 0..2 {
        assert_eq!(
            request(server.port, "POST", "/api/tasks", Some(&alice), &[]).status,
            201
        );
    }
    assert_eq!(
        request(server.port, "GET", "/api/tasks/999", Some(&alice), &[]).status,
        404
    );
    assert_eq!(
        request(server.port, "GET", "/api/tasks/998", Some(&alice), &[]).status,
        404
    );
    assert_eq!(
        request(server.port, "GET", "/api/tasks", None, &[]).status,
        401
    );

    let scraped = request(server.port, "GET", "/metrics", None, &[]);
    assert_eq!(scraped.status, 200);
    assert!(
        scraped
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain"))
    );
    let samples = parse_prometheus(&scraped.body);
    let count = |method: &str, route: &str, status: &str| {
        sample(
            &samples,
            "http_server_request_duration_seconds_count",
            &[
                ("http_request_method", method),
                ("http_route", route),
                ("http_response_status_code", status),
            ],
        )
    };
    assert_eq!(count("GET", "/api/tasks", "200"), Some(3.0));
    assert_eq!(count("POST", "/api/tasks", "201"), Some(2.0));
    // The route template, never the raw path: both 404s are one series.
    assert_eq!(count("GET", "/api/tasks/{task_id}", "404"), Some(2.0));
    assert_eq!(count("GET", "/api/tasks", "401"), Some(1.0));
    assert!(
        !scraped.body.contains("/api/tasks/999"),
        "a raw path became a label"
    );
    // A histogram with explicit buckets, which add up across instances; not a summary.
    assert!(
        scraped
            .body
            .contains("# TYPE http_server_request_duration_seconds histogram")
    );
    let buckets = sample(
        &samples,
        "http_server_request_duration_seconds_bucket",
        &[
            ("http_route", "/api/tasks"),
            ("http_response_status_code", "200"),
            ("le", "+Inf"),
        ],
    );
    assert_eq!(buckets, Some(3.0));
    assert!(!scraped.body.contains("quantile="));
    for gauge in ["db_client_connections_max", "events_open_streams"] {
        assert!(
            sample(&samples, gauge, &[]).is_some() || scraped.body.contains(gauge),
            "{gauge}"
        );
    }
    assert!(
        sample(
            &samples,
            "http_server_active_requests",
            &[("http_request_method", "GET")]
        )
        .is_some()
    );
    server.stop();
}

/// Sends `count` requests with random method names over a few pipelined connections.
fn send_random_methods(port: u16, count: usize) {
    use std::io::{Read, Write};
    let per_connection = 250;
    for start in (0..count).step_by(per_connection) {
        let mut raw = String::new();
        let end = (start + per_connection).min(count);
        for n in start..end {
            let method = format!("M{}", uuid::Uuid::new_v4().simple());
            let close = if n + 1 == end { "close" } else { "keep-alive" };
            raw.push_str(&format!(
                "{method} /api/tasks/{n} HTTP/1.1\r\nHost: x\r\nConnection: {close}\r\n\r\n"
            ));
        }
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connects");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        stream.write_all(raw.as_bytes()).expect("requests sent");
        let mut answers = Vec::new();
        stream.read_to_end(&mut answers).expect("responses read");
        let answered = String::from_utf8_lossy(&answers)
            .matches("HTTP/1.1 ")
            .count();
        assert_eq!(answered, end - start, "every pipelined request is answered");
    }
}

#[test]
fn random_method_names_add_no_metric_series() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(
        dir.path(),
        &[
            ("BETTER_AUTH_SECRET", SECRET),
            ("DATABASE_URL", "sqlite::memory:"),
            ("METRICS_ADDR", "main"),
        ],
    );
    let series = || {
        let scraped = request(server.port, "GET", "/metrics", None, &[]);
        assert_eq!(scraped.status, 200);
        parse_prometheus(&scraped.body)
            .into_keys()
            .filter(|series| series.starts_with("http_server_"))
            .collect::<std::collections::BTreeSet<_>>()
    };
    // One unknown method and one scrape first, so that their series exist.
    send_random_methods(server.port, 1);
    series();
    let before = series();
    assert!(
        before
            .iter()
            .any(|s| s.contains(r#"http_request_method="_OTHER""#)),
        "an unknown method is recorded as _OTHER"
    );
    send_random_methods(server.port, 5_000);
    let after = series();
    assert_eq!(
        before.len(),
        after.len(),
        "new series: {:?}",
        after.difference(&before).take(5).collect::<Vec<_>>()
    );
    server.stop();
}

#[test]
fn metrics_can_live_on_an_address_of_their_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics_port = free_port();
    let address = format!("127.0.0.1:{metrics_port}");
    let server = Server::start(
        dir.path(),
        &[
            ("BETTER_AUTH_SECRET", SECRET),
            ("DATABASE_URL", "sqlite::memory:"),
            ("METRICS_ADDR", &address),
        ],
    );
    assert_eq!(
        request(server.port, "GET", "/metrics", None, &[]).status,
        404,
        "not on the main port"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", metrics_port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on METRICS_ADDR");
        std::thread::sleep(Duration::from_millis(50));
    }
    let scraped = request(metrics_port, "GET", "/metrics", None, &[]);
    assert_eq!(scraped.status, 200);
    assert!(scraped.body.contains("db_client_connections_max"));
    server.stop();
}

#[test]
fn metrics_are_not_served_on_the_api_port_by_default() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The default METRICS_ADDR, not the harness's: a loopback port of its own, 9464. Where
    // something else holds that port (a developer's running service), the start must fail
    // and say so, which shows the default as well.
    if std::net::TcpListener::bind("127.0.0.1:9464").is_err() {
        let output = run(
            dir.path(),
            &["serve", "--port", "0"],
            &[("METRICS_ADDR", "")],
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success());
        assert!(
            stderr.contains("cannot listen on METRICS_ADDR 127.0.0.1:9464"),
            "{stderr}"
        );
        return;
    }
    let server = Server::start(dir.path(), &[("METRICS_ADDR", "")]);
    assert_eq!(
        request(server.port, "GET", "/metrics", None, &[]).status,
        404,
        "the API's port does not serve /metrics"
    );
    let scraped = request(9464, "GET", "/metrics", None, &[]);
    assert_eq!(scraped.status, 200, "on 127.0.0.1:9464 instead");
    let (_, log) = server.stop();
    assert!(
        log.iter()
            .any(|line| line.contains("metrics on http://127.0.0.1:9464/metrics")),
        "{log:#?}"
    );
}
