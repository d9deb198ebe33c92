//! ETags, `If-None-Match` and `If-Match` (docs/api.md, "ETags and If-Match"): a lost update
//! becomes a 412.

use axum::http::{Method, StatusCode};
use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::support::app::{TestApp, TestResponse, token};

fn etag_of(task: &Value) -> String {
    format!("\"{}-{}\"", task["id"], task["version"])
}

async fn patch_if(app: &TestApp, url: &str, user: &str, etag: &str, body: Value) -> TestResponse {
    app.request(Method::PATCH, url)
        .token(&token(user))
        .header("if-match", etag)
        .json(&body)
        .send()
        .await
}

async fn tasks_carry_their_version_as_a_strong_etag(app: &TestApp) {
    let alice = token("alice");
    let created = app
        .request(Method::POST, "/api/tasks")
        .token(&alice)
        .json(&json!({"title": "tagged"}))
        .send()
        .await;
    let task = created.json();
    assert_eq!(created.header("etag"), Some(etag_of(&task).as_str()));
    let url = TestApp::url_of(&task);
    let read = app.get(&url, &alice).await;
    assert_eq!(read.header("etag"), Some(etag_of(&task).as_str()));

    let patched = app.patch(&url, &alice, &json!({"title": "v2"})).await;
    assert_eq!(patched.status, StatusCode::OK);
    assert_eq!(patched.json()["version"], 2);
    assert_eq!(
        patched.header("etag"),
        Some(etag_of(&patched.json()).as_str())
    );

    // RFC 9110 §9.3.4: no ETag on PUT's response; the version is in the body.
    let put = app.put(&url, &alice, &json!({"title": "v3"})).await;
    assert_eq!(put.status, StatusCode::OK);
    assert_eq!(put.header("etag"), None);
    assert_eq!(put.json()["version"], 3);
}

async fn a_current_copy_is_not_sent_again(app: &TestApp) {
    let alice = token("alice");
    let task = app.create_task(&alice, json!({"title": "cached"})).await;
    let url = TestApp::url_of(&task);
    let etag = etag_of(&task);
    for condition in [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"0-0\", {etag}"),
        "*".into(),
    ] {
        let response = app
            .request(Method::GET, &url)
            .token(&alice)
            .header("if-none-match", &condition)
            .send()
            .await;
        assert_eq!(response.status, StatusCode::NOT_MODIFIED, "{condition}");
        assert!(response.body.is_empty());
        assert_eq!(response.header("etag"), Some(etag.as_str()));
    }
    app.patch(&url, &alice, &json!({"priority": "high"})).await;
    let stale = app
        .request(Method::GET, &url)
        .token(&alice)
        .header("if-none-match", &etag)
        .send()
        .await;
    assert_eq!(stale.status, StatusCode::OK);
    assert_eq!(stale.json()["priority"], "high");
    // Someone else's copy of the same id is not a copy of this task.
    app.request(Method::GET, &url)
        .token(&token("bob"))
        .header("if-none-match", &etag)
        .send()
        .await
        .assert_error(StatusCode::NOT_FOUND);
}

async fn lists_carry_a_weak_etag_per_user(app: &TestApp) {
    let (alice, bob) = (token("alice"), token("bob"));
    let empty_alice = app.get("/api/tasks", &alice).await;
    let empty_bob = app.get("/api/tasks", &bob).await;
    let tag = empty_alice.header("etag").expect("a list etag").to_owned();
    assert!(tag.starts_with("W/\""), "{tag}");
    assert_ne!(
        empty_bob.header("etag"),
        Some(tag.as_str()),
        "two users never share a tag"
    );

    let unchanged = app
        .request(Method::GET, "/api/tasks")
        .token(&alice)
        .header("if-none-match", &tag)
        .send()
        .await;
    assert_eq!(unchanged.status, StatusCode::NOT_MODIFIED);
    assert!(unchanged.body.is_empty());

    app.create_task(&alice, json!({"title": "new"})).await;
    let changed = app
        .request(Method::GET, "/api/tasks")
        .token(&alice)
        .header("if-none-match", &tag)
        .send()
        .await;
    assert_eq!(changed.status, StatusCode::OK);
    assert_eq!(changed.json().as_array().map(Vec::len), Some(1));
    assert_ne!(changed.header("etag"), Some(tag.as_str()));
}

