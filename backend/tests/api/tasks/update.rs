//! Changing tasks: `PUT /api/tasks/{task_id}`.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::support::app::{TestApp, token};

async fn update_changes_only_the_fields_given(app: &TestApp) {
    let alice = token("alice");
    let task = app
        .create_task(&alice, json!({"title": "old", "description": "keep me"}))
        .await;
    let url = TestApp::url_of(&task);

    let response = app.put(&url, &alice, &json!({"status": "completed"})).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    let updated = response.json();
    assert_eq!(updated["status"], "completed");
    assert_eq!(updated["title"], "old");
    assert_eq!(updated["description"], "keep me");

    let renamed = app.put(&url, &alice, &json!({"title": "new"})).await.json();
    assert_eq!(renamed["title"], "new");
    assert_eq!(renamed["status"], "completed");

    let cleared = app
        .put(&url, &alice, &json!({"description": null}))
        .await
        .json();
    assert_eq!(cleared["description"], Value::Null);
    assert_eq!(cleared["title"], "new");

    assert_eq!(app.get(&url, &alice).await.json(), cleared);
}

async fn update_moves_updated_at_but_never_created_at(app: &TestApp) {
    let alice = token("alice");
    let task = app.create_task(&alice, json!({"title": "a"})).await;
    let url = TestApp::url_of(&task);
    let first = app.put(&url, &alice, &json!({"title": "b"})).await.json();
    let second = app.put(&url, &alice, &json!({"title": "c"})).await.json();
    assert_eq!(first["created_at"], task["created_at"]);
    assert_eq!(second["created_at"], task["created_at"]);
    let time = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().expect("string")).expect("rfc3339")
    };
    assert!(time(&first["updated_at"]) > time(&task["updated_at"]));
    assert!(time(&second["updated_at"]) > time(&first["updated_at"]));
}

async fn update_with_an_empty_body_changes_nothing(app: &TestApp) {
    let alice = token("alice");
    let task = app.create_task(&alice, json!({"title": "a"})).await;
    let response = app.put(&TestApp::url_of(&task), &alice, &json!({})).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json(), task);
}

async fn update_refuses_null_title_and_status(app: &TestApp) {
    let alice = token("alice");
    let task = app.create_task(&alice, json!({"title": "a"})).await;
    let url = TestApp::url_of(&task);
    for body in [json!({"title": null}), json!({"status": null})] {
        app.put(&url, &alice, &body)
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    }
    assert_eq!(app.get(&url, &alice).await.json(), task);
}

async fn update_returns_404_for_a_missing_task(app: &TestApp) {
    app.put("/api/tasks/424242", &token("alice"), &json!({"title": "x"}))
        .await
        .assert_error(StatusCode::NOT_FOUND);
}

backend_tests!(
    update_changes_only_the_fields_given,
    update_moves_updated_at_but_never_created_at,
    update_with_an_empty_body_changes_nothing,
    update_refuses_null_title_and_status,
    update_returns_404_for_a_missing_task,
);
