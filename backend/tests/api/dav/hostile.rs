//! Bodies an attacker would send: each a 4xx that changes nothing, never a 500.

use super::{Client, vtodo};
use crate::backend_tests;
use crate::support::app::TestApp;

async fn hostile_bodies_are_refused_and_change_nothing(app: &TestApp) {
    let alice = Client::new(app, "alice").await;
    let inbox = alice.inbox().await;
    let calendar = alice.calendar(inbox);
    let entity = r#"<?xml version="1.0"?><!DOCTYPE d:propfind [<!ENTITY x SYSTEM "file:///etc/passwd">]>
        <d:propfind xmlns:d="DAV:"><d:prop><d:displayname>&x;</d:displayname></d:prop></d:propfind>"#;
    let nested = format!(
        "<d:propfind xmlns:d=\"DAV:\">{}{}</d:propfind>",
        "<d:prop>".repeat(10_000),
        "</d:prop>".repeat(10_000)
    );
    let huge = format!(
        "<d:propfind xmlns:d=\"DAV:\"><d:prop>{}</d:prop></d:propfind>",
        "<d:displayname/>".repeat(700_000)
    );
    for (what, body) in [
        ("external entity", entity.to_owned()),
        ("10,000 nested elements", nested),
        ("10 MB", huge),
        ("not XML", "{\"json\": true}".to_owned()),
    ] {
        let response = alice.propfind(&calendar, "0", &body).await;
        assert!(
            response.status.is_client_error(),
            "{what}: {}",
            response.status
        );
        let report = alice.report(&calendar, &body).await;
        assert!(report.status.is_client_error(), "{what}: {}", report.status);
    }

    let many_lines = {
        let lines: Vec<String> = (0..100_000).map(|n| format!("X-LINE:{n}")).collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        vtodo("many", &refs)
    };
    let bad_folding = vtodo(
        "folded",
        &["SUMMARY:first part", "second part without a space"],
    );
    let path = |uid: &str| format!("{calendar}{uid}.ics");
    for (what, uid, body) in [
        ("100,000 lines", "many", many_lines),
        ("bad folding", "folded", bad_folding),
        (
            "no VTODO",
            "none",
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n".to_owned(),
        ),
        (
            "an event",
            "event",
            "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:event\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
                .to_owned(),
        ),
        ("not iCalendar", "junk", "hello".to_owned()),
        (
            "unknown time zone",
            "tz",
            vtodo("tz", &["DUE;TZID=Mars/Olympus:20261207T090000"]),
        ),
        (
            "a 300-character title",
            "long",
            vtodo("long", &[&format!("SUMMARY:{}", "a".repeat(300))]),
        ),
    ] {
        let response = alice.put(&path(uid), &body).await;
        assert!(
            response.status.is_client_error(),
            "{what}: {} {}",
            response.status,
            response.text()
        );
    }
    assert!(alice.tasks(inbox).await.is_empty());
}

backend_tests!(hostile_bodies_are_refused_and_change_nothing);
