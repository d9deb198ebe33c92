//! REPORTs: sync-collection from the list's changes, calendar-query filters, multiget.

use axum::http::StatusCode;
use serde_json::json;

use super::{Client, vtodo};
use crate::backend_tests;
use crate::support::app::{TestApp, token};

fn sync(token: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
        <d:sync-collection xmlns:d="DAV:"><d:sync-token>{token}</d:sync-token>
        <d:sync-level>1</d:sync-level><d:prop><d:getetag/></d:prop></d:sync-collection>"#
    )
}

/// The `sync-token` of a sync report.
fn token_of(body: &str) -> String {
    body.split("<d:sync-token>")
        .nth(1)
        .and_then(|rest| rest.split("</d:sync-token>").next())
        .expect("a sync token")
        .to_owned()
}

async fn a_sync_report_lists_what_changed_since_its_token(app: &TestApp) {
    let alice = Client::new(app, "alice").await;
    let list = alice.inbox().await;
    let other = app
        .post("/api/lists", &token("alice"), &json!({"name": "Other"}))
        .await
        .json();
    let calendar = alice.calendar(list);
    for uid in ["a", "b", "c", "d"] {
        let put = alice
            .put(&format!("{calendar}{uid}.ics"), &vtodo(uid, &["SUMMARY:x"]))
            .await;
        assert_eq!(put.status, StatusCode::CREATED);
    }
    let first = alice.report(&calendar, &sync("")).await;
    assert_eq!(first.status, StatusCode::MULTI_STATUS, "{}", first.text());
    let text = first.text();
    for uid in ["a", "b", "c", "d"] {
        assert!(
            text.contains(&format!("{calendar}{uid}.ics</d:href>")),
            "{text}"
        );
    }
    let token1 = token_of(&text);

    // Nothing changed: nothing reported (the token may move on: nothing is before it).
    let quiet = alice.report(&calendar, &sync(&token1)).await.text();
    assert!(!quiet.contains("<d:response>"), "{quiet}");
    let token1 = token_of(&quiet);

    // Changes through the API: an edit, a delete, a move out, a new task.
    let tasks = alice.tasks(list).await;
    let id = |uid: &str| {
        tasks
            .iter()
            .find(|task| task["uid"] == uid)
            .map(|task| task["id"].clone())
            .expect("a task")
    };
    let bearer = token("alice");
    app.patch(
        &format!("/api/tasks/{}", id("a")),
        &bearer,
        &json!({"title": "A"}),
    )
    .await;
    app.delete(&format!("/api/tasks/{}", id("b")), &bearer)
        .await;
    app.patch(
        &format!("/api/tasks/{}", id("c")),
        &bearer,
        &json!({"list_id": other["id"]}),
    )
    .await;
    app.create_task(&bearer, json!({"title": "E", "uid": "e", "list_id": list}))
        .await;
    let second = alice.report(&calendar, &sync(&token1)).await.text();
    let gone = |uid: &str| {
        format!("<d:href>{calendar}{uid}.ics</d:href><d:status>HTTP/1.1 404 Not Found</d:status>")
    };
    assert!(second.contains(&gone("b")), "{second}");
    assert!(second.contains(&gone("c")), "{second}");
    for uid in ["a", "e"] {
        assert!(
            second.contains(&format!("<d:href>{calendar}{uid}.ics</d:href><d:propstat>")),
            "{uid} in {second}"
        );
    }
    assert!(!second.contains(&format!("{calendar}d.ics")), "{second}");
    assert_ne!(token_of(&second), token1);

    // A token the list's changes cannot be read from: start again.
    for bad in ["urn:x-todo-backend:sync:99999999999999999", "nonsense"] {
        let refused = alice.report(&calendar, &sync(bad)).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{bad}");
        assert!(refused.text().contains("valid-sync-token"));
    }
}

const NOT_COMPLETED: &str = r#"<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">
    <d:prop><d:getetag/><c:calendar-data/></d:prop>
    <c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VTODO">
    <c:prop-filter name="COMPLETED"><c:is-not-defined/></c:prop-filter>
    </c:comp-filter></c:comp-filter></c:filter></c:calendar-query>"#;

const EVENTS: &str = r#"<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">
    <d:prop><d:getetag/></d:prop>
    <c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT"/>
    </c:comp-filter></c:filter></c:calendar-query>"#;

const DUE_IN_DECEMBER: &str = r#"<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">
    <d:prop><d:getetag/></d:prop>
    <c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VTODO">
    <c:time-range start="20261201T000000Z" end="20270101T000000Z"/>
    </c:comp-filter></c:comp-filter></c:filter></c:calendar-query>"#;

async fn queries_filter_and_multiget_fetches(app: &TestApp) {
    let alice = Client::new(app, "alice").await;
    let calendar = alice.calendar(alice.inbox().await);
    let objects = [
        ("open", vec!["SUMMARY:Open", "DUE:20261210T120000Z"]),
        (
            "done",
            vec![
                "SUMMARY:Done",
                "STATUS:COMPLETED",
                "COMPLETED:20261201T100000Z",
            ],
        ),
        ("later", vec!["SUMMARY:Later", "DUE:20270310T120000Z"]),
    ];
    for (uid, lines) in &objects {
        let put = alice
            .put(&format!("{calendar}{uid}.ics"), &vtodo(uid, lines))
            .await;
        assert_eq!(put.status, StatusCode::CREATED, "{}", put.text());
    }
    let open = alice.report(&calendar, NOT_COMPLETED).await;
    assert_eq!(open.status, StatusCode::MULTI_STATUS);
    let text = open.text();
    assert!(
        text.contains("open.ics") && text.contains("later.ics"),
        "{text}"
    );
    assert!(!text.contains("done.ics"), "{text}");
    assert!(text.contains("SUMMARY:Open"), "calendar-data: {text}");
    let events = alice.report(&calendar, EVENTS).await.text();
    assert!(!events.contains("<d:response>"), "{events}");
    let december = alice.report(&calendar, DUE_IN_DECEMBER).await.text();
    assert!(december.contains("open.ics"), "{december}");
    assert!(!december.contains("later.ics"), "{december}");

    let multiget = format!(
        r#"<c:calendar-multiget xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">
        <d:prop><d:getetag/><c:calendar-data/></d:prop>
        <d:href>{calendar}done.ics</d:href><d:href>{calendar}missing.ics</d:href>
        </c:calendar-multiget>"#
    );
    let fetched = alice.report(&calendar, &multiget).await.text();
    assert!(fetched.contains("SUMMARY:Done"), "{fetched}");
    assert!(
        fetched.contains(&format!(
            "<d:href>{calendar}missing.ics</d:href><d:status>HTTP/1.1 404 Not Found</d:status>"
        )),
        "{fetched}"
    );
}

backend_tests!(
    a_sync_report_lists_what_changed_since_its_token,
    queries_filter_and_multiget_fetches,
);
