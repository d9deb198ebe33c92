//! Subtasks (docs/subtasks-and-repeating-tasks.md): a parent in the same list, four levels at
//! most, no cycles; trash, restore, completion and a move to another list act on the subtree,
//! and the feed shows every task they touch.

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::support::app::{TestApp, token};

async fn new_list(app: &TestApp, owner: &str, name: &str) -> i64 {
    let response = app
        .post("/api/lists", &token(owner), &json!({"name": name}))
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
    response.json()["id"].as_i64().expect("an id")
}

async fn child(app: &TestApp, user: &str, title: &str, parent: &Value) -> Value {
    app.create_task(
        &token(user),
        json!({"title": title, "parent_id": parent["id"]}),
    )
    .await
}

async fn ids(app: &TestApp, user: &str, query: &str) -> BTreeSet<i64> {
    let listed = app.get(&format!("/api/tasks?{query}"), &token(user)).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text());
    listed
        .json()
        .as_array()
        .expect("a list")
        .iter()
        .map(|task| task["id"].as_i64().expect("an id"))
        .collect()
}

fn set(tasks: &[&Value]) -> BTreeSet<i64> {
    tasks
        .iter()
        .map(|task| task["id"].as_i64().expect("an id"))
        .collect()
}

/// The feed from `since` on: the ids it upserts and the ids it deletes.
async fn feed_after(app: &TestApp, user: &str, since: &str) -> (BTreeSet<i64>, BTreeSet<i64>) {
    let page = app
        .get(
            &format!("/api/tasks/changes?since={since}&limit=100"),
            &token(user),
        )
        .await
        .json();
    let (mut upserts, mut deletes) = (BTreeSet::new(), BTreeSet::new());
    for change in page["changes"].as_array().expect("changes") {
        match change["op"].as_str() {
            Some("upsert") => upserts.insert(change["task"]["id"].as_i64().expect("id")),
            Some("delete") => deletes.insert(change["id"].as_i64().expect("id")),
            other => panic!("{other:?}"),
        };
    }
    (upserts, deletes)
}

async fn cursor(app: &TestApp, user: &str) -> String {
    let mut since = "0".to_owned();
    loop {
        let page = app
            .get(
                &format!("/api/tasks/changes?since={since}&limit=100"),
                &token(user),
            )
            .await
            .json();
        let next = page["next_cursor"].as_str().expect("a cursor").to_owned();
        if page["changes"].as_array().is_none_or(Vec::is_empty) {
            return next;
        }
        since = next;
    }
}

