//! App passwords: made and revoked with the bearer token, good for `/dav/` only.

use axum::http::{Method, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use super::Client;
use crate::backend_tests;
use crate::support::app::{TestApp, token};

async fn an_app_password_opens_dav_only_and_is_shown_once(app: &TestApp) {
    let alice = Client::new(app, "alice").await;
    let listed = app.get("/api/app-passwords", &token("alice")).await;
    assert_eq!(listed.status, StatusCode::OK);
    let listed = listed.json();
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert_eq!(listed[0]["name"], "test");
    assert!(listed[0].get("password").is_none(), "{listed}");
    assert!(listed[0]["last_used_at"].is_null());

    let ok = alice.propfind("/dav/", "0", "").await;
    assert_eq!(ok.status, StatusCode::MULTI_STATUS, "{}", ok.text());
    let used = app.get("/api/app-passwords", &token("alice")).await.json();
    assert!(used[0]["last_used_at"].is_string(), "{used}");

    // Not a key to the API, in either scheme.
    let password = String::from_utf8(
        STANDARD
            .decode(alice.basic.trim_start_matches("Basic "))
            .expect("base64"),
    )
    .expect("utf-8");
    let secret = password.split_once(':').expect("user:password").1;
    for authorization in [alice.basic.clone(), format!("Bearer {secret}")] {
        let response = app
            .request(Method::GET, "/api/tasks")
            .header("authorization", &authorization)
            .send()
            .await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{authorization}");
    }
    // And a bearer token is no key to /dav/.
    let bearer = app
        .request(Method::from_bytes(b"PROPFIND").expect("a method"), "/dav/")
        .token(&token("alice"))
        .send()
        .await;
    assert_eq!(bearer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        bearer.header("www-authenticate"),
        Some(r#"Basic realm="todo-backend", charset="UTF-8""#)
    );
}

async fn a_revoked_or_wrong_password_fails_at_once(app: &TestApp) {
    let alice = Client::new(app, "alice").await;
    let bob = Client::new(app, "bob").await;
    // Bob's password with alice's name, and a made-up one.
    let bobs_secret = String::from_utf8(
        STANDARD
            .decode(bob.basic.trim_start_matches("Basic "))
            .expect("base64"),
    )
    .expect("utf-8");
    let bobs_secret = bobs_secret.split_once(':').expect("user:password").1;
    for credentials in [format!("alice:{bobs_secret}"), "alice:guess".to_owned()] {
        let response = app
            .request(Method::from_bytes(b"PROPFIND").expect("a method"), "/dav/")
            .header(
                "authorization",
                &format!("Basic {}", STANDARD.encode(&credentials)),
            )
            .send()
            .await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{credentials}");
    }
    let revoked = app
        .delete(
            &format!("/api/app-passwords/{}", alice.password_id),
            &token("alice"),
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    assert_eq!(
        alice.propfind("/dav/", "0", "").await.status,
        StatusCode::UNAUTHORIZED
    );
    // Bob cannot revoke alice's, nor name a malformed id.
    let again = app
        .delete(
            &format!("/api/app-passwords/{}", alice.password_id),
            &token("alice"),
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    let foreign = app
        .delete(
            &format!("/api/app-passwords/{}", bob.password_id),
            &token("alice"),
        )
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    assert_eq!(
        bob.propfind("/dav/", "0", "").await.status,
        StatusCode::MULTI_STATUS
    );
    let malformed = app.delete("/api/app-passwords/x1", &token("alice")).await;
    assert_eq!(malformed.status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn app_passwords_have_names_and_a_limit(app: &TestApp) {
    for body in [
        json!({}),
        json!({"name": ""}),
        json!({"name": "a", "extra": 1}),
    ] {
        let response = app.post("/api/app-passwords", &token("alice"), &body).await;
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
    for n in 0..50 {
        let response = app
            .post(
                "/api/app-passwords",
                &token("alice"),
                &json!({"name": format!("device {n}")}),
            )
            .await;
        assert_eq!(response.status, StatusCode::CREATED);
    }
    let over = app
        .post(
            "/api/app-passwords",
            &token("alice"),
            &json!({"name": "one more"}),
        )
        .await;
    assert_eq!(over.status, StatusCode::CONFLICT, "{}", over.text());
    // Another user's count is their own; an erased account takes its passwords along.
    let bob = Client::new(app, "bob").await;
    let erased = app.delete("/api/me", &token("bob")).await;
    assert_eq!(erased.status, StatusCode::NO_CONTENT);
    assert_eq!(
        bob.propfind("/dav/", "0", "").await.status,
        StatusCode::UNAUTHORIZED
    );
}

backend_tests!(
    an_app_password_opens_dav_only_and_is_shown_once,
    a_revoked_or_wrong_password_fails_at_once,
    app_passwords_have_names_and_a_limit,
);
