//! Running many instances (SPEC §11), against the binary as operators run it: metrics, rate
//! limits in process and shared through Redis, start-up next to a database still booting, and
//! log lines a collector can read.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::app::{PgTestDatabase, SECRET, token};
use crate::support::spawned::{RawResponse, Server, exchange, run};

fn request(
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

/// A unique user, so that runs sharing one Redis never share a quota.
fn fresh_user(what: &str) -> String {
    format!("{what}-{}", uuid::Uuid::new_v4().simple())
}

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
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let metrics_port = probe.local_addr().expect("address").port();
    drop(probe);
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
fn a_user_over_the_limit_gets_429_with_the_headers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(
        dir.path(),
        &[
            ("BETTER_AUTH_SECRET", SECRET),
            ("DATABASE_URL", "sqlite::memory:"),
            ("RATE_LIMIT_PER_MINUTE", "60"),
            ("RATE_LIMIT_BURST", "5"),
        ],
    );
    let alice = token("alice");
    for left in (0..5).rev() {
        let response = request(server.port, "GET", "/api/tasks", Some(&alice), &[]);
        assert_eq!(response.status, 200);
        assert_eq!(
            response.header("ratelimit-policy"),
            Some("\"user\";q=5;w=5")
        );
        let state = response.header("ratelimit").expect("RateLimit");
        assert!(
            state.starts_with(&format!("\"user\";r={left};t=")),
            "{state}"
        );
    }
    let refused = request(server.port, "GET", "/api/tasks", Some(&alice), &[]);
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert!(
        refused
            .header("ratelimit")
            .is_some_and(|state| state.contains(";r=0;"))
    );
    let body: serde_json::Value = serde_json::from_str(&refused.body).expect("the error body");
    assert_eq!(body["status_code"], 429);
    // Another user has a quota of their own.
    assert_eq!(
        request(server.port, "GET", "/api/tasks", Some(&token("bob")), &[]).status,
        200
    );
    // One interval later, exactly one more.
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(
        request(server.port, "GET", "/api/tasks", Some(&alice), &[]).status,
        200
    );
    assert_eq!(
        request(server.port, "GET", "/api/tasks", Some(&alice), &[]).status,
        429
    );
    server.stop();
}

#[test]
fn a_forged_forwarded_for_does_not_dodge_the_failed_authentication_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let limited = [
        ("BETTER_AUTH_SECRET", SECRET),
        ("DATABASE_URL", "sqlite::memory:"),
        ("AUTH_FAILURES_PER_MINUTE", "12"),
    ];
    // Burst of 2 (a sixth of 12), then one per 5 s.
    let server = Server::start(dir.path(), &limited);
    let mut statuses = Vec::new();
    for n in 0..5 {
        let forged = format!("203.0.113.{n}");
        statuses.push(
            request(
                server.port,
                "GET",
                "/api/tasks",
                Some("not-a-token"),
                &[("X-Forwarded-For", &forged)],
            )
            .status,
        );
    }
    assert_eq!(
        statuses,
        [401, 401, 429, 429, 429],
        "the peer is counted, not the header"
    );
    // A good token is not a failed authentication.
    assert_eq!(
        request(server.port, "GET", "/api/tasks", Some(&token("alice")), &[]).status,
        200
    );
    server.stop();

    // Behind a trusted proxy the header is believed: each forwarded client has its own quota.
    let mut trusted = limited.to_vec();
    trusted.push(("TRUSTED_PROXIES", "127.0.0.1/32"));
    let server = Server::start(dir.path(), &trusted);
    for n in 0..5 {
        let client = format!("198.51.100.{n}");
        let response = request(
            server.port,
            "GET",
            "/api/tasks",
            Some("not-a-token"),
            &[("X-Forwarded-For", &client)],
        );
        assert_eq!(response.status, 401, "client {n}");
    }
    server.stop();
}

/// `TEST_REDIS_URL`, or `None` (the test is skipped, loudly) outside CI.
fn redis_url() -> Option<String> {
    match std::env::var("TEST_REDIS_URL") {
        Ok(url) => Some(url),
        Err(_) if std::env::var_os("CI").is_some() => panic!("TEST_REDIS_URL must be set under CI"),
        Err(_) => {
            eprintln!("skipped: TEST_REDIS_URL is not set");
            None
        }
    }
}

