//! Deleting tasks: `DELETE /api/tasks/{task_id}`.

use axum::http::StatusCode;
use serde_json::json;

use crate::backend_tests;
use crate::support::app::{TestApp, token};

async fn delete_returns_204_then_the_task_is_gone(app: &TestApp) {
    let alice = token("alice");
    let task = app.create_task(&alice, json!({"title": "a"})).await;
    let url = TestApp::url_of(&task);
    let response = app.delete(&url, &alice).await;
    assert_eq!(response.status, StatusCode::NO_CONTENT);
    assert!(response.body.is_empty());
    app.get(&url, &alice)
        .await
        .assert_error(StatusCode::NOT_FOUND);
    app.delete(&url, &alice)
        .await
        .assert_error(StatusCode::NOT_FOUND);
}

async fn the_total_follows_creates_and_deletes(app: &TestApp) {
    let alice = token("alice");
    let total = async |token: &str| {
        let response = app.get("/api/tasks?limit=1", token).await;
        response.header("x-total-count").map(str::to_owned)
    };
    assert_eq!(total(&alice).await.as_deref(), Some("0"));
    let mut urls = Vec::new();
    for n in 0..5 {
        let task = app
            .create_task(&alice, json!({"title": format!("t{n}")}))
            .await;
        urls.push(TestApp::url_of(&task));
    }
    app.create_task(&token("bob"), json!({"title": "theirs"}))
        .await;
    assert_eq!(total(&alice).await.as_deref(), Some("5"));
    for url in &urls[..2] {
        app.delete(url, &alice).await;
    }
    // A failed delete of someone else's task changes no count.
    app.delete(&urls[2], &token("bob")).await;
    assert_eq!(total(&alice).await.as_deref(), Some("3"));
    assert_eq!(total(&token("bob")).await.as_deref(), Some("1"));
    assert_eq!(total(&token("carol")).await.as_deref(), Some("0"));
}

backend_tests!(
    delete_returns_204_then_the_task_is_gone,
    the_total_follows_creates_and_deletes,
);
