//! Tasks as VTODOs: written over CalDAV, read over the API, and back; what the service does
//! not model comes back unchanged; conditions, roles and the change feed hold.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{Client, vtodo};
use crate::backend_tests;
use crate::support::app::{TestApp, token};

/// A new list of `owner`'s shared with `member` in `role`; its id.
pub async fn share(app: &TestApp, owner: &str, member: &str, role: &str) -> i64 {
    let list = app
        .post("/api/lists", &token(owner), &json!({"name": "Shared"}))
        .await
        .json();
    let id = list["id"].as_i64().expect("a list id");
    let invitation = app
        .post(
            &format!("/api/lists/{id}/invitations"),
            &token(owner),
            &json!({"role": role}),
        )
        .await
        .json();
    let accepted = app
        .post(
            "/api/invitations/accept",
            &token(member),
            &json!({"token": invitation["token"]}),
        )
        .await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.text());
    id
}

const ALARM: &str = "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:Reminder\r\n\
                     TRIGGER;RELATED=END:-PT15M\r\nEND:VALARM";

async fn a_vtodo_round_trips_through_the_api(app: &TestApp) {
    let alice = Client::new(app, "alice").await;
    let list = alice.inbox().await;
    let path = format!("{}weekly-review.ics", alice.calendar(list));
    let ics = vtodo(
        "weekly-review",
        &[
            "SUMMARY:Weekly review\\, with notes",
            "DESCRIPTION:Line one\\nLine two",
            "DUE;TZID=Europe/Berlin:20261207T090000",
            "PRIORITY:3",
            "CATEGORIES:work,home",
            "RRULE:FREQ=WEEKLY;BYDAY=MO",
            "X-CLIENT-FLAG;X-PARAM=1:kept as is",
            ALARM,
        ],
    );
    let created = alice.put(&path, &ics).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let tasks = alice.tasks(list).await;
    let task = tasks
        .iter()
        .find(|task| task["uid"] == "weekly-review")
        .expect("the task");
    assert_eq!(task["title"], "Weekly review, with notes");
    assert_eq!(task["description"], "Line one\nLine two");
    assert_eq!(task["due_at"], "2026-12-07T08:00:00Z");
    assert_eq!(task["priority"], "high");
    assert_eq!(task["tags"], json!(["work", "home"]));
    assert_eq!(task["recurrence"]["rrule"], "FREQ=WEEKLY;BYDAY=MO");
    assert_eq!(task["recurrence"]["time_zone"], "Europe/Berlin");

    // What was written comes back, the unmodelled parts unchanged.
    let read = alice.send("GET", &path, &[], "").await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.header("etag"), created.header("etag"));
    let text = read.text();
    for line in [
        "PRIORITY:3",
        "DUE;TZID=Europe/Berlin:20261207T090000",
        "X-CLIENT-FLAG;X-PARAM=1:kept as is",
        ALARM,
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }

    // A change through the API shows; the alarm stays.
    let url = format!("/api/tasks/{}", task["id"]);
    let patched = app
        .patch(
            &url,
            &token("alice"),
            &json!({"title": "Review", "priority": "low"}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK);
    let text = alice.send("GET", &path, &[], "").await.text();
    assert!(text.contains("SUMMARY:Review\r\n"), "{text}");
    assert!(text.contains("PRIORITY:9\r\n"), "{text}");
    assert!(text.contains(ALARM), "{text}");

    // Completing over CalDAV advances the repeating task, as completing over the API does.
    let edited = text.replace("BEGIN:VTODO\r\n", "BEGIN:VTODO\r\nSTATUS:COMPLETED\r\n");
    let completed = alice.put(&path, &edited).await;
    assert_eq!(
        completed.status,
        StatusCode::NO_CONTENT,
        "{}",
        completed.text()
    );
    assert!(
        completed.header("etag").is_none(),
        "the server changed it: no ETag"
    );
    let after = app.get(&url, &token("alice")).await.json();
    assert_eq!(after["due_at"], "2026-12-14T08:00:00Z");
    assert_eq!(after["status"], "pending");
    assert_eq!(after["completed_count"], 1);
}

