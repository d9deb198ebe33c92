//! The manual order: new tasks go last, `move` puts one task anywhere and rewrites no other.

use axum::http::StatusCode;
use serde_json::{Value, json};

use todo_backend::domain::{
    Change, ChangeCursor, Expect, Once, Placement, Position, TaskId, UserId,
};

use crate::backend_tests;
use crate::support::app::{TestApp, token};

async fn ids_in_position_order(app: &TestApp, token: &str) -> Vec<i64> {
    let listed = app
        .get("/api/tasks?sort=position&limit=100", token)
        .await
        .json();
    listed
        .as_array()
        .expect("a list")
        .iter()
        .map(|task| task["id"].as_i64().expect("id"))
        .collect()
}

async fn move_to(app: &TestApp, token: &str, id: i64, body: Value) -> Value {
    let response = app
        .post(&format!("/api/tasks/{id}/move"), token, &body)
        .await;
    assert_eq!(
        response.status,
        StatusCode::OK,
        "{body}: {}",
        response.text()
    );
    response.json()
}

async fn new_tasks_go_last_and_moves_reorder_one_task(app: &TestApp) {
    let alice = token("alice");
    let mut ids = Vec::new();
    for n in 0..5 {
        let task = app
            .create_task(&alice, json!({"title": format!("t{n}")}))
            .await;
        ids.push(task["id"].as_i64().expect("id"));
    }
    assert_eq!(ids_in_position_order(app, &alice).await, ids);
    let [a, b, c, d, e] = ids[..] else {
        panic!("five tasks")
    };
    let before_move = app.get("/api/tasks?sort=position", &alice).await.json();

    let moved = move_to(app, &alice, e, json!({"after": a})).await;
    assert_eq!(moved["version"], 2);
    assert_eq!(ids_in_position_order(app, &alice).await, [a, e, b, c, d]);
    move_to(app, &alice, a, json!({"before": d})).await;
    assert_eq!(ids_in_position_order(app, &alice).await, [e, b, c, a, d]);
    move_to(app, &alice, d, json!({"after": null})).await;
    assert_eq!(ids_in_position_order(app, &alice).await, [d, e, b, c, a]);
    move_to(app, &alice, d, json!({"before": null})).await;
    assert_eq!(ids_in_position_order(app, &alice).await, [e, b, c, a, d]);

    // Only the moved tasks changed.
    let after_moves = app.get("/api/tasks?sort=position", &alice).await.json();
    let version_of = |list: &Value, id: i64| {
        list.as_array()
            .and_then(|tasks| tasks.iter().find(|task| task["id"] == id))
            .map(|task| (task["version"].clone(), task["position"].clone()))
    };
    for untouched in [b, c] {
        assert_eq!(
            version_of(&before_move, untouched),
            version_of(&after_moves, untouched)
        );
    }
}