#[test]
fn three_instances_share_one_limit_through_redis() {
    let Some(redis) = redis_url() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [
        ("BETTER_AUTH_SECRET", SECRET),
        ("DATABASE_URL", "sqlite::memory:"),
        ("REDIS_URL", redis.as_str()),
        ("REDIS_TIMEOUT_MS", "200"),
        ("RATE_LIMIT_PER_MINUTE", "60"),
        ("RATE_LIMIT_BURST", "30"),
    ];
    let servers: Vec<Server> = (0..3).map(|_| Server::start(dir.path(), &env)).collect();
    let user = token(&fresh_user("shared"));
    // Until each instance has its Redis connection, requests go through unlimited.
    for server in &servers {
        wait_for_redis(server.port);
    }
    let started = Instant::now();
    let mut allowed = 0;
    for n in 0..90 {
        let response = request(servers[n % 3].port, "GET", "/api/tasks", Some(&user), &[]);
        match response.status {
            200 => allowed += 1,
            429 => {}
            other => panic!("{other}: {}", response.body),
        }
    }
    // The burst, plus one a second for however long the loop took.
    let refill = started.elapsed().as_secs() as i32 + 1;
    assert!(
        (30..=30 + refill).contains(&allowed),
        "{allowed} of 90 allowed across three instances: one shared quota is 30 (+{refill})"
    );
    for server in servers {
        server.stop();
    }
}

