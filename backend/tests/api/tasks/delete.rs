//! Deleting tasks: `DELETE /api/tasks/{task_id}`.

use axum::http::StatusCode;
use serde_json::json;

use crate::backend_tests;
use crate::helpers::{TestApp, token};

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

backend_tests!(delete_returns_204_then_the_task_is_gone,);
