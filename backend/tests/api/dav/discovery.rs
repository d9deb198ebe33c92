//! Discovery (RFC 6764, 5397, 4791 §6): from `/.well-known/caldav` to one calendar per list.

use axum::http::{Method, StatusCode};
use serde_json::json;

use super::Client;
use crate::backend_tests;
use crate::support::app::{TestApp, token};

const CURRENT_USER_PRINCIPAL: &str = r#"<d:propfind xmlns:d="DAV:"><d:prop>
    <d:current-user-principal/></d:prop></d:propfind>"#;

const HOME_SET: &str = r#"<d:propfind xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">
    <d:prop><c:calendar-home-set/><d:displayname/></d:prop></d:propfind>"#;

const CALENDARS: &str = r#"<d:propfind xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"
    xmlns:cs="http://calendarserver.org/ns/" xmlns:a="http://apple.com/ns/ical/">
    <d:prop><d:resourcetype/><d:displayname/><c:supported-calendar-component-set/>
    <cs:getctag/><d:sync-token/><a:calendar-color/><d:current-user-privilege-set/>
    <x:unknown xmlns:x="urn:example"/></d:prop></d:propfind>"#;

async fn a_client_finds_a_calendar_per_list(app: &TestApp) {
    let well_known = app.request(Method::GET, "/.well-known/caldav").send().await;
    assert_eq!(well_known.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(well_known.header("location"), Some("/dav/"));
    let options = app
        .request(Method::OPTIONS, "/dav/calendars/alice/")
        .send()
        .await;
    assert_eq!(options.status, StatusCode::OK);
    assert!(
        options
            .header("dav")
            .is_some_and(|dav| dav.contains("calendar-access")),
        "{:?}",
        options.headers
    );

    let alice = Client::new(app, "alice").await;
    let root = alice.propfind("/dav/", "0", CURRENT_USER_PRINCIPAL).await;
    assert_eq!(root.status, StatusCode::MULTI_STATUS, "{}", root.text());
    assert!(
        root.text()
            .contains("<d:current-user-principal><d:href>/dav/principals/alice/</d:href>"),
        "{}",
        root.text()
    );
    let principal = alice
        .propfind("/dav/principals/alice/", "0", HOME_SET)
        .await;
    assert!(
        principal
            .text()
            .contains("<c:calendar-home-set><d:href>/dav/calendars/alice/</d:href>"),
        "{}",
        principal.text()
    );

    let groceries = app
        .post(
            "/api/lists",
            &token("alice"),
            &json!({"name": "Groceries & more", "color": "#3b82f6"}),
        )
        .await
        .json();
    let inbox = alice.inbox().await;
    let home = alice
        .propfind("/dav/calendars/alice/", "1", CALENDARS)
        .await;
    assert_eq!(home.status, StatusCode::MULTI_STATUS);
    let text = home.text();
    for list in [inbox, groceries["id"].as_i64().expect("an id")] {
        assert!(
            text.contains(&format!("<d:href>/dav/calendars/alice/{list}/</d:href>")),
            "{text}"
        );
    }
    assert!(text.contains("<d:displayname>Groceries &amp; more</d:displayname>"));
    assert!(text.contains("<a:calendar-color>#3b82f6</a:calendar-color>"));
    assert!(text.contains("<c:comp name=\"VTODO\"/>"));
    assert!(text.contains("<d:collection/><c:calendar/>"));
    assert!(text.contains("<cs:getctag>"));
    assert!(text.contains("<d:sync-token>urn:x-todo-backend:sync:"));
    assert!(text.contains("<d:privilege><d:write-content/></d:privilege>"));
    // What is not known is named in a 404 propstat.
    assert!(text.contains("<x:unknown xmlns:x=\"urn:example\"/>"));
    assert!(text.contains("HTTP/1.1 404 Not Found"));
}

async fn nobody_else_s_calendars_are_there(app: &TestApp) {
    let alice = Client::new(app, "alice").await;
    let bob = Client::new(app, "bob").await;
    let inbox = alice.inbox().await;
    for path in [
        "/dav/principals/alice/".to_owned(),
        "/dav/calendars/alice/".to_owned(),
        format!("/dav/calendars/alice/{inbox}/"),
        format!("/dav/calendars/bob/{inbox}/"),
        format!("/dav/calendars/bob/{inbox}/x.ics"),
    ] {
        let response = bob.propfind(&path, "0", "").await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{path}");
        let get = bob.send("GET", &path, &[], "").await;
        assert_eq!(get.status, StatusCode::NOT_FOUND, "GET {path}");
    }
}

async fn a_viewer_sees_a_shared_calendar_read_only(app: &TestApp) {
    let alice = Client::new(app, "alice").await;
    let bob = Client::new(app, "bob").await;
    let list = super::objects::share(app, "alice", "bob", "viewer").await;
    let home = bob.propfind("/dav/calendars/bob/", "1", CALENDARS).await;
    let text = home.text();
    assert!(
        text.contains(&format!("<d:href>/dav/calendars/bob/{list}/</d:href>")),
        "{text}"
    );
    let calendar = bob.propfind(&bob.calendar(list), "0", CALENDARS).await;
    assert!(
        calendar
            .text()
            .contains("<d:privilege><d:read/></d:privilege>")
    );
    assert!(
        !calendar.text().contains("write-content"),
        "{}",
        calendar.text()
    );
    let _ = alice;
}

backend_tests!(
    a_client_finds_a_calendar_per_list,
    nobody_else_s_calendars_are_there,
    a_viewer_sees_a_shared_calendar_read_only,
);
