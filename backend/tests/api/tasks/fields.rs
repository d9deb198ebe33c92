//! The task's fields (docs/api.md, "The task"): due dates, priorities, tags, completed_at,
//! version, and the rules each follows on create, PUT and PATCH.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::support::app::{TestApp, token};

async fn a_new_task_has_every_field_with_its_default(app: &TestApp) {
    let task = app
        .create_task(&token("alice"), json!({"title": "plain"}))
        .await;
    assert_eq!(task["priority"], "none");
    assert_eq!(task["tags"], json!([]));
    assert_eq!(task["due_at"], Value::Null);
    assert_eq!(task["completed_at"], Value::Null);
    assert_eq!(task["version"], 1);
    assert!(task["position"].as_str().is_some_and(|p| !p.is_empty()));
}

async fn fields_are_stored_as_given_with_dates_in_utc(app: &TestApp) {
    let alice = token("alice");
    let task = app
        .create_task(
            &alice,
            json!({"title": "trip", "due_at": "2027-03-01T09:30:00+02:00", "priority": "high",
                   "tags": ["Travel", "family", "travel", "FAMILY", "ärger"]}),
        )
        .await;
    assert_eq!(task["due_at"], "2027-03-01T07:30:00Z");
    assert_eq!(task["priority"], "high");
    assert_eq!(
        task["tags"],
        json!(["Travel", "family", "ärger"]),
        "first spelling, order kept"
    );
    let fetched = app.get(&TestApp::url_of(&task), &alice).await.json();
    assert_eq!(fetched, task);
}

async fn bad_fields_are_422_and_store_nothing(app: &TestApp) {
    let alice = token("alice");
    let tags = |n: usize| json!((0..n).map(|i| format!("t{i}")).collect::<Vec<_>>());
    let cases = [
        (json!({"title": "x", "due_at": "2027-03-01"}), "due_at"),
        (
            json!({"title": "x", "due_at": "2027-03-01T09:30:00"}),
            "due_at",
        ),
        (
            json!({"title": "x", "due_at": "0000-01-01T00:00:00Z"}),
            "due_at",
        ),
        (
            json!({"title": "x", "due_at": "10000-01-01T00:00:00Z"}),
            "due_at",
        ),
        (json!({"title": "x", "due_at": 1_700_000_000}), "due_at"),
        (json!({"title": "x", "tags": tags(21)}), "tags"),
        (json!({"title": "x", "tags": ["a".repeat(41)]}), "tags[0]"),
        (json!({"title": "x", "tags": ["a\nb"]}), "tags[0]"),
        (json!({"title": "x", "tags": [" "]}), "tags[0]"),
        (json!({"title": "x", "tags": "work"}), "tags"),
        (json!({"title": "x", "tags": null}), "tags"),
        (json!({"title": "x", "priority": "urgent"}), "priority"),
        (json!({"title": "x", "priority": null}), "priority"),
        (json!({"title": "x", "position": "a0"}), "position"),
        (json!({"title": "x", "version": 3}), "version"),
        (
            json!({"title": "x", "completed_at": "2027-03-01T09:30:00Z"}),
            "completed_at",
        ),
    ];
    for (body, field) in cases {
        let error = app
            .post("/api/tasks", &alice, &body)
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(error["errors"][0]["field"], field, "{body}: {error}");
    }
    assert_eq!(app.get("/api/tasks", &alice).await.json(), json!([]));
    let twenty = app
        .create_task(&alice, json!({"title": "x", "tags": tags(20)}))
        .await;
    assert_eq!(twenty["tags"].as_array().map(Vec::len), Some(20));
    let forty = app
        .create_task(&alice, json!({"title": "x", "tags": ["a".repeat(40)]}))
        .await;
    assert_eq!(forty["tags"][0].as_str().map(str::len), Some(40));

    // The same rules on update, which then changes nothing.
    let url = TestApp::url_of(&twenty);
    for body in [
        json!({"version": 9}),
        json!({"position": "a0"}),
        json!({"completed_at": null}),
        json!({"priority": "urgent"}),
        json!({"due_at": "tomorrow"}),
        json!({"tags": tags(21)}),
    ] {
        app.put(&url, &alice, &body)
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
        app.patch(&url, &alice, &body)
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    }
    assert_eq!(app.get(&url, &alice).await.json(), twenty);
}

