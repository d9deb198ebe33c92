//! Lists (docs/lists-and-sharing.md): an Inbox per user, the caller's own lists and order,
//! tasks in lists, the trash, and the list entries of the change feed.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::support::app::{TestApp, token};

async fn lists(app: &TestApp, user: &str) -> Value {
    let response = app.get("/api/lists", &token(user)).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    response.json()
}

async fn create_list(app: &TestApp, user: &str, body: Value) -> Value {
    let response = app.post("/api/lists", &token(user), &body).await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
    let list = response.json();
    assert_eq!(
        response.header("location"),
        Some(format!("/api/lists/{}", list["id"]).as_str())
    );
    list
}

async fn every_task_lands_in_its_creators_inbox_by_default(app: &TestApp) {
    let alice = token("alice");
    let task = app.create_task(&alice, json!({"title": "t"})).await;
    let mine = lists(app, "alice").await;
    assert_eq!(mine.as_array().map(Vec::len), Some(1), "{mine}");
    let inbox = &mine[0];
    assert_eq!(inbox["is_inbox"], true);
    assert_eq!(inbox["name"], "Inbox");
    assert_eq!(inbox["role"], "owner");
    assert_eq!(inbox["owner_id"], "alice");
    assert_eq!(inbox["member_count"], 1);
    assert_eq!(task["list_id"], inbox["id"]);
    assert_eq!(task["assignee_id"], Value::Null);
    // One Inbox, however many creates.
    app.create_task(&alice, json!({"title": "u"})).await;
    assert_eq!(lists(app, "alice").await.as_array().map(Vec::len), Some(1));
    // It can be renamed, not deleted.
    let url = format!("/api/lists/{}", inbox["id"]);
    let renamed = app.patch(&url, &alice, &json!({"name": "Mine"})).await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.text());
    assert_eq!(renamed.json()["name"], "Mine");
    app.delete(&url, &alice)
        .await
        .assert_error(StatusCode::CONFLICT);
}

async fn tasks_live_in_the_list_they_are_created_in(app: &TestApp) {
    let alice = token("alice");
    let work = create_list(app, "alice", json!({"name": "Work", "color": "#3b82f6"})).await;
    assert_eq!(work["color"], "#3b82f6");
    assert_eq!(work["is_inbox"], false);
    let task = app
        .create_task(&alice, json!({"title": "report", "list_id": work["id"]}))
        .await;
    assert_eq!(task["list_id"], work["id"]);
    let home = app.create_task(&alice, json!({"title": "dishes"})).await;
    let in_work = app
        .get(&format!("/api/tasks?list_id={}", work["id"]), &alice)
        .await;
    assert_eq!(in_work.header("x-total-count"), Some("1"));
    assert_eq!(in_work.json()[0]["id"], task["id"]);
    let all = app.get("/api/tasks", &alice).await;
    assert_eq!(all.header("x-total-count"), Some("2"));
    // Moved to another list by PATCH, at its end.
    let moved = app
        .patch(
            &TestApp::url_of(&home),
            &alice,
            &json!({"list_id": work["id"], "assignee_id": "alice"}),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.text());
    assert_eq!(moved.json()["list_id"], work["id"]);
    assert_eq!(moved.json()["assignee_id"], "alice");
    assert!(moved.json()["position"].as_str() > task["position"].as_str());
    // Moved into another list next to a task of it, by the move route.
    let back = app.create_task(&alice, json!({"title": "back home"})).await;
    let moved_back = app
        .post(
            &format!("{}/move", TestApp::url_of(&back)),
            &alice,
            &json!({"before": task["id"], "list_id": work["id"]}),
        )
        .await;
    assert_eq!(moved_back.status, StatusCode::OK, "{}", moved_back.text());
    assert_eq!(moved_back.json()["list_id"], work["id"]);
    assert!(moved_back.json()["position"].as_str() < task["position"].as_str());
    // A neighbour of another list than the one named: refused, and nothing moved.
    let stays = app.create_task(&alice, json!({"title": "stays"})).await;
    app.post(
        &format!("{}/move", TestApp::url_of(&stays)),
        &alice,
        &json!({"after": stays["id"], "list_id": work["id"]}),
    )
    .await
    .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.get(&TestApp::url_of(&stays), &alice).await.json(),
        stays
    );
    let mine = app.get("/api/tasks?assignee=me", &alice).await.json();
    assert_eq!(mine.as_array().map(Vec::len), Some(1), "{mine}");
}

