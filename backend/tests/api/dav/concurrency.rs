//! Calendar apps writing at once: conditions decide, exactly one write wins each race.

use axum::http::StatusCode;
use futures_util::future::join_all;

use super::{Client, vtodo};
use crate::backend_tests;
use crate::support::app::TestApp;

const WRITERS: usize = 20;

async fn of_many_writes_with_one_etag_exactly_one_lands(app: &TestApp) {
    let alice = Client::new(app, "alice").await;
    let list = alice.inbox().await;
    let path = format!("{}race.ics", alice.calendar(list));
    let first = alice.put(&path, &vtodo("race", &["SUMMARY:start"])).await;
    let etag = first.header("etag").expect("an ETag").to_owned();
    let writes = (0..WRITERS).map(|n| {
        let (alice, path, etag) = (&alice, &path, &etag);
        async move {
            let body = vtodo("race", &[&format!("SUMMARY:writer {n}")]);
            let response = alice.send("PUT", path, &[("if-match", etag)], &body).await;
            (n, response.status)
        }
    });
    let outcomes = join_all(writes).await;
    let winners: Vec<usize> = outcomes
        .iter()
        .filter(|(_, status)| *status == StatusCode::NO_CONTENT)
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .all(|(_, status)| *status == StatusCode::NO_CONTENT
                || *status == StatusCode::PRECONDITION_FAILED),
        "{outcomes:?}"
    );
    let tasks = alice.tasks(list).await;
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["title"], format!("writer {}", winners[0]));
    assert_eq!(tasks[0]["version"], 2);
}

async fn of_many_creates_of_one_uid_exactly_one_lands(app: &TestApp) {
    let alice = Client::new(app, "alice").await;
    let list = alice.inbox().await;
    let path = format!("{}new.ics", alice.calendar(list));
    let creates = (0..WRITERS).map(|n| {
        let (alice, path) = (&alice, &path);
        async move {
            let body = vtodo("new", &[&format!("SUMMARY:creator {n}")]);
            alice
                .send("PUT", path, &[("if-none-match", "*")], &body)
                .await
                .status
        }
    });
    let statuses = join_all(creates).await;
    let created = statuses
        .iter()
        .filter(|status| **status == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|status| *status == StatusCode::CREATED
                || *status == StatusCode::PRECONDITION_FAILED),
        "{statuses:?}"
    );
    let tasks = alice.tasks(list).await;
    assert_eq!(tasks.len(), 1);
    assert_eq!(
        tasks[0]["version"], 1,
        "nobody wrote over the first: {}",
        tasks[0]
    );
}

backend_tests!(
    of_many_writes_with_one_etag_exactly_one_lands,
    of_many_creates_of_one_uid_exactly_one_lands,
);
