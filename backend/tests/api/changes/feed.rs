//! The change feed (docs/sync-and-live-updates.md, "The change feed"): an offline client
//! catches up in commit order and ends with exactly the server's tasks.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::{Method, StatusCode};
use futures_util::future::join_all;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::support::app::{TestApp, token};

async fn page(app: &TestApp, user: &str, since: &str, limit: u32) -> Value {
    let response = app
        .get(
            &format!("/api/tasks/changes?since={since}&limit={limit}"),
            &token(user),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    response.json()
}

/// Applies one page to `local`; returns the next cursor and whether more follow.
fn apply(local: &mut BTreeMap<i64, Value>, page: &Value) -> (String, bool) {
    for change in page["changes"].as_array().expect("changes") {
        match change["op"].as_str() {
            Some("upsert") => {
                let task = change["task"].clone();
                local.insert(task["id"].as_i64().expect("id"), task);
            }
            Some("delete") => {
                local.remove(&change["id"].as_i64().expect("id"));
            }
            other => panic!("unknown op {other:?} in {change}"),
        }
    }
    let next = page["next_cursor"]
        .as_str()
        .expect("a cursor string")
        .to_owned();
    (next, page["has_more"].as_bool().expect("has_more"))
}

/// Every live task of `user`, by id, through the list's pages.
async fn server_state(app: &TestApp, user: &str) -> BTreeMap<i64, Value> {
    let mut tasks = BTreeMap::new();
    let mut uri = "/api/tasks?sort=created_at&limit=100".to_owned();
    loop {
        let response = app.get(&uri, &token(user)).await;
        assert_eq!(response.status, StatusCode::OK);
        for task in response.json().as_array().expect("a list") {
            tasks.insert(task["id"].as_i64().expect("id"), task.clone());
        }
        match response.header("link") {
            Some(link) => {
                uri = link
                    .trim_start_matches('<')
                    .split('>')
                    .next()
                    .expect("a link target")
                    .to_owned();
            }
            None => return tasks,
        }
    }
}

async fn every_kind_of_change_appears_once_in_its_latest_state(app: &TestApp) {
    let alice = token("alice");
    let start = page(app, "alice", "", 100).await;
    assert_eq!(
        start,
        json!({"changes": [], "next_cursor": "0", "has_more": false})
    );

    let a = app.create_task(&alice, json!({"title": "a"})).await;
    let b = app.create_task(&alice, json!({"title": "b"})).await;
    let c = app.create_task(&alice, json!({"title": "c"})).await;
    let first = page(app, "alice", "0", 100).await;
    let ops: Vec<(&str, &Value)> = first["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|change| {
            (
                change["op"].as_str().unwrap_or_default(),
                &change["task"]["id"],
            )
        })
        .collect();
    assert_eq!(
        ops,
        [
            ("upsert", &a["id"]),
            ("upsert", &b["id"]),
            ("upsert", &c["id"])
        ]
    );
    assert_eq!(first["changes"][0]["task"], a);
    let cursor = first["next_cursor"].as_str().expect("cursor").to_owned();

    app.patch(&TestApp::url_of(&a), &alice, &json!({"title": "a2"}))
        .await;
    app.delete(&TestApp::url_of(&b), &alice).await;
    app.post(
        &format!("{}/move", TestApp::url_of(&c)),
        &alice,
        &json!({"after": null}),
    )
    .await;
    app.delete(&TestApp::url_of(&a), &alice).await;
    app.post(
        &format!("{}/restore", TestApp::url_of(&a)),
        &alice,
        &json!({}),
    )
    .await;
    let next = page(app, "alice", &cursor, 100).await;
    let changes = next["changes"].as_array().expect("changes");
    // b deleted, c moved, a restored (its patch and deletion folded into its latest state).
    assert_eq!(changes.len(), 3, "{next}");
    assert_eq!(
        changes[0],
        json!({"cursor": changes[0]["cursor"], "op": "delete", "id": b["id"]})
    );
    assert_eq!(changes[1]["op"], "upsert");
    assert_eq!(changes[1]["task"]["id"], c["id"]);
    assert_eq!(changes[2]["op"], "upsert");
    assert_eq!(changes[2]["task"]["title"], "a2");
    assert_eq!(changes[2]["task"]["version"], 3, "patched, then restored");
    let cursors: Vec<i64> = changes
        .iter()
        .map(|c| {
            c["cursor"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .expect("numeric")
        })
        .collect();
    assert!(cursors.windows(2).all(|w| w[0] < w[1]), "{cursors:?}");

    // Bob's feed is his own.
    assert_eq!(page(app, "bob", "", 100).await["changes"], json!([]));
}

async fn pages_follow_each_other_without_gaps(app: &TestApp) {
    let alice = token("alice");
    for n in 0..25 {
        app.create_task(&alice, json!({"title": format!("t{n}")}))
            .await;
    }
    let mut local = BTreeMap::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let next = page(app, "alice", &cursor, 10).await;
        pages += 1;
        let (next_cursor, more) = apply(&mut local, &next);
        cursor = next_cursor;
        if !more {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(local, server_state(app, "alice").await);
    // Nothing new: the same cursor comes back.
    let idle = page(app, "alice", &cursor, 10).await;
    assert_eq!(idle["next_cursor"], cursor.as_str());
    assert_eq!(idle["has_more"], false);
}

async fn bad_and_expired_cursors_are_refused(app: &TestApp) {
    let alice = token("alice");
    for bad in [
        "since=abc",
        "since=-1",
        "limit=0",
        "limit=1001",
        "since=1&since=2",
    ] {
        app.get(&format!("/api/tasks/changes?{bad}"), &alice)
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    }
    // A cursor this database never issued.
    app.get("/api/tasks/changes?since=500", &alice)
        .await
        .assert_error(StatusCode::GONE);
    let task = app.create_task(&alice, json!({"title": "t"})).await;
    let seen = page(app, "alice", "", 100).await["next_cursor"].clone();
    app.delete(&TestApp::url_of(&task), &alice).await;
    app.store
        .purge(
            chrono::Utc::now() + chrono::Duration::seconds(1),
            chrono::Utc::now(),
        )
        .await
        .expect("purges");
    // The deletion the client never saw is gone with the tombstone: it must start again.
    let gone = app
        .get(
            &format!("/api/tasks/changes?since={}", seen.as_str().unwrap_or("")),
            &alice,
        )
        .await;
    let body = gone.assert_error(StatusCode::GONE);
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("start"),
        "{body}"
    );
    // From the start it works, and yields the (empty) state.
    let fresh = page(app, "alice", "", 100).await;
    assert_eq!(fresh["changes"], json!([]));
}

/// Eight devices write at random while a ninth syncs in small pages: once the writers stop
/// and it drains the feed, its copy is exactly the server's. A cursor that did not follow
/// commit order (a sequence taken before commit, or `updated_at`) skips a change now and then
/// and fails this. A skipped change shows only when it was its task's last, so the test runs
/// three rounds, one user each, for three chances (one user's writers at a time: more at once
/// only slows each round down).
async fn a_syncing_client_converges_with_concurrent_writers(app: &TestApp) {
    for (user, first_seed) in [("alice", 0), ("bob", 8), ("carol", 16)] {
        converge(app, user, first_seed).await;
    }
}

/// One user's devices: eight writers seeded from `first_seed` on, and the syncing client.
async fn converge(app: &TestApp, user: &str, first_seed: u64) {
    let ids = Mutex::new(Vec::<i64>::new());
    let writing = AtomicBool::new(true);
    let writer = |seed: u64| {
        let ids = &ids;
        async move {
            let bearer = token(user);
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            for step in 0..150 {
                let known: Vec<i64> = ids.lock().expect("ids").clone();
                let pick = |rng: &mut rand::rngs::StdRng| known[rng.gen_range(0..known.len())];
                let roll = rng.gen_range(0..100);
                let response = if known.is_empty() || roll < 30 {
                    let response = app
                        .post(
                            "/api/tasks",
                            &bearer,
                            &json!({"title": format!("w{seed} s{step}")}),
                        )
                        .await;
                    if response.status == StatusCode::CREATED {
                        ids.lock()
                            .expect("ids")
                            .push(response.json()["id"].as_i64().expect("id"));
                    }
                    response
                } else if roll < 60 {
                    let body = json!({"title": format!("w{seed} s{step}"), "priority": "high"});
                    app.patch(&format!("/api/tasks/{}", pick(&mut rng)), &bearer, &body)
                        .await
                } else if roll < 75 {
                    let (id, anchor) = (pick(&mut rng), pick(&mut rng));
                    let body = json!({"after": anchor});
                    app.post(&format!("/api/tasks/{id}/move"), &bearer, &body)
                        .await
                } else if roll < 90 {
                    app.delete(&format!("/api/tasks/{}", pick(&mut rng)), &bearer)
                        .await
                } else {
                    let uri = format!("/api/tasks/{}/restore", pick(&mut rng));
                    app.request(Method::POST, &uri).token(&bearer).send().await
                };
                assert!(
                    matches!(response.status.as_u16(), 200 | 201 | 204 | 404),
                    "{}: {}",
                    response.status,
                    response.text()
                );
            }
        }
    };
    let writers = async {
        join_all((first_seed..first_seed + 8).map(writer)).await;
        writing.store(false, Ordering::SeqCst);
    };
    let syncer = async {
        let mut local = BTreeMap::new();
        let mut cursor = String::new();
        loop {
            let done = !writing.load(Ordering::SeqCst);
            let next = page(app, user, &cursor, 7).await;
            let (next_cursor, more) = apply(&mut local, &next);
            cursor = next_cursor;
            if done && !more {
                return local;
            }
            tokio::task::yield_now().await;
        }
    };
    let ((), local) = tokio::join!(writers, syncer);
    let server = server_state(app, user).await;
    assert!(!server.is_empty());
    assert_eq!(local.len(), server.len(), "{user}: the same tasks");
    assert_eq!(local, server, "{user}: the same tasks, in the same state");
}

backend_tests!(
    every_kind_of_change_appears_once_in_its_latest_state,
    pages_follow_each_other_without_gaps,
    bad_and_expired_cursors_are_refused,
    a_syncing_client_converges_with_concurrent_writers,
);