async fn completed_at_follows_status_on_every_path(app: &TestApp) {
    let alice = token("alice");
    let done = app
        .create_task(&alice, json!({"title": "d", "status": "completed"}))
        .await;
    assert!(done["completed_at"].is_string(), "{done}");
    assert_eq!(done["completed_at"], done["created_at"]);
    let url = TestApp::url_of(&done);

    let reopened = app
        .put(&url, &alice, &json!({"status": "in_progress"}))
        .await
        .json();
    assert_eq!(reopened["completed_at"], Value::Null);
    let finished = app
        .patch(&url, &alice, &json!({"status": "completed"}))
        .await
        .json();
    assert!(finished["completed_at"].is_string());
    assert_eq!(finished["completed_at"], finished["updated_at"]);
    // Completing it again, or changing something else, keeps the time it was completed.
    let again = app
        .patch(
            &url,
            &alice,
            &json!({"status": "completed", "title": "renamed"}),
        )
        .await
        .json();
    assert_eq!(again["completed_at"], finished["completed_at"]);
    let reopened = app
        .patch(&url, &alice, &json!({"status": "pending"}))
        .await
        .json();
    assert_eq!(reopened["completed_at"], Value::Null);
}

async fn version_grows_by_one_per_change_and_not_on_a_no_op(app: &TestApp) {
    let alice = token("alice");
    let task = app
        .create_task(
            &alice,
            json!({"title": "v", "tags": ["a"], "priority": "low"}),
        )
        .await;
    let url = TestApp::url_of(&task);
    let mut version = 1;
    for change in [
        json!({"title": "v2"}),
        json!({"description": "d"}),
        json!({"description": null}),
        json!({"due_at": "2030-01-01T00:00:00Z"}),
        json!({"due_at": null}),
        json!({"priority": "high"}),
        json!({"tags": ["b", "a"]}),
        json!({"tags": []}),
        json!({"status": "completed"}),
    ] {
        let changed = app.patch(&url, &alice, &change).await.json();
        version += 1;
        assert_eq!(changed["version"], version, "{change}");
    }
    let current = app.get(&url, &alice).await.json();
    for no_op in [
        json!({}),
        json!({"title": "v2"}),
        json!({"description": null}),
        json!({"tags": []}),
        json!({"status": "completed", "priority": "high"}),
    ] {
        let put = app.put(&url, &alice, &no_op).await;
        assert_eq!(put.status, StatusCode::OK);
        assert_eq!(put.json(), current, "PUT {no_op}");
        let patch = app.patch(&url, &alice, &no_op).await;
        assert_eq!(patch.status, StatusCode::OK);
        assert_eq!(patch.json(), current, "PATCH {no_op}");
    }
}

async fn a_merge_patch_clears_with_null_and_keeps_what_is_absent(app: &TestApp) {
    let alice = token("alice");
    let task = app
        .create_task(
            &alice,
            json!({"title": "p", "description": "keep?", "due_at": "2030-01-01T00:00:00Z",
                   "tags": ["x"]}),
        )
        .await;
    let url = TestApp::url_of(&task);
    let patched = app
        .patch(&url, &alice, &json!({"description": null, "due_at": null}))
        .await
        .json();
    assert_eq!(patched["description"], Value::Null);
    assert_eq!(patched["due_at"], Value::Null);
    assert_eq!(patched["title"], "p");
    assert_eq!(patched["tags"], json!(["x"]));
    for (body, status) in [
        (json!({"title": null}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"status": null}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!(["title", "x"]), StatusCode::UNPROCESSABLE_ENTITY),
        (json!("x"), StatusCode::UNPROCESSABLE_ENTITY),
        (json!(null), StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        app.patch(&url, &alice, &body).await.assert_error(status);
    }
    // Plain JSON is accepted too; another user's task is a 404.
    let renamed = app
        .request(axum::http::Method::PATCH, &url)
        .token(&alice)
        .json(&json!({"title": "q"}))
        .send()
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.text());
    app.patch(&url, &token("bob"), &json!({"title": "mine"}))
        .await
        .assert_error(StatusCode::NOT_FOUND);
    app.request(axum::http::Method::PATCH, &url)
        .token(&alice)
        .header("content-type", "text/plain")
        .body(r#"{"title":"t"}"#)
        .send()
        .await
        .assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

backend_tests!(
    a_new_task_has_every_field_with_its_default,
    fields_are_stored_as_given_with_dates_in_utc,
    bad_fields_are_422_and_store_nothing,
    completed_at_follows_status_on_every_path,
    version_grows_by_one_per_change_and_not_on_a_no_op,
    a_merge_patch_clears_with_null_and_keeps_what_is_absent,
);
