//! The trash (docs/api.md, "The trash"): a deleted task is a 404 and absent from every list
//! but `deleted=true`, and can be restored until it is purged.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use chrono::Utc;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::support::app::{TestApp, token};

async fn trash(app: &TestApp, user: &str) -> Value {
    app.get("/api/tasks?deleted=true", &token(user))
        .await
        .json()
}

async fn restore(app: &TestApp, url: &str, user: &str) -> crate::support::app::TestResponse {
    app.request(Method::POST, &format!("{url}/restore"))
        .token(&token(user))
        .send()
        .await
}

async fn a_deleted_task_is_missing_until_restored(app: &TestApp) {
    let alice = token("alice");
    let task = app
        .create_task(&alice, json!({"title": "oops", "tags": ["work"]}))
        .await;
    let anchor = app.create_task(&alice, json!({"title": "anchor"})).await;
    let url = TestApp::url_of(&task);
    assert_eq!(
        app.delete(&url, &alice).await.status,
        StatusCode::NO_CONTENT
    );

    app.get(&url, &alice)
        .await
        .assert_error(StatusCode::NOT_FOUND);
    app.put(&url, &alice, &json!({"title": "x"}))
        .await
        .assert_error(StatusCode::NOT_FOUND);
    app.patch(&url, &alice, &json!({"title": "x"}))
        .await
        .assert_error(StatusCode::NOT_FOUND);
    app.delete(&url, &alice)
        .await
        .assert_error(StatusCode::NOT_FOUND);
    app.post(&format!("{url}/move"), &alice, &json!({"after": null}))
        .await
        .assert_error(StatusCode::NOT_FOUND);
    // Nor can another task be placed next to it.
    app.post(
        &format!("{}/move", TestApp::url_of(&anchor)),
        &alice,
        &json!({"after": task["id"]}),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND);
    for (filter, total) in [
        ("", "1"),
        ("?tag=work", "0"),
        ("?q=oops", "0"),
        ("?status=pending", "1"),
        ("?sort=position", "1"),
    ] {
        let list = app.get(&format!("/api/tasks{filter}"), &alice).await;
        let body = list.json();
        let ids: Vec<Value> = body
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| t["id"].clone())
            .collect();
        assert!(!ids.contains(&task["id"]), "{filter}");
        assert_eq!(list.header("x-total-count"), Some(total), "{filter}");
    }

    let trashed = trash(app, "alice").await;
    assert_eq!(trashed.as_array().map(Vec::len), Some(1));
    assert_eq!(trashed[0]["id"], task["id"]);
    assert!(trashed[0]["deleted_at"].is_string());
    let response = app.get("/api/tasks?deleted=true", &alice).await;
    assert_eq!(response.header("x-total-count"), Some("1"));

    let restored = restore(app, &url, "alice").await;
    assert_eq!(restored.status, StatusCode::OK);
    let restored = restored.json();
    assert_eq!(restored["version"], 2, "version +1");
    assert_eq!(restored["deleted_at"], Value::Null);
    assert_eq!(restored["position"], task["position"], "back where it was");
    assert_eq!(app.get(&url, &alice).await.json(), restored);
    assert_eq!(trash(app, "alice").await, json!([]));
    // Restoring a task that is not in the trash changes nothing.
    let again = restore(app, &url, "alice").await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.json(), restored);
}

async fn another_users_trash_is_out_of_reach(app: &TestApp) {
    let alice = token("alice");
    let task = app.create_task(&alice, json!({"title": "private"})).await;
    let url = TestApp::url_of(&task);
    app.delete(&url, &alice).await;
    restore(app, &url, "bob")
        .await
        .assert_error(StatusCode::NOT_FOUND);
    assert_eq!(trash(app, "bob").await, json!([]));
    restore(app, "/api/tasks/999999", "alice")
        .await
        .assert_error(StatusCode::NOT_FOUND);
    assert_eq!(trash(app, "alice").await.as_array().map(Vec::len), Some(1));
}

async fn the_trash_is_purged_after_its_retention(app: &TestApp) {
    let alice = token("alice");
    let old = app.create_task(&alice, json!({"title": "long gone"})).await;
    let recent = app
        .create_task(&alice, json!({"title": "just deleted"}))
        .await;
    let live = app.create_task(&alice, json!({"title": "kept"})).await;
    app.delete(&TestApp::url_of(&old), &alice).await;
    app.delete(&TestApp::url_of(&recent), &alice).await;
    let since_before = app.get("/api/tasks/changes", &alice).await.json()["next_cursor"].clone();
    app.execute(
        &format!(
            "update tasks set deleted_at = deleted_at - interval '31 days' where id = {}",
            old["id"]
        ),
        &format!(
            "update tasks set deleted_at = deleted_at - 2678400000000 where id = {}",
            old["id"]
        ),
    )
    .await;
    let retention = Duration::from_secs(30 * 24 * 60 * 60);
    todo_backend::maintenance::purge_once(app.store.as_ref(), retention).await;

    let trashed = trash(app, "alice").await;
    assert_eq!(trashed.as_array().map(Vec::len), Some(1));
    assert_eq!(trashed[0]["id"], recent["id"]);
    restore(app, &TestApp::url_of(&old), "alice")
        .await
        .assert_error(StatusCode::NOT_FOUND);
    assert_eq!(
        app.get(&TestApp::url_of(&live), &alice).await.status,
        StatusCode::OK
    );
    // A second purge, as another instance would run it, finds nothing more to do.
    let purged = app
        .store
        .purge(
            Utc::now() - chrono::Duration::days(30),
            Utc::now() - chrono::Duration::days(1),
        )
        .await
        .expect("purges");
    assert_eq!(purged.tasks, 0);
    // A client that saw the deletion before the purge still syncs on.
    let page = app
        .get(
            &format!(
                "/api/tasks/changes?since={}",
                since_before.as_str().unwrap_or("0")
            ),
            &alice,
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
}

backend_tests!(
    a_deleted_task_is_missing_until_restored,
    another_users_trash_is_out_of_reach,
    the_trash_is_purged_after_its_retention,
);
