//! `Idempotency-Key` on create and move (docs/api.md, "Idempotency-Key"): a retried request is
//! answered, not repeated.

use axum::http::{Method, StatusCode};
use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::support::app::{TestApp, TestResponse, token};

async fn post_with_key(app: &TestApp, user: &str, key: &str, body: &Value) -> TestResponse {
    app.request(Method::POST, "/api/tasks")
        .token(&token(user))
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
}

async fn count(app: &TestApp, user: &str) -> usize {
    let list = app.get("/api/tasks?limit=100", &token(user)).await.json();
    list.as_array().map_or(0, Vec::len)
}

async fn a_repeat_gets_the_original_response(app: &TestApp) {
    let body = json!({"title": "pay rent", "tags": ["home"]});
    let first = post_with_key(app, "alice", "rent-2026-12", &body).await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(first.header("idempotent-replayed"), None);
    // Another change in between: the replay is still the original response.
    app.patch(
        &TestApp::url_of(&first.json()),
        &token("alice"),
        &json!({"title": "paid"}),
    )
    .await;
    // The same key, bare or as a quoted string, and the same body spelt differently.
    for key in ["rent-2026-12", "\"rent-2026-12\""] {
        let again = app
            .request(Method::POST, "/api/tasks")
            .token(&token("alice"))
            .header("idempotency-key", key)
            .header("content-type", "application/json")
            .body(r#"{ "tags": ["home"], "title": "pay rent" }"#)
            .send()
            .await;
        assert_eq!(again.status, StatusCode::CREATED);
        assert_eq!(again.body, first.body, "byte for byte");
        assert_eq!(again.header("location"), first.header("location"));
        assert_eq!(again.header("etag"), first.header("etag"));
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
    }
    assert_eq!(count(app, "alice").await, 1);
}

async fn a_key_reused_for_another_request_is_refused(app: &TestApp) {
    post_with_key(app, "alice", "k1", &json!({"title": "one"})).await;
    let other = post_with_key(app, "alice", "k1", &json!({"title": "two"})).await;
    let body = other.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["field"], "Idempotency-Key");
    // The same key on another route is another request too.
    let task = app.get("/api/tasks", &token("alice")).await.json()[0].clone();
    app.request(Method::POST, &format!("{}/move", TestApp::url_of(&task)))
        .token(&token("alice"))
        .header("idempotency-key", "k1")
        .json(&json!({"after": null}))
        .send()
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(count(app, "alice").await, 1);
}

async fn keys_belong_to_their_user(app: &TestApp) {
    let body = json!({"title": "same key"});
    let alice = post_with_key(app, "alice", "shared", &body).await;
    let bob = post_with_key(app, "bob", "shared", &body).await;
    assert_eq!(alice.status, StatusCode::CREATED);
    assert_eq!(bob.status, StatusCode::CREATED);
    assert_eq!(bob.header("idempotent-replayed"), None);
    assert_ne!(alice.json()["id"], bob.json()["id"]);
    assert_eq!(bob.json()["user_id"], "bob");
}

async fn an_invalid_key_is_a_400_and_creates_nothing(app: &TestApp) {
    let long = "k".repeat(256);
    for bad in ["", "\"\"", long.as_str(), "tab\there"] {
        post_with_key(app, "alice", bad, &json!({"title": "x"}))
            .await
            .assert_error(StatusCode::BAD_REQUEST);
    }
    assert_eq!(count(app, "alice").await, 0);
    // Not a quoted string, so a bare key, quote and all.
    let open = post_with_key(app, "alice", "\"open", &json!({"title": "x"})).await;
    assert_eq!(open.status, StatusCode::CREATED, "{}", open.text());
    let again = post_with_key(app, "alice", "\"open", &json!({"title": "x"})).await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(count(app, "alice").await, 1);
    // Validation is not recorded: the same key with a valid body then creates.
    post_with_key(app, "alice", "later", &json!({"title": ""}))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    let created = post_with_key(app, "alice", "later", &json!({"title": "fixed"})).await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(count(app, "alice").await, 2);
}