/// Waits until the instance counts through Redis (a user's quota starts to go down).
fn wait_for_redis(port: u16) {
    let probe = token(&fresh_user("probe"));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let response = request(port, "GET", "/api/tasks", Some(&probe), &[]);
        if response
            .header("ratelimit")
            .is_some_and(|state| !state.contains(";r=30;"))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the instance never reached Redis"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A private Redis on a free port, for a test that stops it.
fn private_redis(port: u16) -> Child {
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server starts (apt-get install redis-server)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[test]
fn with_redis_down_requests_go_through_and_limits_return_with_it() {
    if redis_url().is_none() {
        return;
    }
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = probe.local_addr().expect("address").port();
    drop(probe);
    let mut redis = private_redis(port);
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("redis://127.0.0.1:{port}/");
    let server = Server::start(
        dir.path(),
        &[
            ("BETTER_AUTH_SECRET", SECRET),
            ("DATABASE_URL", "sqlite::memory:"),
            ("REDIS_URL", url.as_str()),
            ("REDIS_TIMEOUT_MS", "100"),
            ("RATE_LIMIT_PER_MINUTE", "60"),
            ("RATE_LIMIT_BURST", "30"),
        ],
    );
    wait_for_redis(server.port);
    let user = token(&fresh_user("outage"));
    let _ = redis.kill();
    let _ = redis.wait();
    // Far past the quota, and every one served, each within the timeout and some slack.
    for n in 0..60 {
        let started = Instant::now();
        let response = request(server.port, "GET", "/api/tasks", Some(&user), &[]);
        assert_eq!(
            response.status, 200,
            "request {n} with Redis down: {}",
            response.body
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "request {n} took {:?}",
            started.elapsed()
        );
    }
    // Redis back: the limits with it, by themselves.
    let mut redis = private_redis(port);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut limited = false;
    while Instant::now() < deadline && !limited {
        limited = request(server.port, "GET", "/api/tasks", Some(&user), &[]).status == 429;
    }
    assert!(limited, "the limit never came back with Redis");
    let (_, log) = server.stop();
    let warnings = log
        .iter()
        .filter(|line| line.contains("Redis failed"))
        .count();
    assert_eq!(warnings, 1, "logged once per outage: {warnings}");
    let _ = redis.kill();
    let _ = redis.wait();
}

/// The time at the start of a text log line.
fn logged_at(line: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    line.split_whitespace().next()?.parse().ok()
}

#[test]
fn redis_unreachable_at_start_is_said_at_once_and_its_recovery_once() {
    if redis_url().is_none() {
        return;
    }
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = probe.local_addr().expect("address").port();
    drop(probe);
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("redis://127.0.0.1:{port}/");
    let server = Server::start(
        dir.path(),
        &[
            ("BETTER_AUTH_SECRET", SECRET),
            ("DATABASE_URL", "sqlite::memory:"),
            ("REDIS_URL", url.as_str()),
            ("RATE_LIMIT_PER_MINUTE", "60"),
            ("RATE_LIMIT_BURST", "30"),
        ],
    );
    // An outage of three seconds: several failed attempts to connect.
    std::thread::sleep(Duration::from_secs(3));
    let mut redis = private_redis(port);
    wait_for_redis(server.port);
    let (_, log) = server.stop();
    let _ = redis.kill();
    let _ = redis.wait();
    let warnings: Vec<&String> = log
        .iter()
        .filter(|line| line.contains("cannot reach Redis"))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning for the outage: {log:#?}");
    let started = log
        .first()
        .and_then(|line| logged_at(line))
        .expect("a time");
    let warned = logged_at(warnings[0]).expect("a time");
    assert!(
        warned - started < chrono::Duration::seconds(1),
        "warned {} ms after start",
        (warned - started).num_milliseconds()
    );
    let recovered = log
        .iter()
        .filter(|line| line.contains("Redis answers now"))
        .count();
    assert_eq!(recovered, 1, "one line for the recovery: {log:#?}");
}

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
    // Why a token was refused is in the operator's log, with the request's id.
    let why = lines
        .iter()
        .find(|line| line["message"] == "authentication failed")
        .expect("the refusal is logged");
    assert_eq!(why["reason"], "token has expired");
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

#[test]
fn start_up_waits_for_a_database_that_is_still_booting() {
    // Nothing listens: the service retries, saying why, then gives up with the cause.
    let dir = tempfile::tempdir().expect("tempdir");
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = probe.local_addr().expect("address").port();
    drop(probe);
    let url = format!("postgres://todo@127.0.0.1:{port}/todo");
    let started = Instant::now();
    let output = run(
        dir.path(),
        &["serve", "--port", "0"],
        &[
            ("BETTER_AUTH_SECRET", SECRET),
            ("DATABASE_URL", &url),
            ("DB_STARTUP_TIMEOUT", "2"),
        ],
    );
    let took = started.elapsed();
    assert!(!output.status.success());
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        took >= Duration::from_millis(1500),
        "gave up after {took:?}"
    );
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert!(log.matches("database not ready").count() >= 2, "{log}");
    assert!(log.contains("cannot open the database"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(test_database), ignore = "needs TEST_DATABASE_URL")]
async fn start_up_succeeds_once_the_database_comes_up() {
    let database = PgTestDatabase::create().await;
    let options = database.options();
    let (pg_host, pg_port) = (options.get_host().to_owned(), options.get_port());
    let host = pg_host.clone();
    // A port that refuses connections for 1.5 s, then forwards them to PostgreSQL.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = probe.local_addr().expect("address").port();
    drop(probe);
    let forwarder = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind");
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            let target = format!("{pg_host}:{pg_port}");
            tokio::spawn(async move {
                if let Ok(mut server) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    let direct = database.url_with("sslmode=disable");
    // The port in the URL, or after the host when the URL leaves it to the default.
    let url = match direct.contains(&format!(":{pg_port}/")) {
        true => direct.replacen(&format!(":{pg_port}/"), &format!(":{port}/"), 1),
        false => direct.replacen(&format!("@{host}/"), &format!("@127.0.0.1:{port}/"), 1),
    };
    assert_ne!(url, direct, "the URL leads to the forwarding port");
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let server = tokio::task::spawn_blocking({
        let url = url.clone();
        let dir = dir.path().to_owned();
        move || {
            Server::start(
                &dir,
                &[
                    ("BETTER_AUTH_SECRET", SECRET),
                    ("DATABASE_URL", &url),
                    ("DB_STARTUP_TIMEOUT", "20"),
                ],
            )
        }
    })
    .await
    .expect("started");
    assert!(
        started.elapsed() >= Duration::from_millis(1400),
        "it cannot have connected before the port opened"
    );
    let (status, _) = crate::support::spawned::http(
        server.port,
        "GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200);
    let (_, log) = tokio::task::spawn_blocking(move || server.stop())
        .await
        .expect("stopped");
    assert!(
        log.iter().any(|line| line.contains("database not ready")),
        "{log:?}"
    );
    forwarder.abort();
}