async fn other_peoples_lists_are_missing_lists(app: &TestApp) {
    let alice = token("alice");
    let bob = token("bob");
    let work = create_list(app, "alice", json!({"name": "Work"})).await;
    let url = format!("/api/lists/{}", work["id"]);
    app.get(&url, &bob)
        .await
        .assert_error(StatusCode::NOT_FOUND);
    app.patch(&url, &bob, &json!({"name": "mine now"}))
        .await
        .assert_error(StatusCode::NOT_FOUND);
    app.delete(&url, &bob)
        .await
        .assert_error(StatusCode::NOT_FOUND);
    // A list id in a body is checked as one in a path.
    app.post(
        "/api/tasks",
        &bob,
        &json!({"title": "x", "list_id": work["id"]}),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND);
    let bobs = app.create_task(&bob, json!({"title": "b"})).await;
    app.patch(
        &TestApp::url_of(&bobs),
        &bob,
        &json!({"list_id": work["id"]}),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND);
    app.get(&format!("/api/tasks?list_id={}", work["id"]), &bob)
        .await
        .assert_error(StatusCode::NOT_FOUND);
    // A neighbour in another user's list is a missing task.
    let alices = app
        .create_task(&alice, json!({"title": "a", "list_id": work["id"]}))
        .await;
    app.post(
        &format!("{}/move", TestApp::url_of(&bobs)),
        &bob,
        &json!({"after": alices["id"]}),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND);
    // Nobody but a member can be assigned.
    app.post(
        "/api/tasks",
        &alice,
        &json!({"title": "x", "list_id": work["id"], "assignee_id": "bob"}),
    )
    .await
    .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    // Ids are written one way only.
    for bad in ["+1", "01", "1.0"] {
        let raw = format!(r#"{{"title": "x", "list_id": {bad}}}"#);
        let response = app
            .request(axum::http::Method::POST, "/api/tasks")
            .token(&alice)
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await;
        assert!(
            response.status.is_client_error(),
            "{bad}: {}",
            response.status
        );
    }
    for bad in ["+1", "01", "1.0", "0"] {
        app.get(&format!("/api/lists/{bad}"), &alice)
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    }
    app.post("/api/lists", &alice, &json!({"name": "x".repeat(101)}))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
}

async fn a_deleted_list_takes_its_tasks_to_the_trash_and_back(app: &TestApp) {
    let alice = token("alice");
    let work = create_list(app, "alice", json!({"name": "Work"})).await;
    let url = format!("/api/lists/{}", work["id"]);
    let task = app
        .create_task(&alice, json!({"title": "report", "list_id": work["id"]}))
        .await;
    let start = app
        .get("/api/tasks/changes?include=lists", &alice)
        .await
        .json();
    let cursor = start["next_cursor"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        app.delete(&url, &alice).await.status,
        StatusCode::NO_CONTENT
    );
    app.get(&url, &alice)
        .await
        .assert_error(StatusCode::NOT_FOUND);
    app.get(&TestApp::url_of(&task), &alice)
        .await
        .assert_error(StatusCode::NOT_FOUND);
    let feed = app
        .get(
            &format!("/api/tasks/changes?include=lists&since={cursor}"),
            &alice,
        )
        .await
        .json();
    let entries = feed["changes"].as_array().cloned().unwrap_or_default();
    assert!(
        entries
            .iter()
            .any(|c| c["op"] == "delete" && c["list_id"] == work["id"]),
        "{feed}"
    );
    assert!(
        entries
            .iter()
            .any(|c| c["op"] == "delete" && c["id"] == task["id"]),
        "{feed}"
    );
    // The owner finds it in the trash of lists; nobody else does.
    let trashed = app.get("/api/lists?deleted=true", &alice).await.json();
    assert_eq!(trashed[0]["id"], work["id"], "{trashed}");
    assert!(trashed[0]["deleted_at"].is_string());
    app.get("/api/lists?deleted=maybe", &alice)
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    let restored = app
        .post(&format!("{url}/restore"), &alice, &json!({}))
        .await;
    assert_eq!(restored.status, StatusCode::OK, "{}", restored.text());
    let back = app.get(&TestApp::url_of(&task), &alice).await;
    assert_eq!(back.status, StatusCode::OK);
    // Without include=lists, a Part-two client sees only its tasks.
    let tasks_only = app.get("/api/tasks/changes", &alice).await.json();
    assert!(
        tasks_only["changes"]
            .as_array()
            .is_some_and(|changes| changes
                .iter()
                .all(|c| c.get("list").is_none() && c.get("list_id").is_none())),
        "{tasks_only}"
    );
}

async fn the_inbox_is_there_when_a_client_first_lists_its_lists(app: &TestApp) {
    let first = lists(app, "newcomer").await;
    assert_eq!(first.as_array().map(Vec::len), Some(1), "{first}");
    assert_eq!(first[0]["is_inbox"], true);
    let task = app
        .create_task(&token("newcomer"), json!({"title": "t"}))
        .await;
    assert_eq!(task["list_id"], first[0]["id"], "the same Inbox");
    assert_eq!(lists(app, "newcomer").await, lists(app, "newcomer").await);
}

async fn the_lists_carry_an_etag_that_changes_with_them(app: &TestApp) {
    let alice = token("alice");
    let first = app.get("/api/lists", &alice).await;
    let etag = first.header("etag").expect("an etag").to_owned();
    assert!(etag.starts_with("W/"), "{etag}");
    let same = app
        .request(axum::http::Method::GET, "/api/lists")
        .token(&alice)
        .header("if-none-match", &etag)
        .send()
        .await;
    assert_eq!(same.status, StatusCode::NOT_MODIFIED);
    create_list(app, "alice", json!({"name": "New"})).await;
    let changed = app
        .request(axum::http::Method::GET, "/api/lists")
        .token(&alice)
        .header("if-none-match", &etag)
        .send()
        .await;
    assert_eq!(changed.status, StatusCode::OK);
    assert_ne!(changed.header("etag"), Some(etag.as_str()));
    // Another user's lists never share it.
    let bobs = app.get("/api/lists", &token("bob")).await;
    assert_ne!(bobs.header("etag"), Some(etag.as_str()));
}

/// A create retried after a lost response makes one list: many clients sending the same
/// request with one key at once get the same list, or are told it is in flight.
async fn a_list_created_twice_with_one_key_is_one_list(app: &TestApp) {
    let alice = token("alice");
    let send = |name: &'static str| {
        let alice = alice.clone();
        async move {
            app.request(axum::http::Method::POST, "/api/lists")
                .token(&alice)
                .header("idempotency-key", "make-groceries")
                .header("content-type", "application/json")
                .body(json!({"name": name}).to_string())
                .send()
                .await
        }
    };
    let answers = futures_util::future::join_all((0..8).map(|_| send("Groceries"))).await;
    assert!(
        answers
            .iter()
            .all(|answer| matches!(answer.status.as_u16(), 201 | 409)),
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    let created: Vec<_> = answers
        .iter()
        .filter(|answer| answer.status == StatusCode::CREATED)
        .collect();
    let first = created[0].json();
    assert!(created.iter().all(|answer| answer.json() == first));
    let again = send("Groceries").await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json(), first);
    assert_eq!(
        again.header("location"),
        Some(format!("/api/lists/{}", first["id"]).as_str())
    );
    let groceries = lists(app, "alice")
        .await
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|list| list["name"] == "Groceries")
        .count();
    assert_eq!(groceries, 1, "one list");
    // The key with another request.
    send("Other")
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    // A key that made a task does not make a list.
    let keyed = |uri: &'static str, body: Value| {
        app.request(axum::http::Method::POST, uri)
            .token(&alice)
            .header("idempotency-key", "made-a-task")
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };
    keyed("/api/tasks", json!({"title": "t"})).await;
    keyed("/api/lists", json!({"name": "t"}))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
}

