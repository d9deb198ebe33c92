//! Better Auth's asymmetric tokens, verified against a JWKS served in-process.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use todo_backend::auth::hs256::HmacSecret;
use todo_backend::auth::{AuthSettings, JwksSettings, Verifier};

use crate::support::app::{SECRET, TestApp, TestResponse, now, sign_with, token};
use crate::support::jwks_server::{Behaviour, JwksServer, ed25519, p256, rsa};

/// Settings as `BETTER_AUTH_URL=<server>` gives them, with a short refetch cooldown so tests
/// need not wait 30 s.
fn settings(base_url: &str, cooldown: Duration) -> JwksSettings {
    let url = format!("{base_url}/api/auth/jwks").parse().expect("URL");
    let mut settings = JwksSettings::new(
        url,
        base_url.to_owned(),
        base_url.to_owned(),
        Duration::from_secs(60),
    );
    settings.refetch_cooldown = cooldown;
    settings.fetch_timeout = Duration::from_secs(1);
    settings
}

/// An app that accepts JWKS tokens from `base_url`, and HS256 tokens too when `with_secret`.
async fn app(base_url: &str, cooldown: Duration, with_secret: bool) -> TestApp {
    let secret = with_secret.then(|| HmacSecret::new(SECRET).expect("long enough"));
    let jwks = settings(base_url, cooldown);
    let settings = AuthSettings::new(secret, Some(jwks), Duration::from_secs(60));
    let verifier = Verifier::from_settings(&settings).expect("client");
    TestApp::builder().verifier(verifier).build().await
}

/// Claims as Better Auth writes them: iss and aud are its base URL, 15 minutes of life.
fn claims(server: &JwksServer, sub: &str) -> Value {
    let base = server.base_url();
    json!({"sub": sub, "iss": base, "aud": base, "iat": now(), "exp": now() + 900,
           "email": format!("{sub}@example.com"), "name": sub})
}

/// Waits (bounded) until the app has loaded the keys, i.e. stops answering 503.
async fn until_keys_load(app: &TestApp, token: &str) -> TestResponse {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let response = app.get("/api/tasks", token).await;
        if response.status != StatusCode::SERVICE_UNAVAILABLE || Instant::now() > deadline {
            return response;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[track_caller]
fn assert_unauthorized(response: &TestResponse, reason: &str) {
    let body = response.assert_error(StatusCode::UNAUTHORIZED);
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(reason), "expected {reason:?} in {detail:?}");
}

#[tokio::test]
async fn every_algorithm_better_auth_issues_is_accepted() {
    let keys = [
        ed25519("ed"),
        p256("es"),
        rsa("rs"),
        rsa("ps").with_kid("ps", Algorithm::PS256),
    ];
    let server = JwksServer::start(&keys.iter().collect::<Vec<_>>()).await;
    let app = app(&server.base_url(), Duration::from_millis(200), false).await;
    for key in &keys {
        let user = format!("user-{}", key.kid);
        let token = key.sign(&claims(&server, &user));
        let response = until_keys_load(&app, &token).await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "{:?}: {}",
            key.alg,
            response.text()
        );
        let task = app.create_task(&token, json!({"title": "hello"})).await;
        assert_eq!(task["user_id"], user, "{:?}", key.alg);
    }
}

