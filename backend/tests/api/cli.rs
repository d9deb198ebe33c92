//! The binary as a newcomer runs it: no configuration, `token`, `openapi`, bad settings.

use crate::support::spawned::{Server, free_port, http, run};

#[test]
fn a_first_run_with_no_configuration_serves_tasks_to_a_cli_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    let port = server.port;

    assert!(
        dir.path().join("data/todo.db").exists(),
        "SQLite file created"
    );
    assert!(
        dir.path().join("data/dev-secret").exists(),
        "development secret created"
    );

    let output = run(dir.path(), &["token", "alice"], &[]);
    assert!(output.status.success(), "{output:?}");
    let token = String::from_utf8(output.stdout)
        .expect("utf-8")
        .trim()
        .to_owned();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");

    let body = r#"{"title":"first task"}"#;
    let (status, created) = http(
        port,
        &format!(
            "POST /api/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    assert_eq!(status, 201, "{created}");
    assert!(created.contains(r#""user_id":"alice""#), "{created}");
    let (status, _) = http(
        port,
        "GET /api/tasks HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 401, "no token, no tasks");

    let (exit, log) = server.stop();
    assert!(exit.success(), "SIGTERM is a clean shutdown: {exit:?}");
    assert!(log.iter().any(|line| line.contains("stopped")), "{log:?}");
}

#[test]
fn openapi_prints_the_document() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = run(dir.path(), &["openapi"], &[]);
    assert!(output.status.success(), "{output:?}");
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert!(doc["paths"]["/api/tasks"].is_object());
}

#[test]
fn a_bad_setting_stops_start_up_with_one_line_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: &[(&str, &str, &str)] = &[
        ("PORT", "eighty", "PORT"),
        ("DB_MAX_CONNECTIONS", "0", "DB_MAX_CONNECTIONS"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT"),
        ("RUST_LOG", "todo_backend=loud", "RUST_LOG"),
        ("DATABASE_URL", "mysql://x", "DATABASE_URL"),
        ("SHUTDOWN_GRACE_SECONDS", "-1", "SHUTDOWN_GRACE_SECONDS"),
        (
            "CORS_ALLOWED_ORIGINS",
            "not-an-origin",
            "CORS_ALLOWED_ORIGINS",
        ),
    ];
    for (variable, value, named) in cases {
        let output = run(dir.path(), &["serve"], &[(variable, value)]);
        assert_eq!(output.status.code(), Some(2), "{variable}={value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(named), "{variable}: {stderr}");
    }
    assert!(
        !dir.path().join("data").exists(),
        "nothing is written before the whole configuration is valid"
    );
}

#[test]
fn an_unreachable_database_is_named_with_its_cause() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A port nothing listens on: the kernel refuses at once.
    let port = free_port();
    let url = format!("postgres://u:hunter2@127.0.0.1:{port}/db");
    // Tried once (the retries of start-up are tested in `operations`).
    let output = run(
        dir.path(),
        &["migrate"],
        &[("DATABASE_URL", &url), ("DB_STARTUP_TIMEOUT", "0")],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("connection refused"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "the password leaked: {stderr}");
}

#[test]
#[cfg_attr(not(test_database), ignore = "needs TEST_DATABASE_URL")]
fn a_refused_login_is_named_in_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = std::env::var("TEST_DATABASE_URL").expect("set for the PostgreSQL tests");
    let mut url = url::Url::parse(&base).expect("TEST_DATABASE_URL is a URL");
    url.set_username("no_such_role_here")
        .expect("a user can be set");
    let output = run(dir.path(), &["migrate"], &[("DATABASE_URL", url.as_str())]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains(r#"role "no_such_role_here" does not exist"#),
        "{stderr}"
    );
    assert!(
        !stderr.contains(" at line "),
        "no server source positions: {stderr}"
    );
}

#[test]
fn each_command_lists_only_its_own_flags_in_its_help() {
    let dir = tempfile::tempdir().expect("tempdir");
    let help = |args: &[&str]| {
        let output = run(dir.path(), args, &[]);
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).expect("utf-8")
    };
    let token = help(&["token", "--help"]);
    assert!(
        token.contains("--ttl") && token.contains("JWT_SECRET"),
        "{token}"
    );
    assert!(
        !token.contains("--port") && !token.contains("DATABASE_URL"),
        "{token}"
    );
    let openapi = help(&["openapi", "--help"]);
    assert!(
        !openapi.contains("--port") && !openapi.contains("JWT_SECRET"),
        "{openapi}"
    );
    let serve = help(&["serve", "--help"]);
    assert!(
        serve.contains("--port") && serve.contains("SHUTDOWN_GRACE_SECONDS"),
        "{serve}"
    );
}

#[test]
fn a_short_secret_is_refused_without_being_printed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = "too-short-to-be-safe";
    let output = run(dir.path(), &["serve"], &[("BETTER_AUTH_SECRET", secret)]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("BETTER_AUTH_SECRET"), "{stderr}");
    assert!(!stderr.contains(secret), "the secret leaked: {stderr}");
}

#[test]
fn an_unknown_database_scheme_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = run(
        dir.path(),
        &["migrate"],
        &[("DATABASE_URL", "mysql://u:hunter2@h/db")],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "the password leaked: {stderr}");
}

#[test]
fn with_only_better_auth_configured_there_is_no_development_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let jwks_only = [("BETTER_AUTH_URL", "http://127.0.0.1:9")];
    let output = run(dir.path(), &["token", "alice"], &jwks_only);
    assert!(!output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("JWT_SECRET"), "{stderr}");
    assert!(
        !dir.path().join("data/dev-secret").exists(),
        "a JWKS deployment never gets a secret anyone can mint tokens with"
    );
}

