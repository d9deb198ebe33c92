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
    assert!(text.contains("<a:calendar-color>#3B82F6FF</a:calendar-color>"));
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

const RENAME: &str = r#"<d:propertyupdate xmlns:d="DAV:" xmlns:a="http://apple.com/ns/ical/">
    <d:set><d:prop><d:displayname>Renamed</d:displayname>
    <a:calendar-color>#11AA22FF</a:calendar-color></d:prop></d:set></d:propertyupdate>"#;

const WITH_ORDER: &str = r#"<d:propertyupdate xmlns:d="DAV:" xmlns:a="http://apple.com/ns/ical/">
    <d:set><d:prop><d:displayname>Other</d:displayname>
    <a:calendar-order>3</a:calendar-order></d:prop></d:set></d:propertyupdate>"#;

async fn a_calendar_is_renamed_and_recoloured_all_or_nothing(app: &TestApp) {
    let alice = Client::new(app, "alice").await;
    let bob = Client::new(app, "bob").await;
    let list = super::objects::share(app, "alice", "bob", "viewer").await;
    let renamed = alice
        .send("PROPPATCH", &alice.calendar(list), &[], RENAME)
        .await;
    assert_eq!(renamed.status, StatusCode::MULTI_STATUS);
    assert!(
        renamed.text().contains("HTTP/1.1 200 OK"),
        "{}",
        renamed.text()
    );
    let read = app
        .get(&format!("/api/lists/{list}"), &token("alice"))
        .await
        .json();
    assert_eq!(
        (&read["name"], &read["color"]),
        (&json!("Renamed"), &json!("#11aa22"))
    );
    // One property it cannot set: none is set.
    let refused = alice
        .send("PROPPATCH", &alice.calendar(list), &[], WITH_ORDER)
        .await;
    let text = refused.text();
    assert!(
        text.contains("HTTP/1.1 403 Forbidden") && text.contains("424 Failed Dependency"),
        "{text}"
    );
    let read = app
        .get(&format!("/api/lists/{list}"), &token("alice"))
        .await
        .json();
    assert_eq!(read["name"], "Renamed");
    // A viewer cannot.
    let viewer = bob
        .send("PROPPATCH", &bob.calendar(list), &[], RENAME)
        .await;
    assert_eq!(viewer.status, StatusCode::FORBIDDEN);
    // A calendar made with an extended MKCOL, as vdirsyncer makes one.
    let made = alice
        .send(
            "MKCOL",
            "/dav/calendars/alice/from-mkcol/",
            &[],
            r#"<d:mkcol xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:set><d:prop>
            <d:resourcetype><d:collection/><c:calendar/></d:resourcetype>
            <d:displayname>Made</d:displayname></d:prop></d:set></d:mkcol>"#,
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.text());
    // A list's id is not a name to make a calendar under.
    let numeric = alice
        .send("MKCALENDAR", "/dav/calendars/alice/12345/", &[], "")
        .await;
    assert_eq!(numeric.status, StatusCode::METHOD_NOT_ALLOWED);
}

async fn searches_for_people_and_free_time_find_nothing(app: &TestApp) {
    let alice = Client::new(app, "alice").await;
    let _bob = Client::new(app, "bob").await;
    let people = alice
        .report(
            "/dav/",
            r#"<d:principal-property-search xmlns:d="DAV:"><d:property-search><d:prop>
            <d:displayname/></d:prop><d:match>bob</d:match></d:property-search>
            </d:principal-property-search>"#,
        )
        .await;
    assert_eq!(people.status, StatusCode::MULTI_STATUS);
    assert!(!people.text().contains("<d:response>"), "{}", people.text());
    let calendar = alice.calendar(alice.inbox().await);
    let busy = alice
        .report(
            &calendar,
            r#"<c:free-busy-query xmlns:c="urn:ietf:params:xml:ns:caldav">
            <c:time-range start="20261201T000000Z" end="20261208T000000Z"/></c:free-busy-query>"#,
        )
        .await;
    assert_eq!(busy.status, StatusCode::OK);
    let text = busy.text();
    assert!(
        text.contains("BEGIN:VFREEBUSY") && text.contains("DTSTART:20261201T000000Z"),
        "{text}"
    );
    assert!(!text.contains("FREEBUSY:"), "{text}");
}

backend_tests!(
    a_client_finds_a_calendar_per_list,
    nobody_else_s_calendars_are_there,
    a_viewer_sees_a_shared_calendar_read_only,
    a_calendar_is_renamed_and_recoloured_all_or_nothing,
    searches_for_people_and_free_time_find_nothing,
);