async fn writes_are_conditional_and_follow_roles(app: &TestApp) {
    let alice = Client::new(app, "alice").await;
    let bob = Client::new(app, "bob").await;
    let list = share(app, "alice", "bob", "viewer").await;
    let path = format!("{}t1.ics", alice.calendar(list));
    let first = alice.put(&path, &vtodo("t1", &["SUMMARY:One"])).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let etag = first.header("etag").expect("an ETag").to_owned();

    let again = alice
        .send(
            "PUT",
            &path,
            &[("if-none-match", "*")],
            &vtodo("t1", &["SUMMARY:Two"]),
        )
        .await;
    assert_eq!(again.status, StatusCode::PRECONDITION_FAILED);
    let second = alice
        .send(
            "PUT",
            &path,
            &[("if-match", &etag)],
            &vtodo("t1", &["SUMMARY:Two"]),
        )
        .await;
    assert_eq!(second.status, StatusCode::NO_CONTENT, "{}", second.text());
    let stale = alice
        .send(
            "PUT",
            &path,
            &[("if-match", &etag)],
            &vtodo("t1", &["SUMMARY:Three"]),
        )
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    // One UID per calendar, whatever the name.
    let twice = alice
        .put(
            &format!("{}other.ics", alice.calendar(list)),
            &vtodo("t1", &["SUMMARY:x"]),
        )
        .await;
    assert_eq!(twice.status, StatusCode::CONFLICT);

    // The viewer reads, and cannot write or delete.
    let bobs = format!("{}t1.ics", bob.calendar(list));
    let read = bob.send("GET", &bobs, &[], "").await;
    assert_eq!(read.status, StatusCode::OK);
    assert!(read.text().contains("SUMMARY:Two"));
    let put = bob.put(&bobs, &vtodo("t1", &["SUMMARY:Bob's"])).await;
    assert_eq!(put.status, StatusCode::FORBIDDEN);
    let new = bob
        .put(
            &format!("{}t2.ics", bob.calendar(list)),
            &vtodo("t2", &["SUMMARY:New"]),
        )
        .await;
    assert_eq!(new.status, StatusCode::FORBIDDEN);
    assert_eq!(
        bob.send("DELETE", &bobs, &[], "").await.status,
        StatusCode::FORBIDDEN
    );
    // An outsider's write is a 404.
    let carol = Client::new(app, "carol").await;
    let foreign = carol
        .put(
            &format!("{}t3.ics", carol.calendar(list)),
            &vtodo("t3", &["SUMMARY:x"]),
        )
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);

    let deleted = alice.send("DELETE", &path, &[], "").await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(
        alice.send("GET", &path, &[], "").await.status,
        StatusCode::NOT_FOUND
    );
    assert!(alice.tasks(list).await.is_empty());
    // Written again under the same uid: the trashed task is back.
    let back = alice.put(&path, &vtodo("t1", &["SUMMARY:Back"])).await;
    assert_eq!(back.status, StatusCode::CREATED, "{}", back.text());
    assert_eq!(alice.tasks(list).await[0]["title"], "Back");
}