async fn a_trashed_lists_tasks_are_in_nobodys_trash(app: &TestApp) {
    let alice = token("alice");
    let work = create_list(app, "alice", json!({"name": "Work"})).await;
    app.create_task(&alice, json!({"title": "report", "list_id": work["id"]}))
        .await;
    app.delete(&format!("/api/lists/{}", work["id"]), &alice)
        .await;
    let trash = app.get("/api/tasks?deleted=true", &alice).await;
    assert_eq!(trash.json(), json!([]), "they come back with the list");
    assert_eq!(trash.header("x-total-count"), Some("0"));
}

async fn the_callers_order_of_lists_is_their_own(app: &TestApp) {
    let a = create_list(app, "alice", json!({"name": "A"})).await;
    let b = create_list(app, "alice", json!({"name": "B"})).await;
    let c = create_list(app, "alice", json!({"name": "C"})).await;
    let moved = app
        .post(
            &format!("/api/lists/{}/move", c["id"]),
            &token("alice"),
            &json!({"after": null}),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.text());
    let names: Vec<Value> = lists(app, "alice")
        .await
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|list| list["name"].clone())
        .collect();
    // The Inbox, made when alice first listed her lists, after those she had made.
    assert_eq!(names, [json!("C"), json!("A"), json!("B"), json!("Inbox")]);
    let _ = (a, b);
}