#[test]
fn neither_the_token_nor_the_secret_reaches_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = "log-leak-canary-secret-0123456789abcdef";
    let env = [
        ("BETTER_AUTH_SECRET", secret),
        ("RUST_LOG", "debug"),
        ("LOG_FORMAT", "json"),
    ];
    let server = Server::start(dir.path(), &env);
    let output = run(dir.path(), &["token", "alice"], &env);
    let token = String::from_utf8(output.stdout)
        .expect("utf-8")
        .trim()
        .to_owned();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    let body = r#"{"title":"log canary"}"#;
    let request = format!(
        "POST /api/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(http(server.port, &request).0, 201);
    // A bad token too: error paths must not echo it either.
    let tampered = format!("{token}x");
    let request = format!(
        "GET /api/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tampered}\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(http(server.port, &request).0, 401);

    let (_, log) = server.stop();
    let log = log.join("\n");
    assert!(
        log.contains(r#""status":201"#),
        "the request was logged: {log}"
    );
    let signature = token.rsplit('.').next().expect("signature");
    assert!(!log.contains(signature), "the token leaked into the log");
    assert!(!log.contains(secret), "the secret leaked into the log");
}

#[test]
fn settings_wrong_only_together_stop_start_up_like_a_bad_flag() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("REDIS_URL", "http://127.0.0.1:6379")], "redis://"),
        (
            &[("JWT_JWKS_URL", "https://auth.example.com/api/auth/jwks")],
            "JWT_ISSUER",
        ),
        (&[("HOST", "no such host!")], "HOST"),
    ];
    for (env, named) in cases {
        let output = run(dir.path(), &["serve"], env);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{env:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.starts_with("error: "), "clap's format: {stderr}");
        assert!(stderr.contains(named), "{env:?}: {stderr}");
    }
    assert!(!dir.path().join("data").exists(), "nothing written");
}

#[test]
fn a_host_name_is_a_host() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[("HOST", "localhost")]);
    let (status, _) = http(
        server.port,
        "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200);
    let (_, log) = server.stop();
    assert!(
        log.iter().any(|line| line.contains("todo-backend starting")
            && line.contains(env!("CARGO_PKG_VERSION"))),
        "the version is in the start-up log: {log:#?}"
    );
    assert!(
        log.iter().any(|line| line.contains("applied migration")),
        "the log names the migrations it applied: {log:#?}"
    );
}

#[test]
fn healthcheck_exits_0_for_a_healthy_service_and_1_otherwise() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    let port = server.port.to_string();
    let healthy = run(
        dir.path(),
        &["healthcheck"],
        &[("PORT", &port), ("HOST", "0.0.0.0")],
    );
    assert_eq!(healthy.status.code(), Some(0), "{healthy:?}");
    server.stop();
    let gone = run(dir.path(), &["healthcheck"], &[("PORT", &port)]);
    assert_eq!(gone.status.code(), Some(1), "{gone:?}");
    assert!(String::from_utf8_lossy(&gone.stderr).contains("unhealthy"));
}

#[test]
fn a_failed_start_leaves_no_development_secret_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The port is taken: the start fails after the configuration was found valid.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = taken.local_addr().expect("address").port().to_string();
    let output = run(dir.path(), &["serve"], &[("PORT", &port)]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot listen"), "{stderr}");
    assert!(
        !dir.path().join("data/dev-secret").exists(),
        "the development secret of a failed start is removed"
    );
}

#[test]
fn the_token_hint_is_a_command_that_works_here() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]);
    let (_, log) = server.stop();
    let hint = log
        .iter()
        .find(|line| line.contains("development secret"))
        .expect("the development secret is announced");
    let binary = env!("CARGO_BIN_EXE_todo-backend");
    assert!(hint.contains(&format!("`{binary} token alice`")), "{hint}");
    let under_cargo = Server::start(dir.path(), &[("CARGO", "cargo")]);
    let (_, log) = under_cargo.stop();
    assert!(
        log.iter()
            .any(|line| line.contains("`cargo run -- token alice`")),
        "{log:#?}"
    );
}

#[test]
#[cfg_attr(not(test_database), ignore = "needs TEST_DATABASE_URL")]
fn a_database_that_does_not_exist_fails_at_once_with_the_cause() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = std::env::var("TEST_DATABASE_URL").expect("set for the PostgreSQL tests");
    let mut url = url::Url::parse(&base).expect("TEST_DATABASE_URL is a URL");
    url.set_path("/no_such_database_here");
    let started = std::time::Instant::now();
    let output = run(
        dir.path(),
        &["serve", "--port", "0"],
        &[("DATABASE_URL", url.as_str()), ("DB_STARTUP_TIMEOUT", "30")],
    );
    let took = started.elapsed();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(r#"database "no_such_database_here" does not exist"#),
        "{stderr}"
    );
    assert!(!stderr.contains("not ready"), "no retries: {stderr}");
    assert!(took < std::time::Duration::from_secs(10), "took {took:?}");
    assert!(!dir.path().join("data/dev-secret").exists());
}
