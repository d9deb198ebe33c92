//! When the database cannot serve a request in time, the client gets a fast 503 that says
//! when to retry, and the request that was holding things up still completes.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::json;
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Executor};

use todo_backend::store::PoolSettings;

use crate::support::app::{TestApp, token};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(test_database), ignore = "needs TEST_DATABASE_URL")]
async fn an_exhausted_pool_answers_503_with_retry_after_within_the_acquire_timeout() {
    let acquire_timeout = Duration::from_millis(300);
    let pool = PoolSettings {
        max_connections: 1,
        acquire_timeout,
        transaction_pooler: Default::default(),
    };
    let app = TestApp::builder().postgres().pool(pool).build().await;
    let options = app.pg_options.clone().expect("a PostgreSQL app");
    let app = std::sync::Arc::new(app);
    let alice = token("alice");

    // Another client locks the table, so the app's only connection blocks on its insert.
    let mut locker = PgConnection::connect_with(&options)
        .await
        .expect("connects");
    locker.execute("begin").await.expect("begin");
    locker
        .execute("lock table tasks in access exclusive mode")
        .await
        .expect("lock");

    let blocked = {
        let (app, alice) = (app.clone(), alice.clone());
        tokio::spawn(async move {
            app.post("/api/tasks", &alice, &json!({"title": "slow"}))
                .await
        })
    };
    // Wait until the blocked request holds the pool's only connection: its insert is then
    // waiting on the lock.
    let mut watcher = PgConnection::connect_with(&options)
        .await
        .expect("connects");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "select count(*) from pg_stat_activity
             where datname = current_database() and wait_event_type = 'Lock'",
        )
        .fetch_one(&mut watcher)
        .await
        .expect("pg_stat_activity is readable");
        if waiting > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the insert never blocked");
        tokio::task::yield_now().await;
    }

    let started = Instant::now();
    let response = app.get("/api/tasks", &alice).await;
    let waited = started.elapsed();
    response.assert_error(StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.header("retry-after"), Some("1"));
    assert!(
        waited < acquire_timeout + Duration::from_secs(2),
        "answered after {waited:?}, not held until the database freed up"
    );

    locker.execute("rollback").await.expect("unlock");
    let created = blocked.await.expect("request task");
    assert_eq!(
        created.status,
        StatusCode::CREATED,
        "the held request completes"
    );
    let listed = app.get("/api/tasks", &alice).await;
    assert_eq!(
        listed.status,
        StatusCode::OK,
        "the service recovers at once"
    );
    assert_eq!(listed.json().as_array().map(Vec::len), Some(1));
}