#[tokio::test]
async fn issuer_and_audience_must_match_exactly() {
    let key = ed25519("ed");
    let server = JwksServer::start(&[&key]).await;
    let app = app(&server.base_url(), Duration::from_millis(200), false).await;
    let base = server.base_url();
    let valid = claims(&server, "alice");
    assert_eq!(
        until_keys_load(&app, &key.sign(&valid)).await.status,
        StatusCode::OK
    );

    let with = |field: &str, value: Value| {
        let mut claims = valid.clone();
        claims[field] = value;
        key.sign(&claims)
    };
    let without = |field: &str| {
        let mut claims = valid.clone();
        claims.as_object_mut().expect("object").remove(field);
        key.sign(&claims)
    };
    let other = "https://evil.example.com";
    assert_unauthorized(
        &app.get("/api/tasks", &with("iss", json!(other))).await,
        "issuer",
    );
    assert_unauthorized(
        &app.get("/api/tasks", &with("aud", json!(other))).await,
        "audience",
    );
    assert_unauthorized(
        &app.get("/api/tasks", &with("aud", json!(format!("{base}/"))))
            .await,
        "audience",
    );
    assert_unauthorized(&app.get("/api/tasks", &without("iss")).await, "iss");
    assert_unauthorized(&app.get("/api/tasks", &without("aud")).await, "aud");
    assert_unauthorized(&app.get("/api/tasks", &without("exp")).await, "exp");
    assert_unauthorized(
        &app.get("/api/tasks", &with("exp", json!(now() - 120)))
            .await,
        "expired",
    );
    let both_audiences = with("aud", json!([other, base]));
    assert_eq!(
        app.get("/api/tasks", &both_audiences).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn tokens_without_a_known_key_are_refused() {
    let key = ed25519("ed");
    let server = JwksServer::start(&[&key]).await;
    let app = app(&server.base_url(), Duration::from_millis(200), false).await;
    let alice = claims(&server, "alice");
    assert_eq!(
        until_keys_load(&app, &key.sign(&alice)).await.status,
        StatusCode::OK
    );

    let no_kid = {
        let mut header = jsonwebtoken::Header::new(Algorithm::EdDSA);
        header.kid = None;
        let der = key.clone();
        // Re-sign without a kid: same key, header stripped of it.
        let signed = der.sign(&alice);
        let payload_and_sig: Vec<&str> = signed.split('.').skip(1).collect();
        let header = serde_json::to_vec(&header).expect("header");
        use base64::Engine;
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(header);
        format!("{header}.{}", payload_and_sig.join("."))
    };
    assert_unauthorized(&app.get("/api/tasks", &no_kid).await, "key id");
    let unknown = key.with_kid("not-published", Algorithm::EdDSA);
    assert_unauthorized(
        &app.get("/api/tasks", &unknown.sign(&alice)).await,
        "unknown key",
    );
    // A key that is not in the set, claiming the kid of one that is.
    let impostor = ed25519("ed");
    assert_unauthorized(
        &app.get("/api/tasks", &impostor.sign(&alice)).await,
        "signature",
    );
}

#[tokio::test]
async fn a_rotated_in_key_is_picked_up_by_one_refetch_and_both_keys_work() {
    let old = ed25519("old");
    let server = JwksServer::start(&[&old]).await;
    let cooldown = Duration::from_millis(200);
    let app = app(&server.base_url(), cooldown, false).await;
    let alice = claims(&server, "alice");
    assert_eq!(
        until_keys_load(&app, &old.sign(&alice)).await.status,
        StatusCode::OK
    );
    let loads = server.hits();

    let new = ed25519("new");
    server.publish(&[&old, &new]);
    // Not a wait for a condition but the scenario: the verifier refetches at most once per
    // cooldown, so the new key is first shown once a cooldown has passed since the last load.
    tokio::time::sleep(cooldown).await;
    let response = app.get("/api/tasks", &new.sign(&alice)).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert_eq!(server.hits(), loads + 1, "exactly one refetch");
    assert_eq!(
        app.get("/api/tasks", &old.sign(&alice)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/api/tasks", &new.sign(&alice)).await.status,
        StatusCode::OK
    );
    assert_eq!(server.hits(), loads + 1, "known keys need no fetch");
}

#[tokio::test]
async fn a_key_published_just_after_the_start_up_load_is_fetched_on_sight() {
    let first = ed25519("first");
    let server = JwksServer::start(&[&first]).await;
    // A cooldown far longer than the test: only the start-up load may have happened.
    let app = app(&server.base_url(), Duration::from_secs(600), false).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while server.hits() == 0 {
        assert!(Instant::now() < deadline, "the keys are never loaded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let loads = server.hits();

    let second = ed25519("second");
    server.publish(&[&first, &second]);
    let alice = claims(&server, "alice");
    let response = app.get("/api/tasks", &second.sign(&alice)).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert_eq!(server.hits(), loads + 1, "exactly one refetch");
}

#[tokio::test]
async fn algorithm_confusion_is_refused() {
    let ed = ed25519("ed");
    let rs = rsa("rs");
    let es = p256("es");
    let server = JwksServer::start(&[&ed, &rs]).await;
    // Both modes on: the HS256 path exists, and must still not accept these.
    let app = app(&server.base_url(), Duration::from_millis(200), true).await;
    let alice = claims(&server, "alice");
    assert_eq!(
        until_keys_load(&app, &ed.sign(&alice)).await.status,
        StatusCode::OK
    );

    for public in [&ed.public_bytes, &rs.public_bytes] {
        // HS256 with the public key as the HMAC secret, naming the published kid.
        let mut header = jsonwebtoken::Header::new(Algorithm::HS256);
        header.kid = Some(ed.kid.clone());
        let forged = jsonwebtoken::encode(
            &header,
            &alice,
            &jsonwebtoken::EncodingKey::from_secret(public),
        )
        .expect("signs");
        assert_unauthorized(&app.get("/api/tasks", &forged).await, "signature");
    }
    // ES256 header pointing at the EdDSA key.
    let swapped = es.with_kid("ed", Algorithm::ES256);
    assert_unauthorized(
        &app.get("/api/tasks", &swapped.sign(&alice)).await,
        "algorithm",
    );
    // RS256 key asked to check a PS256 signature.
    let ps = rs.with_kid("rs", Algorithm::PS256);
    assert_unauthorized(&app.get("/api/tasks", &ps.sign(&alice)).await, "algorithm");
    // alg none with a published kid.
    use base64::Engine;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let none = format!(
        "{}.{}.",
        engine.encode(br#"{"alg":"none","kid":"ed"}"#),
        engine.encode(alice.to_string())
    );
    assert_unauthorized(&app.get("/api/tasks", &none).await, "algorithm");
    // The shared-secret path still works for its own tokens.
    assert_eq!(
        app.get("/api/tasks", &token("bob")).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn with_only_jwks_configured_hs256_tokens_are_refused() {
    let key = ed25519("ed");
    let server = JwksServer::start(&[&key]).await;
    let app = app(&server.base_url(), Duration::from_millis(200), false).await;
    let alice = claims(&server, "alice");
    assert_eq!(
        until_keys_load(&app, &key.sign(&alice)).await.status,
        StatusCode::OK
    );
    let hs256 = sign_with(Algorithm::HS256, SECRET.as_bytes(), &alice);
    assert_unauthorized(&app.get("/api/tasks", &hs256).await, "algorithm");
}

#[tokio::test]
async fn an_auth_server_that_is_down_at_start_gives_503_until_it_is_up() {
    let address = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        probe.local_addr().expect("address")
    };
    let base = format!("http://{address}");
    let app = app(&base, Duration::from_millis(200), true).await;
    let key = ed25519("ed");
    let alice = json!({"sub": "alice", "iss": base, "aud": base, "exp": now() + 900});

    let started = Instant::now();
    let response = app.get("/api/tasks", &key.sign(&alice)).await;
    response.assert_error(StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.header("retry-after"), Some("1"));
    assert!(started.elapsed() < Duration::from_secs(3), "fast, not hung");
    assert_eq!(
        app.get("/api/tasks", &token("bob")).await.status,
        StatusCode::OK,
        "HS256 does not depend on the auth server"
    );

    let server = JwksServer::start_at(address, &[&key]).await;
    let response = until_keys_load(&app, &key.sign(&alice)).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert!(server.hits() >= 1);
}

#[tokio::test]
async fn a_failing_or_slow_jwks_keeps_the_old_keys_and_never_hangs() {
    let key = ed25519("ed");
    let server = JwksServer::start(&[&key]).await;
    let app = app(&server.base_url(), Duration::from_millis(100), false).await;
    let alice = claims(&server, "alice");
    assert_eq!(
        until_keys_load(&app, &key.sign(&alice)).await.status,
        StatusCode::OK
    );
    let stranger = ed25519("stranger");

    for behaviour in [
        Behaviour::Error500,
        Behaviour::Garbage,
        Behaviour::Slow(Duration::from_secs(10)),
    ] {
        server.behave(behaviour);
        let hits = server.hits();
        // Past the 100 ms cooldown since the last fetch, so that the unknown key may cost one
        // refetch: a span the verifier enforces, not a condition to poll.
        tokio::time::sleep(Duration::from_millis(150)).await;
        let started = Instant::now();
        let response = app.get("/api/tasks", &stranger.sign(&alice)).await;
        assert_unauthorized(&response, "unknown key");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{behaviour:?}: answered after {:?}",
            started.elapsed()
        );
        assert_eq!(
            server.hits(),
            hits + 1,
            "{behaviour:?}: one refetch was tried"
        );
        let known = app.get("/api/tasks", &key.sign(&alice)).await;
        assert_eq!(known.status, StatusCode::OK, "{behaviour:?}: old keys kept");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spray_of_random_kids_costs_at_most_one_fetch_per_cooldown() {
    let key = ed25519("ed");
    let server = JwksServer::start(&[&key]).await;
    let cooldown = Duration::from_secs(2);
    let app = std::sync::Arc::new(app(&server.base_url(), cooldown, false).await);
    let alice = claims(&server, "alice");
    assert_eq!(
        until_keys_load(&app, &key.sign(&alice)).await.status,
        StatusCode::OK
    );
    // Past the cooldown, so the spray is allowed its one refetch.
    tokio::time::sleep(cooldown).await;
    let before = server.hits();

    let mut requests = Vec::new();
    for n in 0..200 {
        let app = app.clone();
        let token = key
            .with_kid(
                &format!("random-{n}-{}", uuid::Uuid::new_v4()),
                Algorithm::EdDSA,
            )
            .sign(&alice);
        requests.push(tokio::spawn(async move {
            app.get("/api/tasks", &token).await.status
        }));
    }
    for request in requests {
        assert_eq!(request.await.expect("ran"), StatusCode::UNAUTHORIZED);
    }
    let fetches = server.hits() - before;
    eprintln!("200 random-kid requests caused {fetches} JWKS fetch(es)");
    assert!(fetches >= 1, "an unknown kid triggers a refetch");
    assert!(fetches <= 2, "{fetches} fetches for 200 random kids");
}

#[tokio::test]
async fn a_key_removed_from_the_set_revokes_tokens_already_seen() {
    let old = ed25519("old");
    let new = ed25519("new");
    let server = JwksServer::start(&[&old]).await;
    let cooldown = Duration::from_millis(100);
    let app = app(&server.base_url(), cooldown, false).await;
    // A token with a ten-year life, verified (and remembered) once.
    let mut long_lived = claims(&server, "alice");
    long_lived["exp"] = json!(now() + 10 * 365 * 86_400);
    let token = old.sign(&long_lived);
    assert_eq!(until_keys_load(&app, &token).await.status, StatusCode::OK);
    assert_eq!(app.get("/api/tasks", &token).await.status, StatusCode::OK);

    // The old key is rotated out; a token naming the new key makes the service refetch.
    server.publish(&[&new]);
    // Past the cooldown since the last fetch (a span, not a condition), so the new key's token
    // is allowed its refetch.
    tokio::time::sleep(cooldown).await;
    let fresh = new.sign(&claims(&server, "alice"));
    assert_eq!(app.get("/api/tasks", &fresh).await.status, StatusCode::OK);

    assert_unauthorized(&app.get("/api/tasks", &token).await, "unknown key");
}

#[tokio::test]
async fn an_issuer_given_as_an_array_is_refused() {
    let key = ed25519("k");
    let server = JwksServer::start(&[&key]).await;
    let app = app(&server.base_url(), Duration::from_millis(100), false).await;
    let good = key.sign(&claims(&server, "alice"));
    assert_eq!(until_keys_load(&app, &good).await.status, StatusCode::OK);
    let mut array = claims(&server, "alice");
    array["iss"] = json!([server.base_url()]);
    assert_unauthorized(&app.get("/api/tasks", &key.sign(&array)).await, "`iss`");
}

#[tokio::test]
async fn a_token_with_critical_extensions_is_refused() {
    let key = ed25519("k");
    let server = JwksServer::start(&[&key]).await;
    let app = app(&server.base_url(), Duration::from_millis(100), false).await;
    let good = key.sign(&claims(&server, "alice"));
    assert_eq!(until_keys_load(&app, &good).await.status, StatusCode::OK);
    let critical = key.sign_with_crit(&claims(&server, "alice"), &["x-unknown"]);
    assert_unauthorized(&app.get("/api/tasks", &critical).await, "crit");
}