async fn parents_stay_in_their_list_four_levels_deep_without_cycles(app: &TestApp) {
    let alice = token("alice");
    let l1 = app.create_task(&alice, json!({"title": "level 1"})).await;
    assert_eq!(l1["parent_id"], Value::Null);
    let l2 = child(app, "alice", "level 2", &l1).await;
    let l3 = child(app, "alice", "level 3", &l2).await;
    let l4 = child(app, "alice", "level 4", &l3).await;
    assert_eq!(l4["parent_id"], l3["id"]);
    assert_eq!(
        l4["list_id"], l1["list_id"],
        "a subtask goes into its parent's list"
    );
    let fifth = app
        .post(
            "/api/tasks",
            &alice,
            &json!({"title": "level 5", "parent_id": l4["id"]}),
        )
        .await;
    let body = fifth.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("4 levels"),
        "{body}"
    );

    // A parent in another list, or someone else's, is a 404 as any foreign id.
    let other = new_list(app, "alice", "Other").await;
    app.post(
        "/api/tasks",
        &alice,
        &json!({"title": "x", "parent_id": l1["id"], "list_id": other}),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND);
    let bobs = app
        .create_task(&token("bob"), json!({"title": "bob's"}))
        .await;
    app.post(
        "/api/tasks",
        &alice,
        &json!({"title": "x", "parent_id": bobs["id"]}),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND);
    app.patch(
        &TestApp::url_of(&l4),
        &alice,
        &json!({"parent_id": bobs["id"]}),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND);

    // Cycles and a fifth level through a PATCH; nothing changes.
    let loose = app.create_task(&alice, json!({"title": "loose"})).await;
    let loose_child = child(app, "alice", "loose child", &loose).await;
    for (task, parent, why) in [
        (&l1, &l1, "itself"),
        (&l1, &l3, "under itself"),
        (&l2, &l4, "under itself"),
        (&loose, &l3, "4 levels"),
        (&loose_child, &l4, "4 levels"),
    ] {
        let refused = app
            .patch(
                &TestApp::url_of(task),
                &alice,
                &json!({"parent_id": parent["id"], "title": "changed"}),
            )
            .await;
        let body = refused.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(why), "{why}: {body}");
        let now = app.get(&TestApp::url_of(task), &alice).await.json();
        assert_eq!(now["version"], task["version"], "unchanged: {now}");
    }
    // A legal move: loose (with its child) under level 2 makes four levels.
    let moved = app
        .patch(
            &TestApp::url_of(&loose),
            &alice,
            &json!({"parent_id": l2["id"]}),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.text());
    assert_eq!(moved.json()["parent_id"], l2["id"]);
    // And back to the top.
    let top = app
        .patch(
            &TestApp::url_of(&loose),
            &alice,
            &json!({"parent_id": null}),
        )
        .await;
    assert_eq!(top.json()["parent_id"], Value::Null);

    // The filters.
    assert_eq!(
        ids(app, "alice", &format!("parent_id={}", l1["id"])).await,
        set(&[&l2])
    );
    assert_eq!(
        ids(app, "alice", "parent_id=none").await,
        set(&[&l1, &loose])
    );
    app.get("/api/tasks?parent_id=zero", &alice)
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
}

