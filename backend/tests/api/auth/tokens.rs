//! Authentication through the real router: every way a token can be wrong is a 401.

use axum::http::{Method, StatusCode};
use jsonwebtoken::Algorithm;
use serde_json::json;

use crate::backend_tests;
use crate::support::app::{SECRET, TestApp, now, sign, sign_with, token};

/// Asserts a 401 whose detail mentions `reason` and never echoes the token.
#[track_caller]
fn assert_refused(
    case: &str,
    response: &crate::support::app::TestResponse,
    token: &str,
    reason: &str,
) {
    let body = response.assert_error(StatusCode::UNAUTHORIZED);
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(reason),
        "{case}: expected {reason:?} in {detail:?}"
    );
    assert!(!response.text().contains(token), "{case}: token echoed");
    let challenge = response
        .header("www-authenticate")
        .expect("WWW-Authenticate");
    assert!(challenge.starts_with("Bearer"), "{case}: {challenge}");
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{case}: {challenge}"
    );
}

async fn every_task_route_needs_a_token(app: &TestApp) {
    let routes = [
        (Method::POST, "/api/tasks"),
        (Method::GET, "/api/tasks"),
        (Method::GET, "/api/tasks/1"),
        (Method::PUT, "/api/tasks/1"),
        (Method::DELETE, "/api/tasks/1"),
    ];
    for (method, uri) in routes {
        // A body that is also invalid: authentication is checked first.
        let body = json!({"title": ""});
        let response = app.request(method.clone(), uri).json(&body).send().await;
        let error = response.assert_error(StatusCode::UNAUTHORIZED);
        assert!(
            error["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("missing"),
            "{error}"
        );
        assert_eq!(
            response.header("www-authenticate"),
            Some(r#"Bearer realm="todo-backend""#),
            "{method} {uri}"
        );
    }
}

async fn other_schemes_are_refused(app: &TestApp) {
    for value in ["Basic YWxpY2U6cGFzcw==", "Token abc", "abc", "Bearer"] {
        app.request(Method::GET, "/api/tasks")
            .header("authorization", value)
            .send()
            .await
            .assert_error(StatusCode::UNAUTHORIZED);
    }
}

async fn bad_tokens_are_refused_with_the_reason(app: &TestApp) {
    let valid = token("alice");
    let exp = now() + 3600;
    let tampered = {
        // Same header and signature, payload swapped for bob's.
        let parts: Vec<&str> = valid.split('.').collect();
        let bob = token("bob");
        let bob_payload = bob.split('.').nth(1).expect("payload");
        format!("{}.{}.{}", parts[0], bob_payload, parts[2])
    };
    let unsigned = {
        use base64::Engine;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = engine.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = engine.encode(json!({"sub": "alice", "exp": exp}).to_string());
        format!("{header}.{payload}.")
    };
    let cases = [
        (
            "wrong secret",
            sign_with(
                Algorithm::HS256,
                b"another-secret-another-secret-0123",
                &json!({"sub": "alice", "exp": exp}),
            ),
            "signature",
        ),
        ("alg none", unsigned, "algorithm"),
        (
            "HS384 with the right secret",
            sign_with(
                Algorithm::HS384,
                SECRET.as_bytes(),
                &json!({"sub": "alice", "exp": exp}),
            ),
            "algorithm",
        ),
        (
            "expired beyond the leeway",
            sign(&json!({"sub": "alice", "exp": now() - 120})),
            "expired",
        ),
        (
            "not valid yet",
            sign(&json!({"sub": "alice", "exp": exp, "nbf": now() + 600})),
            "not valid yet",
        ),
        ("no exp", sign(&json!({"sub": "alice"})), "exp"),
        (
            "string exp",
            sign(&json!({"sub": "alice", "exp": exp.to_string()})),
            "exp",
        ),
        (
            "string nbf",
            sign(&json!({"sub": "alice", "exp": exp, "nbf": "0"})),
            "nbf",
        ),
        ("no sub", sign(&json!({"exp": exp})), "sub"),
        ("empty sub", sign(&json!({"sub": "", "exp": exp})), "sub"),
        ("numeric sub", sign(&json!({"sub": 42, "exp": exp})), "sub"),
        (
            "256-character sub",
            sign(&json!({"sub": "u".repeat(256), "exp": exp})),
            "sub",
        ),
        (
            "NUL in sub",
            sign(&json!({"sub": "a\u{0}b", "exp": exp})),
            "sub",
        ),
        ("tampered payload", tampered, "signature"),
        ("not a JWT", "not-a-jwt".to_owned(), "malformed"),
        ("garbage segments", "a.b.c".to_owned(), "malformed"),
        (
            "oversized",
            sign(&json!({"sub": "alice", "exp": exp, "pad": "x".repeat(9000)})),
            "larger than",
        ),
    ];
    for (case, bad, reason) in cases {
        let response = app.get("/api/tasks", &bad).await;
        assert_refused(case, &response, &bad, reason);
    }
}

async fn expiry_within_the_leeway_is_accepted(app: &TestApp) {
    let recently_expired = sign(&json!({"sub": "alice", "exp": now() - 10}));
    let response = app.get("/api/tasks", &recently_expired).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
}

async fn two_authorization_headers_are_refused(app: &TestApp) {
    let body = app
        .request(Method::GET, "/api/tasks")
        .token(&token("alice"))
        .token(&token("bob"))
        .send()
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("more than one")
    );
}

async fn the_user_is_the_tokens_subject(app: &TestApp) {
    let id = "user_2NNEqL-ü/@x";
    let task = app.create_task(&token(id), json!({"title": "mine"})).await;
    assert_eq!(task["user_id"], id);
    let listed = app
        .request(Method::GET, "/api/tasks")
        .header("authorization", &format!("bearer {}", token(id)))
        .send()
        .await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.json()[0], task);
}

backend_tests!(
    every_task_route_needs_a_token,
    other_schemes_are_refused,
    bad_tokens_are_refused_with_the_reason,
    expiry_within_the_leeway_is_accepted,
    two_authorization_headers_are_refused,
    the_user_is_the_tokens_subject,
);
