//! Creating tasks: `POST /api/tasks`.

use std::collections::HashSet;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::support::app::{TestApp, token};

async fn create_returns_201_with_the_task_and_its_location(app: &TestApp) {
    let alice = token("alice");
    let response = app
        .post(
            "/api/tasks",
            &alice,
            &json!({"title": "Buy milk", "description": "semi-skimmed", "status": "in_progress"}),
        )
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
    let task = response.json();
    assert!(task["id"].as_i64().is_some_and(|id| id > 0), "{task}");
    assert_eq!(task["title"], "Buy milk");
    assert_eq!(task["description"], "semi-skimmed");
    assert_eq!(task["status"], "in_progress");
    assert_eq!(task["user_id"], "alice");
    assert_eq!(task["created_at"], task["updated_at"]);
    let created_at = task["created_at"].as_str().expect("created_at is a string");
    assert!(created_at.ends_with('Z'), "UTC RFC 3339: {created_at}");
    assert!(chrono::DateTime::parse_from_rfc3339(created_at).is_ok());
    assert_eq!(
        response.header("location"),
        Some(TestApp::url_of(&task).as_str())
    );

    let fetched = app.get(&TestApp::url_of(&task), &alice).await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.json(), task, "what was returned is what was stored");
}

async fn create_defaults_to_pending_with_no_description(app: &TestApp) {
    let task = app
        .create_task(&token("alice"), json!({"title": "x"}))
        .await;
    assert_eq!(task["status"], "pending");
    assert_eq!(task["description"], Value::Null);
}

async fn the_body_cannot_choose_the_owner_or_the_id(app: &TestApp) {
    let alice = token("alice");
    for field in [
        json!({"title": "x", "user_id": "bob"}),
        json!({"title": "x", "id": 1}),
        json!({"title": "x", "created_at": "2000-01-01T00:00:00Z"}),
        json!({"title": "x", "updated_at": "2000-01-01T00:00:00Z"}),
    ] {
        let body = app
            .post("/api/tasks", &alice, &field)
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
        assert!(body["errors"][0]["field"].is_string(), "{body}");
    }
    let task = app.create_task(&alice, json!({"title": "mine"})).await;
    let url = TestApp::url_of(&task);
    for field in [
        json!({"user_id": "bob"}),
        json!({"id": 99}),
        json!({"created_at": "2000-01-01T00:00:00Z"}),
    ] {
        app.put(&url, &alice, &field)
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    }
    assert_eq!(app.get(&url, &alice).await.json(), task);
    assert_eq!(app.get("/api/tasks", &token("bob")).await.json(), json!([]));
}

async fn one_hundred_concurrent_creates_all_succeed_with_distinct_ids(app: &TestApp) {
    let alice = token("alice");
    let mut handles = Vec::new();
    for n in 0..100 {
        let router = app.router.clone();
        let alice = alice.clone();
        handles.push(tokio::spawn(async move {
            use tower::ServiceExt;
            let request = Request::post("/api/tasks")
                .header(header::AUTHORIZATION, format!("Bearer {alice}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(
                    json!({"title": format!("task {n}")}).to_string(),
                ))
                .expect("request");
            let response = router.oneshot(request).await.expect("infallible");
            let status = response.status();
            let body = http_body_util::BodyExt::collect(response.into_body())
                .await
                .expect("body")
                .to_bytes();
            (status, body)
        }));
    }
    let mut ids = HashSet::new();
    for handle in handles {
        let (status, body) = handle.await.expect("task ran");
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&body)
        );
        let task: Value = serde_json::from_slice(&body).expect("json");
        assert!(
            ids.insert(task["id"].as_i64().expect("id")),
            "ids are distinct"
        );
    }
    let listed = app.get("/api/tasks?limit=100", &alice).await.json();
    assert_eq!(listed.as_array().map(Vec::len), Some(100));
}

backend_tests!(
    create_returns_201_with_the_task_and_its_location,
    create_defaults_to_pending_with_no_description,
    the_body_cannot_choose_the_owner_or_the_id,
    one_hundred_concurrent_creates_all_succeed_with_distinct_ids,
);