async fn bad_moves_are_refused_and_change_nothing(app: &TestApp) {
    let alice = token("alice");
    let bob = token("bob");
    let one = app.create_task(&alice, json!({"title": "one"})).await;
    let two = app.create_task(&alice, json!({"title": "two"})).await;
    let theirs = app.create_task(&bob, json!({"title": "bob's"})).await;
    let (one, two, theirs) = (one["id"].clone(), two["id"].clone(), theirs["id"].clone());
    let url = format!("/api/tasks/{one}/move");
    let order = ids_in_position_order(app, &alice).await;
    for (body, status) in [
        (
            json!({"after": two, "before": two}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"after": 0}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"after": "2"}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({"after": two, "x": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({"after": theirs}), StatusCode::NOT_FOUND),
        (json!({"before": 999_999}), StatusCode::NOT_FOUND),
    ] {
        app.post(&url, &alice, &body).await.assert_error(status);
    }
    app.post(
        &format!("/api/tasks/{theirs}/move"),
        &alice,
        &json!({"after": one}),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND);
    assert_eq!(ids_in_position_order(app, &alice).await, order);
    // Next to itself is where it already is: nothing changes.
    let itself = app.post(&url, &alice, &json!({"after": one})).await;
    assert_eq!(itself.status, StatusCode::OK);
    assert_eq!(itself.json()["version"], 1);
    assert_eq!(
        app.get(&format!("/api/tasks/{one}"), &alice).await.json()["version"],
        1
    );
}

async fn concurrent_creates_and_moves_keep_one_total_order(app: &TestApp) {
    let alice = token("alice");
    let mut handles = Vec::new();
    for n in 0..20 {
        let router = app.router.clone();
        let alice = alice.clone();
        handles.push(tokio::spawn(async move {
            use tower::ServiceExt;
            let request = axum::http::Request::post("/api/tasks")
                .header("authorization", format!("Bearer {alice}"))
                .header("content-type", "application/json")
                .body(axum::body::Body::from(
                    json!({"title": format!("c{n}")}).to_string(),
                ))
                .expect("request");
            router.oneshot(request).await.expect("infallible").status()
        }));
    }
    for handle in handles {
        assert_eq!(handle.await.expect("task"), StatusCode::CREATED);
    }
    let listed = app
        .get("/api/tasks?sort=position&limit=100", &alice)
        .await
        .json();
    let positions: Vec<&str> = listed
        .as_array()
        .expect("list")
        .iter()
        .map(|task| task["position"].as_str().expect("position"))
        .collect();
    let mut unique = positions.clone();
    unique.dedup();
    assert_eq!(
        unique.len(),
        20,
        "every task has a position of its own: {positions:?}"
    );
}

/// Moving two tasks alternately right after the same task halves one gap each time, and would
/// grow a key by a character every few moves: the keys stay bounded (the owner's order is
/// re-keyed when a key would pass the limit), the order stays what a plain list predicts, and
/// every re-keyed task is in the change feed.
async fn keys_stay_bounded_under_alternating_moves_into_one_gap(app: &TestApp) {
    const MOVES: usize = 20_000;
    let alice = token("alice");
    let owner = UserId::parse("alice").expect("user");
    let mut ids = Vec::new();
    for title in ["L", "A", "B", "C", "trashed", "D"] {
        ids.push(
            app.create_task(&alice, json!({"title": title})).await["id"]
                .as_i64()
                .expect("id"),
        );
    }
    let id = |n: i64| TaskId::try_from(n).expect("positive");
    let [l, a, b, c, trashed, d] = ids[..] else {
        unreachable!()
    };
    let response = app.delete(&format!("/api/tasks/{trashed}"), &alice).await;
    assert_eq!(response.status, StatusCode::NO_CONTENT);
    // The reference: the live tasks, in order.
    let mut reference = vec![l, a, b, c, d];
    let mut longest = 0;
    for n in 0..MOVES {
        let moving = if n % 2 == 0 { a } else { b };
        let moved = match app
            .store
            .move_task(
                &owner,
                id(moving),
                Placement::After(Some(id(l))),
                &Expect::Any,
                None,
            )
            .await
            .unwrap_or_else(|error| panic!("move {n}: {error}"))
        {
            Once::Done(task) => task,
            Once::Replayed(_) => panic!("move {n}: replayed without a key"),
        };
        longest = longest.max(moved.position.as_str().len());
        assert!(
            !moved.position.is_too_long(),
            "move {n}: a key of {} characters",
            moved.position.as_str().len()
        );
        reference.retain(|task| *task != moving);
        let after = reference.iter().position(|task| *task == l).expect("L") + 1;
        reference.insert(after, moving);
    }
    assert!(
        longest > Position::MAX_CHARS / 2,
        "the attack did grow the keys (longest {longest}): the bound was exercised"
    );
    assert_eq!(ids_in_position_order(app, &alice).await, reference);
    let listed = app
        .get("/api/tasks?sort=position&limit=100&deleted=true", &alice)
        .await
        .json();
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(1),
        "the trashed task stays in the trash"
    );
    // C and D were never moved: a new version of each in the feed is the re-key's.
    let feed = app
        .store
        .changes(&owner, ChangeCursor::START, 100, false)
        .await
        .expect("the feed");
    for untouched in [c, d] {
        let task = feed
            .changes
            .iter()
            .find_map(|change| match change {
                Change::Upsert { task, .. } if task.id == id(untouched) => Some(task),
                _ => None,
            })
            .expect("in the feed");
        assert!(task.version > 1, "task {untouched} was re-keyed");
        let now = app
            .get(&format!("/api/tasks/{untouched}"), &alice)
            .await
            .json();
        assert_eq!(
            now["position"],
            json!(task.position),
            "the feed has its new key"
        );
    }
}