async fn a_stale_if_match_is_refused_on_every_write(app: &TestApp) {
    let alice = token("alice");
    let task = app.create_task(&alice, json!({"title": "shared"})).await;
    let other = app.create_task(&alice, json!({"title": "neighbour"})).await;
    let url = TestApp::url_of(&task);
    let stale = etag_of(&task);
    // Another device changes it.
    let current = app
        .patch(&url, &alice, &json!({"title": "from the laptop"}))
        .await
        .json();
    let current_etag = etag_of(&current);

    let writes = [
        (
            Method::PATCH,
            url.clone(),
            Some(json!({"title": "from the phone"})),
        ),
        (
            Method::PUT,
            url.clone(),
            Some(json!({"title": "from the phone"})),
        ),
        (Method::DELETE, url.clone(), None),
        (
            Method::POST,
            format!("{url}/move"),
            Some(json!({"after": other["id"]})),
        ),
    ];
    for (method, uri, body) in &writes {
        let mut request = app
            .request(method.clone(), uri)
            .token(&alice)
            .header("if-match", &stale);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await;
        response.assert_error(StatusCode::PRECONDITION_FAILED);
        assert_eq!(
            response.header("etag"),
            Some(current_etag.as_str()),
            "{method}"
        );
    }
    assert_eq!(
        app.get(&url, &alice).await.json(),
        current,
        "nothing changed"
    );

    // The current tag, or `*`, lets each write through.
    let patched = patch_if(
        app,
        &url,
        "alice",
        &current_etag,
        json!({"title": "agreed"}),
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK);
    let moved = app
        .request(Method::POST, &format!("{url}/move"))
        .token(&alice)
        .header("if-match", "*")
        .json(&json!({"after": other["id"]}))
        .send()
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.text());
    let moved = moved.json();
    let deleted = app
        .request(Method::DELETE, &url)
        .token(&alice)
        .header("if-match", &etag_of(&moved))
        .send()
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
}

async fn other_failures_win_over_a_failed_precondition(app: &TestApp) {
    let alice = token("alice");
    let task = app.create_task(&alice, json!({"title": "t"})).await;
    let url = TestApp::url_of(&task);
    let wrong = "\"1-999\"";
    let send = |method: Method, uri: String, user: &str, body: Option<&str>| {
        let mut request = app
            .request(method, &uri)
            .token(&token(user))
            .header("if-match", wrong);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        request.send()
    };
    send(Method::PATCH, url.clone(), "bob", Some("{}"))
        .await
        .assert_error(StatusCode::NOT_FOUND);
    send(
        Method::PATCH,
        url.clone(),
        "alice",
        Some(r#"{"title": ""}"#),
    )
    .await
    .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    send(Method::DELETE, "/api/tasks/999999".into(), "alice", None)
        .await
        .assert_error(StatusCode::NOT_FOUND);
    app.request(Method::PATCH, &url)
        .header("if-match", wrong)
        .json(&json!({}))
        .send()
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
    app.request(Method::PATCH, &url)
        .token(&alice)
        .header("if-match", wrong)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // An empty patch still checks the condition.
    send(Method::PATCH, url.clone(), "alice", Some("{}"))
        .await
        .assert_error(StatusCode::PRECONDITION_FAILED);
}

async fn a_malformed_condition_is_a_400_and_changes_nothing(app: &TestApp) {
    let alice = token("alice");
    let task = app.create_task(&alice, json!({"title": "t"})).await;
    let url = TestApp::url_of(&task);
    for bad in ["12-3", "\"unterminated", "W/", "\"a b\""] {
        patch_if(app, &url, "alice", bad, json!({"title": "changed"}))
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        app.request(Method::GET, &url)
            .token(&alice)
            .header("if-none-match", bad)
            .send()
            .await
            .assert_error(StatusCode::BAD_REQUEST);
    }
    assert_eq!(app.get(&url, &alice).await.json(), task);
}

/// Two devices holding the same version write at once: exactly one wins, the other learns
/// of it. A check-then-write would let both through now and then.
async fn of_two_concurrent_writers_with_one_version_exactly_one_wins(app: &TestApp) {
    let alice = token("alice");
    let task = app.create_task(&alice, json!({"title": "contended"})).await;
    let url = TestApp::url_of(&task);
    let mut etag = etag_of(&task);
    for round in 0..200 {
        let responses = join_all((0..2).map(|writer| {
            patch_if(
                app,
                &url,
                "alice",
                &etag,
                json!({"title": format!("r{round} w{writer}")}),
            )
        }))
        .await;
        let mut statuses: Vec<u16> = responses.iter().map(|r| r.status.as_u16()).collect();
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 412], "round {round}");
        let winner = responses
            .iter()
            .find(|r| r.status == StatusCode::OK)
            .map(TestResponse::json)
            .expect("a winner");
        assert_eq!(winner["version"], round + 2);
        etag = etag_of(&winner);
    }
    assert_eq!(app.get(&url, &alice).await.json()["version"], 201);
}

backend_tests!(
    tasks_carry_their_version_as_a_strong_etag,
    a_current_copy_is_not_sent_again,
    lists_carry_a_weak_etag_per_user,
    a_stale_if_match_is_refused_on_every_write,
    other_failures_win_over_a_failed_precondition,
    a_malformed_condition_is_a_400_and_changes_nothing,
    of_two_concurrent_writers_with_one_version_exactly_one_wins,
);
