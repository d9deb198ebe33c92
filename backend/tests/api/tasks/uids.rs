//! Stable ids (docs/subtasks-and-repeating-tasks.md): every task has a `uid`, the client's own
//! or a UUID, unique in its list; a second create with it is a 409 naming the first, which
//! lets an offline client retry without making duplicates.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::support::app::{TestApp, token};

async fn new_list(app: &TestApp, name: &str) -> i64 {
    let response = app
        .post("/api/lists", &token("alice"), &json!({"name": name}))
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
    response.json()["id"].as_i64().expect("an id")
}

async fn uids_are_stable_unique_in_a_list_and_found_by_filter(app: &TestApp) {
    let alice = token("alice");
    let plain = app.create_task(&alice, json!({"title": "plain"})).await;
    let uid = plain["uid"].as_str().expect("a uid");
    assert!(uuid::Uuid::parse_str(uid).is_ok(), "a UUID: {uid}");

    let mine = app
        .create_task(&alice, json!({"title": "mine", "uid": "phone-1@example"}))
        .await;
    assert_eq!(mine["uid"], "phone-1@example");
    let again = app
        .post(
            "/api/tasks",
            &alice,
            &json!({"title": "again", "uid": "phone-1@example"}),
        )
        .await;
    again.assert_error(StatusCode::CONFLICT);
    assert_eq!(
        again.header("location"),
        Some(TestApp::url_of(&mine).as_str())
    );
    // Another list may hold the same uid; a move there then is a 409 naming the holder.
    let other = new_list(app, "Other").await;
    let twin = app
        .create_task(
            &alice,
            json!({"title": "twin", "uid": "phone-1@example", "list_id": other}),
        )
        .await;
    assert_eq!(twin["uid"], "phone-1@example");
    let clash = app
        .patch(&TestApp::url_of(&mine), &alice, &json!({"list_id": other}))
        .await;
    clash.assert_error(StatusCode::CONFLICT);
    assert_eq!(
        clash.header("location"),
        Some(TestApp::url_of(&twin).as_str())
    );
    let unmoved = app.get(&TestApp::url_of(&mine), &alice).await.json();
    assert_eq!(unmoved, mine, "the refused move changed nothing");

    // Found by filter, one per list; kept by a move within the list.
    let found = app
        .get("/api/tasks?uid=phone-1%40example", &alice)
        .await
        .json();
    let found: BTreeSet<i64> = found
        .as_array()
        .expect("a list")
        .iter()
        .map(|task| task["id"].as_i64().expect("id"))
        .collect();
    let expected: BTreeSet<i64> = [&mine, &twin]
        .iter()
        .map(|task| task["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(found, expected);
    let moved = app
        .post(
            &format!("{}/move", TestApp::url_of(&mine)),
            &alice,
            &json!({"after": null}),
        )
        .await
        .json();
    assert_eq!(moved["uid"], "phone-1@example");

    // Bad uids, each a 422 that stores nothing; a uid cannot be changed.
    let long = "u".repeat(256);
    for bad in [
        json!(""),
        json!(long),
        json!("with space"),
        json!("tab\there"),
        json!("nul\u{0}"),
        json!("é"),
        json!(7),
        json!(null),
    ] {
        let refused = app
            .post("/api/tasks", &alice, &json!({"title": "bad", "uid": bad}))
            .await;
        if bad.is_null() {
            // Absent and null both mean "give it one".
            assert_eq!(refused.status, StatusCode::CREATED, "{}", refused.text());
            continue;
        }
        let body = refused.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            body["detail"].as_str().unwrap_or_default().contains("uid"),
            "{body}"
        );
    }
    app.create_task(&alice, json!({"title": "max", "uid": "u".repeat(255)}))
        .await;
    app.patch(&TestApp::url_of(&mine), &alice, &json!({"uid": "renamed"}))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    app.get("/api/tasks?uid=", &alice)
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
}

/// An offline client creates 100 tasks under its own uids, loses the answer to half of them
/// and sends those again: 100 tasks, each once; every retry is told where its task is.
async fn an_offline_client_retries_without_duplicates(app: &TestApp) {
    let alice = token("alice");
    let create = |n: usize| {
        app.request(axum::http::Method::POST, "/api/tasks")
            .token(&alice)
            .json(&json!({"title": format!("offline {n}"), "uid": format!("device-a/{n}")}))
            .send()
    };
    let mut created = Vec::new();
    for batch in (0..100).collect::<Vec<_>>().chunks(10) {
        let answers = futures_util::future::join_all(batch.iter().map(|n| create(*n))).await;
        for answer in answers {
            assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
            created.push(answer.json());
        }
    }
    let retried = futures_util::future::join_all((0..100).step_by(2).map(create)).await;
    for (retry, n) in retried.iter().zip((0..100).step_by(2)) {
        retry.assert_error(StatusCode::CONFLICT);
        let first: &Value = &created[n];
        assert_eq!(
            retry.header("location"),
            Some(TestApp::url_of(first).as_str())
        );
    }
    let mut uids = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(cursor) => format!("/api/tasks?limit=100&cursor={cursor}"),
            None => "/api/tasks?limit=100".to_owned(),
        };
        let page = app.get(&url, &alice).await;
        for task in page.json().as_array().expect("a list") {
            assert!(uids.insert(task["uid"].as_str().expect("uid").to_owned()));
        }
        match page.header("link").and_then(next_cursor) {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(uids.len(), 100);
    assert_eq!(
        app.get("/api/tasks?limit=1", &alice)
            .await
            .header("x-total-count"),
        Some("100")
    );
}

fn next_cursor(link: &str) -> Option<String> {
    let start = link.find("cursor=")? + "cursor=".len();
    let rest = &link[start..];
    let end = rest.find(['>', '&']).unwrap_or(rest.len());
    Some(rest[..end].to_owned())
}

backend_tests!(
    uids_are_stable_unique_in_a_list_and_found_by_filter,
    an_offline_client_retries_without_duplicates,
);