/// Four clients move their own task into the same gap at once, so that re-keys run while
/// other moves wait for their rows, and re-keys run against each other: every move succeeds
/// (no deadlock, no 500), every key stays bounded and unique, and the list and the feed agree
/// on every task.
async fn concurrent_moves_into_one_gap_survive_their_re_keys(app: &TestApp) {
    const CLIENTS: usize = 4;
    const MOVES: usize = 400;
    let alice = token("alice");
    let owner = UserId::parse("alice").expect("user");
    let anchor = app.create_task(&alice, json!({"title": "L"})).await["id"]
        .as_i64()
        .expect("id");
    let mut movers = Vec::new();
    for n in 0..CLIENTS {
        let id = app
            .create_task(&alice, json!({"title": format!("m{n}")}))
            .await["id"]
            .as_i64()
            .expect("id");
        movers.push(id);
    }
    let id = |n: i64| TaskId::try_from(n).expect("positive");
    let mut workers = Vec::new();
    for mover in movers.clone() {
        let store = app.store.clone();
        let owner = owner.clone();
        workers.push(tokio::spawn(async move {
            for n in 0..MOVES {
                let placement = Placement::After(Some(id(anchor)));
                let moved = store
                    .move_task(&owner, id(mover), placement, &Expect::Any, None)
                    .await
                    .unwrap_or_else(|error| panic!("task {mover}, move {n}: {error}"));
                let Once::Done(task) = moved else {
                    panic!("replayed without a key")
                };
                assert!(!task.position.is_too_long(), "a key past the limit");
            }
        }));
    }
    for worker in workers {
        worker.await.expect("every move succeeded");
    }
    let listed = app
        .get("/api/tasks?sort=position&limit=100", &alice)
        .await
        .json();
    let tasks = listed.as_array().expect("a list");
    let positions: Vec<&str> = tasks
        .iter()
        .map(|task| task["position"].as_str().expect("position"))
        .collect();
    let mut unique = positions.clone();
    unique.dedup();
    assert_eq!(unique.len(), CLIENTS + 1, "one key each: {positions:?}");
    assert_eq!(tasks[0]["id"], anchor, "L first");
    assert!(
        tasks[0]["version"].as_i64() > Some(1),
        "L never moved: only re-keys gave it new versions, so some ran"
    );
    // What the list shows is what the feed last said of each task: no re-key wrote a task
    // without a new version, and so a feed entry.
    let feed = app
        .store
        .changes(&owner, ChangeCursor::START, 100, false)
        .await
        .expect("the feed");
    for listed in tasks {
        let task_id = id(listed["id"].as_i64().expect("id"));
        let latest = feed
            .changes
            .iter()
            .find_map(|change| match change {
                Change::Upsert { task, .. } if task.id == task_id => Some(task),
                _ => None,
            })
            .expect("in the feed");
        assert_eq!(listed["version"], latest.version, "task {task_id}");
        assert_eq!(listed["position"], json!(latest.position), "task {task_id}");
    }
}

backend_tests!(
    new_tasks_go_last_and_moves_reorder_one_task,
    bad_moves_are_refused_and_change_nothing,
    concurrent_creates_and_moves_keep_one_total_order,
    keys_stay_bounded_under_alternating_moves_into_one_gap,
    concurrent_moves_into_one_gap_survive_their_re_keys,
);
