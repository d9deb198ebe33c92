//! Reading tasks: one by id, and the list with its paging; isolation between users.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::support::app::{TestApp, token};

async fn get_returns_404_for_a_missing_task(app: &TestApp) {
    let response = app.get("/api/tasks/999999", &token("alice")).await;
    let body = response.assert_error(StatusCode::NOT_FOUND);
    assert_eq!(body["detail"], "task not found");
}

async fn list_returns_the_callers_tasks_newest_first(app: &TestApp) {
    let alice = token("alice");
    let mut ids = Vec::new();
    for n in 0..3 {
        let task = app
            .create_task(&alice, json!({"title": format!("task {n}")}))
            .await;
        ids.push(task["id"].as_i64().expect("id"));
    }
    let response = app.get("/api/tasks", &alice).await;
    assert_eq!(response.status, StatusCode::OK);
    let listed: Vec<i64> = response
        .json()
        .as_array()
        .expect("a JSON array")
        .iter()
        .map(|task| task["id"].as_i64().expect("id"))
        .collect();
    ids.reverse();
    assert_eq!(listed, ids);
}

async fn list_of_a_new_user_is_an_empty_array(app: &TestApp) {
    let response = app.get("/api/tasks", &token("newcomer")).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json(), json!([]));
}

async fn list_pages_with_limit_and_offset(app: &TestApp) {
    let alice = token("alice");
    for n in 0..55 {
        app.create_task(&alice, json!({"title": format!("task {n}")}))
            .await;
    }
    let all = app.get("/api/tasks?limit=100", &alice).await.json();
    assert_eq!(all.as_array().map(Vec::len), Some(55));
    let default = app.get("/api/tasks", &alice).await.json();
    assert_eq!(
        default.as_array().map(Vec::len),
        Some(50),
        "default limit is 50"
    );

    let mut paged = Vec::new();
    for offset in (0..60).step_by(20) {
        let page = app
            .get(&format!("/api/tasks?limit=20&offset={offset}"), &alice)
            .await
            .json();
        paged.extend(page.as_array().expect("array").iter().cloned());
    }
    assert_eq!(
        Value::Array(paged),
        all,
        "pages are disjoint, complete and in order"
    );

    let beyond = app.get("/api/tasks?offset=1000", &alice).await;
    assert_eq!(beyond.json(), json!([]));
    let unknown_parameters_are_ignored = app.get("/api/tasks?limit=1&_=123", &alice).await;
    assert_eq!(
        unknown_parameters_are_ignored
            .json()
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

async fn another_users_task_is_a_404_that_looks_like_a_missing_one(app: &TestApp) {
    let (alice, bob) = (token("alice"), token("bob"));
    let task = app
        .create_task(
            &alice,
            json!({"title": "alice's secret", "description": "private"}),
        )
        .await;
    let url = TestApp::url_of(&task);
    let missing = app.get("/api/tasks/999999999", &bob).await.json();

    let attempts = [
        app.get(&url, &bob).await,
        app.put(
            &url,
            &bob,
            &json!({"title": "pwned", "status": "completed"}),
        )
        .await,
        app.delete(&url, &bob).await,
    ];
    for response in attempts {
        let body = response.assert_error(StatusCode::NOT_FOUND);
        assert_eq!(
            body, missing,
            "a foreign task is indistinguishable from a missing one"
        );
        assert!(!response.text().contains("secret"));
    }
    assert_eq!(app.get("/api/tasks", &bob).await.json(), json!([]));
    assert_eq!(
        app.get(&url, &alice).await.json(),
        task,
        "alice's task is untouched"
    );
}

backend_tests!(
    get_returns_404_for_a_missing_task,
    list_returns_the_callers_tasks_newest_first,
    list_of_a_new_user_is_an_empty_array,
    list_pages_with_limit_and_offset,
    another_users_task_is_a_404_that_looks_like_a_missing_one,
);
