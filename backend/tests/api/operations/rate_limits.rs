//! Rate limits (`src/limits/`): a user's quota and the failed-authentication limit in process,
//! and one quota shared by many instances through Redis, which may be down.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::app::{SECRET, token};
use crate::support::spawned::{Server, free_port};

use super::request;

/// A unique user, so that runs sharing one Redis never share a quota.
fn fresh_user(what: &str) -> String {
    format!("{what}-{}", uuid::Uuid::new_v4().simple())
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
    // One interval later, exactly one more. The wait is the scenario, not a condition: the
    // quota refills one request per second (60 a minute), and that is what is checked.
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
    let port = free_port();
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
    let port = free_port();
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