async fn trash_restore_and_completion_act_on_the_subtree(app: &TestApp) {
    let alice = token("alice");
    let parent = app.create_task(&alice, json!({"title": "parent"})).await;
    let first = child(app, "alice", "first", &parent).await;
    let second = child(app, "alice", "second", &parent).await;
    let grandchild = child(app, "alice", "grandchild", &second).await;
    let bystander = app.create_task(&alice, json!({"title": "bystander"})).await;
    let everyone = set(&[&parent, &first, &second, &grandchild]);

    // Trash: the whole subtree, and the feed says so of each.
    let since = cursor(app, "alice").await;
    let deleted = app.delete(&TestApp::url_of(&parent), &alice).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(ids(app, "alice", "deleted=true").await, everyone);
    assert_eq!(ids(app, "alice", "").await, set(&[&bystander]));
    assert_eq!(feed_after(app, "alice", &since).await.1, everyone);

    // Restore of the parent brings back what went with it.
    let since = cursor(app, "alice").await;
    let restored = app
        .request(
            Method::POST,
            &format!("{}/restore", TestApp::url_of(&parent)),
        )
        .token(&alice)
        .send()
        .await;
    assert_eq!(restored.status, StatusCode::OK, "{}", restored.text());
    assert_eq!(ids(app, "alice", "deleted=true").await, BTreeSet::new());
    assert_eq!(feed_after(app, "alice", &since).await.0, everyone);

    // Restore of a grandchild brings back its ancestors, not its parent's siblings.
    app.delete(&TestApp::url_of(&parent), &alice).await;
    let restored = app
        .request(
            Method::POST,
            &format!("{}/restore", TestApp::url_of(&grandchild)),
        )
        .token(&alice)
        .send()
        .await;
    assert_eq!(restored.status, StatusCode::OK, "{}", restored.text());
    assert_eq!(ids(app, "alice", "deleted=true").await, set(&[&first]));
    assert_eq!(
        ids(app, "alice", "").await,
        set(&[&parent, &second, &grandchild, &bystander])
    );
    app.request(
        Method::POST,
        &format!("{}/restore", TestApp::url_of(&first)),
    )
    .token(&alice)
    .send()
    .await;

    // Completion completes the open subtree, in one change each.
    let since = cursor(app, "alice").await;
    let done = app
        .patch(
            &TestApp::url_of(&parent),
            &alice,
            &json!({"status": "completed"}),
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    assert_eq!(ids(app, "alice", "status=completed").await, everyone);
    assert_eq!(
        ids(app, "alice", "status=pending").await,
        set(&[&bystander])
    );
    assert_eq!(feed_after(app, "alice", &since).await.0, everyone);
}

async fn a_parent_moved_to_another_list_takes_its_subtree(app: &TestApp) {
    let alice = token("alice");
    let home = new_list(app, "alice", "Home").await;
    let work = new_list(app, "alice", "Work").await;
    let parent = app
        .create_task(&alice, json!({"title": "parent", "list_id": home}))
        .await;
    let kid = child(app, "alice", "kid", &parent).await;
    let grandkid = child(app, "alice", "grandkid", &kid).await;
    let stays = child(app, "alice", "stays", &parent).await;
    app.create_task(&alice, json!({"title": "already there", "list_id": work}))
        .await;

    // One subtask alone to another list: a top-level task there.
    let alone = app
        .patch(&TestApp::url_of(&stays), &alice, &json!({"list_id": work}))
        .await
        .json();
    assert_eq!(alone["list_id"], work);
    assert_eq!(alone["parent_id"], Value::Null);

    let moved = app
        .patch(&TestApp::url_of(&parent), &alice, &json!({"list_id": work}))
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.text());
    for (task, parent_id) in [(&kid, &parent["id"]), (&grandkid, &kid["id"])] {
        let now = app.get(&TestApp::url_of(task), &alice).await.json();
        assert_eq!(now["list_id"], work, "{now}");
        assert_eq!(&now["parent_id"], parent_id, "{now}");
        assert_eq!(now["uid"], task["uid"], "a move keeps the uid");
    }
    assert_eq!(
        ids(app, "alice", &format!("list_id={home}")).await,
        BTreeSet::new()
    );
    // Their keys are distinct, in the subtree's order, after what was there.
    let listed = app
        .get(&format!("/api/tasks?list_id={work}&sort=position"), &alice)
        .await
        .json();
    let titles: Vec<&str> = listed
        .as_array()
        .expect("a list")
        .iter()
        .map(|task| task["title"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        titles,
        ["already there", "stays", "parent", "kid", "grandkid"]
    );
}

/// Two clients at once put A under B and B under A: one wins, the other is told it would make
/// a cycle, and the two never end up under each other.
async fn concurrent_reparents_never_make_a_cycle(app: &TestApp) {
    let alice = token("alice");
    for round in 0..50 {
        let a = app
            .create_task(&alice, json!({"title": format!("a{round}")}))
            .await;
        let b = app
            .create_task(&alice, json!({"title": format!("b{round}")}))
            .await;
        let under = |task: &Value, parent: &Value| {
            app.request(Method::PATCH, &TestApp::url_of(task))
                .token(&alice)
                .json(&json!({"parent_id": parent["id"]}))
                .send()
        };
        let (first, second) = tokio::join!(under(&a, &b), under(&b, &a));
        let mut statuses = [first.status, second.status];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::OK, StatusCode::UNPROCESSABLE_ENTITY],
            "round {round}: {} / {}",
            first.text(),
            second.text()
        );
        let a = app.get(&TestApp::url_of(&a), &alice).await.json();
        let b = app.get(&TestApp::url_of(&b), &alice).await.json();
        assert!(
            a["parent_id"].is_null() || b["parent_id"].is_null(),
            "round {round}: a cycle: {a} / {b}"
        );
    }
}

backend_tests!(
    parents_stay_in_their_list_four_levels_deep_without_cycles,
    trash_restore_and_completion_act_on_the_subtree,
    a_parent_moved_to_another_list_takes_its_subtree,
    concurrent_reparents_never_make_a_cycle,
);