async fn subtasks_and_changes_show_on_both_sides(app: &TestApp) {
    let alice = Client::new(app, "alice").await;
    let list = alice.inbox().await;
    let feed = |cursor: String| async move {
        app.get(
            &format!("/api/tasks/changes?cursor={cursor}"),
            &token("alice"),
        )
        .await
        .json()
    };
    let start: Value = feed("0".into()).await;
    let cursor = start["next_cursor"].as_str().expect("a cursor").to_owned();
    let calendar = alice.calendar(list);
    let parent = alice
        .put(
            &format!("{calendar}p.ics"),
            &vtodo("p", &["SUMMARY:Parent"]),
        )
        .await;
    assert_eq!(parent.status, StatusCode::CREATED);
    let child = alice
        .put(
            &format!("{calendar}c.ics"),
            &vtodo("c", &["SUMMARY:Child", "RELATED-TO;RELTYPE=PARENT:p"]),
        )
        .await;
    assert_eq!(child.status, StatusCode::CREATED);
    let tasks = alice.tasks(list).await;
    let id_of = |uid: &str| {
        tasks
            .iter()
            .find(|task| task["uid"] == uid)
            .map(|task| task["id"].clone())
            .expect("the task")
    };
    let child_task = tasks.iter().find(|task| task["uid"] == "c").expect("child");
    assert_eq!(child_task["parent_id"], id_of("p"));
    // Both writes are in the feed.
    let page = feed(cursor).await;
    let uids: Vec<&Value> = page["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|change| &change["task"]["uid"])
        .collect();
    assert_eq!(uids, [&json!("p"), &json!("c")]);
    // A subtask made over the API shows its parent over CalDAV.
    let made = app
        .create_task(
            &token("alice"),
            json!({"title": "API child", "parent_id": id_of("p"), "uid": "api-child"}),
        )
        .await;
    let text = alice
        .send("GET", &format!("{calendar}api-child.ics"), &[], "")
        .await
        .text();
    assert!(text.contains("RELATED-TO;RELTYPE=PARENT:p\r\n"), "{text}");
    let _ = made;
}

/// Apps name resources and calendars as they like (vdirsyncer: a UUID unlike the UID; a
/// calendar made with MKCALENDAR: the app's own segment): each stays where the app put it.
async fn resources_and_calendars_stay_where_the_app_put_them(app: &TestApp) {
    let alice = Client::new(app, "alice").await;
    let made = alice
        .send(
            "MKCALENDAR",
            "/dav/calendars/alice/0f1e-work/",
            &[],
            r#"<c:mkcalendar xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"
                xmlns:a="http://apple.com/ns/ical/"><d:set><d:prop>
                <d:displayname>Work</d:displayname><a:calendar-color>#FF8800FF</a:calendar-color>
                </d:prop></d:set></c:mkcalendar>"#,
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.text());
    assert_eq!(
        made.header("location"),
        Some("/dav/calendars/alice/0f1e-work/")
    );
    let again = alice
        .send("MKCALENDAR", "/dav/calendars/alice/0f1e-work/", &[], "")
        .await;
    assert_eq!(again.status, StatusCode::METHOD_NOT_ALLOWED);
    let lists = app.get("/api/lists", &token("alice")).await.json();
    let work = lists
        .as_array()
        .expect("lists")
        .iter()
        .find(|list| list["name"] == "Work")
        .expect("the list");
    assert_eq!(work["color"], "#ff8800");
    let id = work["id"].as_i64().expect("an id");

    let base = "/dav/calendars/alice/0f1e-work/";
    let path = format!("{base}5c1a.ics");
    let put = alice
        .put(&path, &vtodo("abc@laptop", &["SUMMARY:Named"]))
        .await;
    assert_eq!(put.status, StatusCode::CREATED, "{}", put.text());
    assert_eq!(alice.tasks(id).await[0]["uid"], "abc@laptop");
    let read = alice.send("GET", &path, &[], "").await;
    assert_eq!(read.status, StatusCode::OK);
    assert!(read.text().contains("UID:abc@laptop"));
    // The same calendar by its id serves the same resource.
    let by_id = alice
        .send("GET", &format!("{}5c1a.ics", alice.calendar(id)), &[], "")
        .await;
    assert_eq!(by_id.status, StatusCode::OK);
    // Listings name it where the app put it.
    let home = alice
        .propfind("/dav/calendars/alice/", "1", "")
        .await
        .text();
    assert!(home.contains(&format!("<d:href>{base}</d:href>")), "{home}");
    let listing = alice.propfind(base, "1", "").await.text();
    assert!(
        listing.contains(&format!("<d:href>{path}</d:href>")),
        "{listing}"
    );
    // A UID cannot move to another resource, nor change under one.
    let moved = alice
        .put(
            &format!("{base}other.ics"),
            &vtodo("abc@laptop", &["SUMMARY:x"]),
        )
        .await;
    assert_eq!(moved.status, StatusCode::CONFLICT);
    let changed = alice.put(&path, &vtodo("another", &["SUMMARY:x"])).await;
    assert_eq!(changed.status, StatusCode::BAD_REQUEST);
    // Gone, it is reported under its name.
    let sync = r#"<d:sync-collection xmlns:d="DAV:"><d:sync-token/><d:prop><d:getetag/></d:prop></d:sync-collection>"#;
    let first = alice.report(base, sync).await.text();
    let token_value = first
        .split("<d:sync-token>")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("a token")
        .to_owned();
    assert_eq!(
        alice.send("DELETE", &path, &[], "").await.status,
        StatusCode::NO_CONTENT
    );
    let next = alice
        .report(
            base,
            &sync.replace(
                "<d:sync-token/>",
                &format!("<d:sync-token>{token_value}</d:sync-token>"),
            ),
        )
        .await
        .text();
    assert!(
        next.contains(&format!(
            "<d:href>{path}</d:href><d:status>HTTP/1.1 404 Not Found"
        )),
        "{next}"
    );
    // Deleting the calendar deletes the list.
    assert_eq!(
        alice.send("DELETE", base, &[], "").await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        alice.propfind(base, "0", "").await.status,
        StatusCode::NOT_FOUND
    );
}

async fn a_subtask_written_before_its_parent_is_linked_when_it_arrives(app: &TestApp) {
    let alice = Client::new(app, "alice").await;
    let list = alice.inbox().await;
    let calendar = alice.calendar(list);
    let child = alice
        .put(
            &format!("{calendar}kid.ics"),
            &vtodo("kid", &["SUMMARY:Child", "RELATED-TO:mum"]),
        )
        .await;
    assert_eq!(child.status, StatusCode::CREATED);
    // Until the parent is there, the child's RELATED-TO is kept as written.
    let text = alice
        .send("GET", &format!("{calendar}kid.ics"), &[], "")
        .await
        .text();
    assert!(text.contains("RELATED-TO:mum\r\n"), "{text}");
    let parent = alice
        .put(
            &format!("{calendar}mum.ics"),
            &vtodo("mum", &["SUMMARY:Parent"]),
        )
        .await;
    assert_eq!(parent.status, StatusCode::CREATED);
    let tasks = alice.tasks(list).await;
    let of = |uid: &str| {
        tasks
            .iter()
            .find(|task| task["uid"] == uid)
            .expect("a task")
    };
    assert_eq!(of("kid")["parent_id"], of("mum")["id"]);
    // An event is not a task.
    let event = alice
        .put(
            &format!("{calendar}event.ics"),
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:event\r\n\
             DTSTART:20261207T090000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        )
        .await;
    assert_eq!(event.status, StatusCode::FORBIDDEN);
}

backend_tests!(
    resources_and_calendars_stay_where_the_app_put_them,
    a_vtodo_round_trips_through_the_api,
    writes_are_conditional_and_follow_roles,
    subtasks_and_changes_show_on_both_sides,
    a_subtask_written_before_its_parent_is_linked_when_it_arrives,
);