/// Tasks moved across between two lists at once, both ways, with their parents and children:
/// each write locks rows of both lists, in the opposite order of the one crossing it. Every
/// move lands (the database may abort one to break a deadlock; it is tried again).
async fn moves_crossing_between_two_lists_all_land(app: &TestApp) {
    let alice = token("alice");
    let a = create_list(app, "alice", json!({"name": "A"})).await["id"].clone();
    let b = create_list(app, "alice", json!({"name": "B"})).await["id"].clone();
    let mut tasks = Vec::new();
    for i in 0..24 {
        let (from, to) = match i % 2 {
            0 => (&a, &b),
            _ => (&b, &a),
        };
        let parent = app
            .create_task(&alice, json!({"title": format!("p{i}"), "list_id": from}))
            .await;
        app.create_task(
            &alice,
            json!({"title": format!("c{i}"), "parent_id": parent["id"]}),
        )
        .await;
        tasks.push((parent, to.clone()));
    }
    let moves = tasks.iter().map(|(task, to)| {
        let alice = &alice;
        async move {
            let uri = TestApp::url_of(task);
            app.patch(&uri, alice, &json!({"list_id": to})).await
        }
    });
    for response in futures_util::future::join_all(moves).await {
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    }
    for (task, to) in &tasks {
        let moved = app.get(&TestApp::url_of(task), &alice).await.json();
        assert_eq!(&moved["list_id"], to);
    }
}

backend_tests!(
    every_task_lands_in_its_creators_inbox_by_default,
    tasks_live_in_the_list_they_are_created_in,
    other_peoples_lists_are_missing_lists,
    a_deleted_list_takes_its_tasks_to_the_trash_and_back,
    the_callers_order_of_lists_is_their_own,
    the_inbox_is_there_when_a_client_first_lists_its_lists,
    a_trashed_lists_tasks_are_in_nobodys_trash,
    the_lists_carry_an_etag_that_changes_with_them,
    a_list_created_twice_with_one_key_is_one_list,
    moves_crossing_between_two_lists_all_land,
);
