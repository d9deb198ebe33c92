//! A request dropped half-way, because its client went away, leaves nothing behind: no
//! transaction open on a pooled connection, no lock held, no key stuck in flight.

use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use serde_json::json;

use todo_backend::store::PoolSettings;

use crate::support::app::{POOL, TestApp, token};

/// One connection, so that a connection left inside a transaction is the one every later
/// request gets.
const ONE_CONNECTION: PoolSettings = PoolSettings {
    max_connections: 1,
    ..POOL
};

/// How many requests are dropped, each a little later than the one before: together they
/// cover every stage of a keyed create or move, from taking the connection to commit.
const DROPPED: u32 = 300;

/// Drops keyed creates and moves at every point of their way, then checks that the user's
/// writes still land and are seen from outside, and that no session is left in a transaction.
async fn dropped_writes_leave_no_transaction_open(app: &TestApp) {
    let alice = token("alice");
    let anchor = app.create_task(&alice, json!({"title": "anchor"})).await;
    let anchor_id = anchor["id"].as_i64().expect("an id");
    let moved = app.create_task(&alice, json!({"title": "moved"})).await;
    let moved_url = format!("{}/move", TestApp::url_of(&moved));
    // As long as a whole keyed request takes here, and a little more: the deadlines span it.
    let mut took = Vec::new();
    for attempt in 0..5 {
        let started = Instant::now();
        let created = app
            .request(Method::POST, "/api/tasks")
            .token(&alice)
            .header("idempotency-key", &format!("timed-{attempt}"))
            .json(&json!({"title": "timed"}))
            .send()
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
        took.push(started.elapsed());
    }
    took.sort();
    let step = took[2] * 3 / 2 / DROPPED;
    let mut finished = 0;
    for attempt in 0..DROPPED {
        let request = if attempt % 2 == 0 {
            app.request(Method::POST, "/api/tasks")
                .token(&alice)
                .header("idempotency-key", &format!("create-{attempt}"))
                .json(&json!({"title": format!("dropped {attempt}")}))
        } else {
            let placement = match attempt % 4 {
                1 => json!({"after": anchor_id}),
                _ => json!({"before": anchor_id}),
            };
            app.request(Method::POST, &moved_url)
                .token(&alice)
                .header("idempotency-key", &format!("move-{attempt}"))
                .json(&placement)
        };
        tokio::select! {
            biased;
            _ = request.send() => finished += 1,
            () = busy_until(Instant::now() + step * attempt) => {}
        }
        // A plain write next, on the same (only) connection: it must be committed, which it
        // is not if it ran inside a transaction the dropped request left open. (A keyed write
        // would hide that: its COMMIT would end the stray transaction too.)
        let probe = tokio::time::timeout(
            Duration::from_secs(10),
            app.create_task(&alice, json!({"title": format!("probe {attempt}")})),
        )
        .await
        .expect("a write after a dropped one is answered");
        let id = probe["id"].as_i64().expect("an id");
        let seen = app
            .scalar(
                &format!("select count(*) from tasks where id = {id}"),
                &format!("select count(*) from tasks where id = {id}"),
            )
            .await;
        assert_eq!(
            seen, 1,
            "attempt {attempt}: the write after a dropped request was not committed"
        );
    }
    assert!(
        finished < DROPPED,
        "every request finished before its deadline: none was dropped half-way"
    );

    let keyed = tokio::time::timeout(
        Duration::from_secs(10),
        app.request(Method::POST, "/api/tasks")
            .token(&alice)
            .header("idempotency-key", "after")
            .json(&json!({"title": "keyed after"}))
            .send(),
    )
    .await
    .expect("a keyed write after the dropped ones is answered");
    assert_eq!(keyed.status, StatusCode::CREATED, "{}", keyed.text());

    // Committed: another client of the database sees everything the API lists.
    let listed = app.get("/api/tasks?limit=1", &alice).await;
    assert_eq!(listed.status, StatusCode::OK);
    let listed: i64 = listed
        .header("x-total-count")
        .and_then(|total| total.parse().ok())
        .expect("a total");
    let outside = app
        .scalar(
            "select count(*) from tasks where user_id = 'alice' and deleted_at is null",
            "select count(*) from tasks where user_id = 'alice' and deleted_at is null",
        )
        .await;
    assert_eq!(
        outside, listed,
        "the API lists tasks that another client of the database does not see"
    );

    if app.pg_options.is_some() {
        // A connection goes back to the pool on a task of its own: give it a moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let open = app
                .scalar(
                    "select count(*) from pg_stat_activity
                     where datname = current_database() and pid <> pg_backend_pid()
                        and state like 'idle in transaction%'",
                    "",
                )
                .await;
            if open == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{open} session(s) left idle in a transaction"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Completes at `deadline`, yielding in between so that the request under test (and the I/O
/// it waits for) makes progress: finer than the timer's millisecond.
async fn busy_until(deadline: Instant) {
    while Instant::now() < deadline {
        tokio::task::yield_now().await;
    }
}

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropped_writes_leave_no_transaction_open() {
        let app = crate::support::app::TestApp::builder()
            .pool(super::ONE_CONNECTION)
            .build()
            .await;
        super::dropped_writes_leave_no_transaction_open(&app).await;
    }
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(not(test_database), ignore = "needs TEST_DATABASE_URL")]
    async fn dropped_writes_leave_no_transaction_open() {
        let app = crate::support::app::TestApp::builder()
            .pool(super::ONE_CONNECTION)
            .postgres()
            .build()
            .await;
        super::dropped_writes_leave_no_transaction_open(&app).await;
    }
}