/// A flaky network resends one request many times at once: one task, whatever the timing.
/// Four bursts of 50, each with its own key.
async fn many_concurrent_repeats_create_one_task(app: &TestApp) {
    for burst in 0..4 {
        let key = format!("burst-{burst}");
        let body = json!({"title": format!("tapped save 50 times ({burst})")});
        let responses = join_all((0..50).map(|_| post_with_key(app, "alice", &key, &body))).await;
        let mut created = None;
        for response in &responses {
            match response.status {
                StatusCode::CREATED => {
                    let task = response.json();
                    let id = created.get_or_insert_with(|| task["id"].clone());
                    assert_eq!(&task["id"], id, "every 201 of burst {burst} names one task");
                }
                StatusCode::CONFLICT => {
                    response.assert_error(StatusCode::CONFLICT);
                    assert_eq!(response.header("retry-after"), Some("1"));
                }
                other => panic!("unexpected {other}: {}", response.text()),
            }
        }
        let originals = responses
            .iter()
            .filter(|r| {
                r.status == StatusCode::CREATED && r.header("idempotent-replayed").is_none()
            })
            .count();
        assert_eq!(originals, 1, "burst {burst}");
        assert_eq!(count(app, "alice").await, burst + 1);
        // Once it is done, a repeat is a replay.
        let after = post_with_key(app, "alice", &key, &body).await;
        assert_eq!(after.header("idempotent-replayed"), Some("true"));
    }
}

/// Concurrent creates with keys of their own race for the next position; the one that loses
/// retries, and must not find its own key still locked by its first attempt.
async fn concurrent_requests_with_their_own_keys_all_succeed(app: &TestApp) {
    for round in 0..3 {
        let responses = join_all((0..40).map(|n| {
            let body = json!({"title": format!("r{round} n{n}")});
            async move { post_with_key(app, "alice", &format!("r{round}-{n}"), &body).await }
        }))
        .await;
        for response in &responses {
            assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
            assert_eq!(response.header("idempotent-replayed"), None);
        }
    }
    let total = app.get("/api/tasks?limit=1", &token("alice")).await;
    assert_eq!(total.header("x-total-count"), Some("120"));
}

async fn a_key_older_than_a_day_is_a_new_request(app: &TestApp) {
    let body = json!({"title": "weekly review"});
    post_with_key(app, "alice", "weekly", &body).await;
    app.execute(
        "update idempotency_keys set created_at = created_at - interval '25 hours'",
        "update idempotency_keys set created_at = created_at - 90000000000",
    )
    .await;
    let again = post_with_key(app, "alice", "weekly", &body).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.header("idempotent-replayed"), None);
    assert_eq!(count(app, "alice").await, 2);
    // And the fresh record replays from now on.
    let third = post_with_key(app, "alice", "weekly", &body).await;
    assert_eq!(third.body, again.body);
    assert_eq!(count(app, "alice").await, 2);
}

async fn a_move_with_a_key_is_made_once(app: &TestApp) {
    let alice = token("alice");
    let a = app.create_task(&alice, json!({"title": "a"})).await;
    let b = app.create_task(&alice, json!({"title": "b"})).await;
    let url = format!("{}/move", TestApp::url_of(&a));
    let send = || {
        app.request(Method::POST, &url)
            .token(&alice)
            .header("idempotency-key", "drag-1")
            .json(&json!({"after": b["id"]}))
            .send()
    };
    let first = send().await;
    assert_eq!(first.status, StatusCode::OK);
    let again = send().await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let now = app.get(&TestApp::url_of(&a), &alice).await.json();
    assert_eq!(now["version"], first.json()["version"], "moved once");
}

backend_tests!(
    a_repeat_gets_the_original_response,
    a_key_reused_for_another_request_is_refused,
    keys_belong_to_their_user,
    an_invalid_key_is_a_400_and_creates_nothing,
    many_concurrent_repeats_create_one_task,
    concurrent_requests_with_their_own_keys_all_succeed,
    a_key_older_than_a_day_is_a_new_request,
    a_move_with_a_key_is_made_once,
);
