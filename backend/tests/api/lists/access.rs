//! The access matrix: every route, as the list's owner, an editor, a viewer and an outsider,
//! with ids in the path and in the body. The table below is the one in
//! docs/lists-and-sharing.md; each cell runs on fresh lists, so no row depends on another.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::support::app::{TestApp, token};

/// Who sends the request: the list's owner, an editor, a viewer, someone else.
const ROLES: [&str; 4] = ["alice", "erin", "vic", "olga"];

/// What a row needs beyond the fixtures.
#[derive(Clone, Copy, PartialEq)]
enum Setup {
    None,
    /// The shared list is in the trash.
    ListTrashed,
}

/// (method, path, body, setup, [owner, editor, viewer, outsider]). In paths and bodies:
/// `{L}` the shared list, `{P}` the owner's private list, `{B}` a list where the editor and
/// the viewer are both viewers, `{Q}` the outsider's list, `{T}` a task of `{L}`, `{D}` a
/// task of `{L}` in the trash, `{U}` a task of `{P}`, `{O}` the outsider's task, `{I}` an
/// invitation to `{L}`, `{TOKEN}` the secret of an editor invitation to `{L}`; `{TUID}`,
/// `{UUID}`, `{OUID}` the uids of `{T}`, `{U}`, `{O}`; `{AP}` an app password of the owner's.
/// A `/dav/` row is sent with HTTP Basic and an app password of the caller's; `{ME}` is the
/// caller's user id.
#[rustfmt::skip]
const TABLE: &[(&str, &str, &str, Setup, [u16; 4])] = &[
    // The list.
    ("GET", "/api/lists/{L}", "", Setup::None, [200, 200, 200, 404]),
    ("PATCH", "/api/lists/{L}", r#"{"name":"renamed"}"#, Setup::None, [200, 200, 403, 404]),
    ("DELETE", "/api/lists/{L}", "", Setup::None, [204, 403, 403, 404]),
    ("POST", "/api/lists/{L}/restore", "", Setup::ListTrashed, [200, 403, 403, 404]),
    ("POST", "/api/lists/{L}/move", r#"{"after":null}"#, Setup::None, [200, 200, 200, 404]),
    // Members, invitations, transfer.
    ("GET", "/api/lists/{L}/members", "", Setup::None, [200, 200, 200, 404]),
    ("PATCH", "/api/lists/{L}/members/vic", r#"{"role":"viewer"}"#, Setup::None, [200, 403, 403, 404]),
    ("PATCH", "/api/lists/{L}/members/alice", r#"{"role":"editor"}"#, Setup::None, [409, 403, 403, 404]),
    ("DELETE", "/api/lists/{L}/members/vic", "", Setup::None, [204, 403, 204, 404]),
    ("DELETE", "/api/lists/{L}/members/erin", "", Setup::None, [204, 204, 403, 404]),
    ("DELETE", "/api/lists/{L}/members/alice", "", Setup::None, [409, 403, 403, 404]),
    ("POST", "/api/lists/{L}/transfer", r#"{"user_id":"erin"}"#, Setup::None, [200, 403, 403, 404]),
    ("POST", "/api/lists/{L}/transfer", r#"{"user_id":"olga"}"#, Setup::None, [422, 403, 403, 404]),
    ("POST", "/api/lists/{L}/invitations", r#"{"role":"viewer"}"#, Setup::None, [201, 403, 403, 404]),
    ("GET", "/api/lists/{L}/invitations", "", Setup::None, [200, 403, 403, 404]),
    ("DELETE", "/api/lists/{L}/invitations/{I}", "", Setup::None, [204, 403, 403, 404]),
    ("POST", "/api/invitations/accept", r#"{"token":"{TOKEN}"}"#, Setup::None, [409, 200, 200, 200]),
    // Its tasks, named in the path.
    ("GET", "/api/tasks?list_id={L}", "", Setup::None, [200, 200, 200, 404]),
    ("GET", "/api/tasks/{T}", "", Setup::None, [200, 200, 200, 404]),
    ("POST", "/api/tasks", r#"{"title":"x","list_id":{L}}"#, Setup::None, [201, 201, 403, 404]),
    ("PUT", "/api/tasks/{T}", r#"{"title":"x"}"#, Setup::None, [200, 200, 403, 404]),
    ("PATCH", "/api/tasks/{T}", r#"{"title":"x"}"#, Setup::None, [200, 200, 403, 404]),
    ("POST", "/api/tasks/{T}/move", r#"{"after":null}"#, Setup::None, [200, 200, 403, 404]),
    ("DELETE", "/api/tasks/{T}", "", Setup::None, [204, 204, 403, 404]),
    ("POST", "/api/tasks/{D}/restore", "", Setup::None, [200, 200, 403, 404]),
    // Ids in the body: a list, a neighbour, an assignee.
    ("GET", "/api/tasks?list_id={P}", "", Setup::None, [200, 404, 404, 404]),
    ("POST", "/api/tasks", r#"{"title":"x","list_id":{P}}"#, Setup::None, [201, 404, 404, 404]),
    ("POST", "/api/tasks", r#"{"title":"x","list_id":{B}}"#, Setup::None, [201, 403, 403, 404]),
    ("POST", "/api/tasks", r#"{"title":"x","list_id":{Q}}"#, Setup::None, [404, 404, 404, 201]),
    ("PATCH", "/api/tasks/{T}", r#"{"list_id":{P}}"#, Setup::None, [200, 404, 403, 404]),
    ("PUT", "/api/tasks/{T}", r#"{"list_id":{P}}"#, Setup::None, [200, 404, 403, 404]),
    ("PATCH", "/api/tasks/{T}", r#"{"list_id":{B}}"#, Setup::None, [200, 403, 403, 404]),
    ("PATCH", "/api/tasks/{T}", r#"{"list_id":{Q}}"#, Setup::None, [404, 404, 403, 404]),
    ("PATCH", "/api/tasks/{O}", r#"{"list_id":{L}}"#, Setup::None, [404, 404, 404, 404]),
    ("POST", "/api/tasks/{T}/move", r#"{"after":{U}}"#, Setup::None, [422, 404, 404, 404]),
    ("POST", "/api/tasks/{T}/move", r#"{"before":{O}}"#, Setup::None, [404, 404, 404, 404]),
    ("POST", "/api/tasks/{T}/move", r#"{"after":null,"list_id":{P}}"#, Setup::None, [200, 404, 403, 404]),
    ("POST", "/api/tasks/{T}/move", r#"{"after":{U},"list_id":{P}}"#, Setup::None, [200, 404, 404, 404]),
    ("POST", "/api/tasks/{T}/move", r#"{"after":{D},"list_id":{P}}"#, Setup::None, [404, 404, 404, 404]),
    ("POST", "/api/tasks/{T}/move", r#"{"after":null,"list_id":{B}}"#, Setup::None, [200, 403, 403, 404]),
    ("POST", "/api/tasks/{T}/move", r#"{"after":null,"list_id":{Q}}"#, Setup::None, [404, 404, 403, 404]),
    ("POST", "/api/tasks", r#"{"title":"x","list_id":{L},"assignee_id":"vic"}"#, Setup::None, [201, 201, 403, 404]),
    ("POST", "/api/tasks", r#"{"title":"x","list_id":{L},"assignee_id":"olga"}"#, Setup::None, [422, 422, 403, 404]),
    ("PATCH", "/api/tasks/{T}", r#"{"assignee_id":"olga"}"#, Setup::None, [422, 422, 403, 404]),
    ("PATCH", "/api/tasks/{T}", r#"{"assignee_id":"erin"}"#, Setup::None, [200, 200, 403, 404]),
    // A parent, named in the body: a live task of the same list.
    ("POST", "/api/tasks", r#"{"title":"x","parent_id":{T}}"#, Setup::None, [201, 201, 403, 404]),
    ("POST", "/api/tasks", r#"{"title":"x","parent_id":{U}}"#, Setup::None, [201, 404, 404, 404]),
    ("POST", "/api/tasks", r#"{"title":"x","parent_id":{O}}"#, Setup::None, [404, 404, 404, 201]),
    ("POST", "/api/tasks", r#"{"title":"x","parent_id":{D}}"#, Setup::None, [404, 404, 403, 404]),
    ("POST", "/api/tasks", r#"{"title":"x","list_id":{L},"parent_id":{U}}"#, Setup::None, [404, 404, 403, 404]),
    ("PATCH", "/api/tasks/{T}", r#"{"parent_id":{U}}"#, Setup::None, [404, 404, 403, 404]),
    ("PATCH", "/api/tasks/{T}", r#"{"parent_id":{O}}"#, Setup::None, [404, 404, 403, 404]),
    ("PATCH", "/api/tasks/{T}", r#"{"parent_id":{D}}"#, Setup::None, [404, 404, 403, 404]),
    ("PUT", "/api/tasks/{T}", r#"{"parent_id":{U},"list_id":{P}}"#, Setup::None, [200, 404, 403, 404]),
    ("GET", "/api/tasks?parent_id={U}", "", Setup::None, [200, 200, 200, 200]),
    // Calendar apps (signed in with an app password of their own; `{ME}` is the caller).
    ("PROPFIND", "/dav/calendars/{ME}/{L}/", "", Setup::None, [207, 207, 207, 404]),
    ("PROPFIND", "/dav/calendars/{ME}/{P}/", "", Setup::None, [207, 404, 404, 404]),
    ("PROPFIND", "/dav/calendars/alice/{L}/", "", Setup::None, [207, 404, 404, 404]),
    ("GET", "/dav/calendars/{ME}/{L}/{TUID}.ics", "", Setup::None, [200, 200, 200, 404]),
    ("GET", "/dav/calendars/{ME}/{L}/{UUID}.ics", "", Setup::None, [404, 404, 404, 404]),
    ("PUT", "/dav/calendars/{ME}/{L}/{TUID}.ics", "{ICS:TUID}", Setup::None, [204, 204, 403, 404]),
    ("PUT", "/dav/calendars/{ME}/{L}/new.ics", "{ICS:new}", Setup::None, [201, 201, 403, 404]),
    ("PUT", "/dav/calendars/{ME}/{P}/new.ics", "{ICS:new}", Setup::None, [201, 404, 404, 404]),
    ("PUT", "/dav/calendars/{ME}/{B}/new.ics", "{ICS:new}", Setup::None, [201, 403, 403, 404]),
    ("PUT", "/dav/calendars/{ME}/{L}/{UUID}.ics", "{ICS:UUID}", Setup::None, [201, 201, 403, 404]),
    ("DELETE", "/dav/calendars/{ME}/{L}/{TUID}.ics", "", Setup::None, [204, 204, 403, 404]),
    ("DELETE", "/dav/calendars/{ME}/{L}/", "", Setup::None, [204, 403, 403, 404]),
    ("REPORT", "/dav/calendars/{ME}/{L}/", "{SYNC}", Setup::None, [207, 207, 207, 404]),
    ("REPORT", "/dav/calendars/{ME}/{Q}/", "{SYNC}", Setup::None, [404, 404, 404, 207]),
    ("MKCALENDAR", "/dav/calendars/{ME}/made/", "", Setup::None, [201, 201, 201, 201]),
    // App passwords: each user's own.
    ("GET", "/api/app-passwords", "", Setup::None, [200, 200, 200, 200]),
    ("DELETE", "/api/app-passwords/{AP}", "", Setup::None, [204, 404, 404, 404]),
];

/// A sync report from the start.
const SYNC: &str = r#"<d:sync-collection xmlns:d="DAV:"><d:sync-token/><d:sync-level>1</d:sync-level><d:prop><d:getetag/></d:prop></d:sync-collection>"#;

/// The body of a CalDAV row: `{ICS:X}` is a VTODO whose UID is `X` (a placeholder or a
/// literal), with a parent in another list (ignored: a parent must be in the same list),
/// `{SYNC}` a sync report.
fn dav_body(fixture: &Fixture, body: &str) -> String {
    match body
        .strip_prefix("{ICS:")
        .and_then(|rest| rest.strip_suffix('}'))
    {
        Some(uid) => {
            let uid = fixture.fill(&format!("{{{uid}}}"));
            let uid = match uid.starts_with('{') {
                true => uid.trim_matches(|c| c == '{' || c == '}').to_owned(),
                false => uid,
            };
            format!(
                "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//EN\r\nBEGIN:VTODO\r\n\
                 UID:{uid}\r\nSUMMARY:written\r\nRELATED-TO;RELTYPE=PARENT:{}\r\n\
                 END:VTODO\r\nEND:VCALENDAR\r\n",
                fixture.fill("{OUID}")
            )
        }
        None => body.replace("{SYNC}", SYNC),
    }
}

/// The ids a row can name, made afresh for each cell.
struct Fixture {
    ids: Vec<(&'static str, String)>,
}

impl Fixture {
    async fn new(app: &TestApp) -> Fixture {
        let (alice, olga) = (token("alice"), token("olga"));
        let list = async |user: &str, name: &str| {
            let response = app
                .post("/api/lists", &token(user), &json!({"name": name}))
                .await;
            assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
            response.json()["id"].clone()
        };
        let join = async |list: &Value, user: &str, role: &str| {
            let invitation = app
                .post(
                    &format!("/api/lists/{list}/invitations"),
                    &alice,
                    &json!({"role": role}),
                )
                .await
                .json();
            let accepted = app
                .post(
                    "/api/invitations/accept",
                    &token(user),
                    &json!({"token": invitation["token"]}),
                )
                .await;
            assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.text());
            invitation
        };
        let shared = list("alice", "shared").await;
        join(&shared, "erin", "editor").await;
        join(&shared, "vic", "viewer").await;
        let private = list("alice", "private").await;
        let both_viewers = list("alice", "viewers").await;
        join(&both_viewers, "erin", "viewer").await;
        join(&both_viewers, "vic", "viewer").await;
        let outsiders = list("olga", "olga's").await;
        let task = |list: Value, user: String| async move {
            app.create_task(&user, json!({"title": "t", "list_id": list}))
                .await["id"]
                .clone()
        };
        let in_shared = task(shared.clone(), alice.clone()).await;
        let trashed = task(shared.clone(), alice.clone()).await;
        app.delete(&format!("/api/tasks/{trashed}"), &alice).await;
        let in_private = task(private.clone(), alice.clone()).await;
        let outsiders_task = task(outsiders.clone(), olga.clone()).await;
        let uid = async |task: &Value, user: &str| {
            app.get(&format!("/api/tasks/{task}"), &token(user))
                .await
                .json()["uid"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        };
        let (shared_uid, private_uid, outsiders_uid) = (
            uid(&in_shared, "alice").await,
            uid(&in_private, "alice").await,
            uid(&outsiders_task, "olga").await,
        );

        let spare = app
            .post(
                &format!("/api/lists/{shared}/invitations"),
                &alice,
                &json!({"role": "viewer"}),
            )
            .await
            .json();
        let token_invitation = app
            .post(
                &format!("/api/lists/{shared}/invitations"),
                &alice,
                &json!({"role": "editor", "max_uses": 5}),
            )
            .await
            .json();
        Fixture {
            ids: vec![
                ("{L}", shared.to_string()),
                ("{P}", private.to_string()),
                ("{B}", both_viewers.to_string()),
                ("{Q}", outsiders.to_string()),
                ("{T}", in_shared.to_string()),
                ("{D}", trashed.to_string()),
                ("{U}", in_private.to_string()),
                ("{O}", outsiders_task.to_string()),
                ("{I}", spare["id"].to_string()),
                ("{TUID}", shared_uid),
                ("{UUID}", private_uid),
                ("{OUID}", outsiders_uid),
                (
                    "{TOKEN}",
                    token_invitation["token"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                ),
            ],
        }
    }

    fn fill(&self, template: &str) -> String {
        self.ids
            .iter()
            .fold(template.to_owned(), |text, (name, id)| {
                text.replace(name, id)
            })
    }
}

async fn every_route_answers_each_role_as_the_table_says(app: &TestApp) {
    let mut wrong = Vec::new();
    for (method, path, body, setup, expected) in TABLE {
        for (user, expected) in ROLES.iter().zip(expected) {
            let fixture = Fixture::new(app).await;
            if *setup == Setup::ListTrashed {
                let trashed = app
                    .delete(&fixture.fill("/api/lists/{L}"), &token("alice"))
                    .await;
                assert_eq!(trashed.status, StatusCode::NO_CONTENT);
            }
            let mut path = fixture.fill(&path.replace("{ME}", user));
            if path.contains("{AP}") {
                // Alice's app password, made for the rows that name it.
                let made = app
                    .post(
                        "/api/app-passwords",
                        &token("alice"),
                        &json!({"name": "alice's"}),
                    )
                    .await
                    .json();
                path = path.replace("{AP}", &made["id"].to_string());
            }
            let request = app.request(
                Method::from_bytes(method.as_bytes()).expect("a method"),
                &path,
            );
            let mut request = match path.starts_with("/dav/") {
                true => request.header("authorization", &basic(app, user).await),
                false => request.token(&token(user)),
            };
            if path.starts_with("/dav/") {
                request = request
                    .header("content-type", "text/calendar")
                    .header("depth", "1")
                    .body(dav_body(&fixture, body));
            } else if !body.is_empty() {
                let content_type = match *method {
                    "PATCH" => "application/merge-patch+json",
                    _ => "application/json",
                };
                request = request
                    .header("content-type", content_type)
                    .body(fixture.fill(body));
            }
            let response = request.send().await;
            if response.status.as_u16() != *expected {
                wrong.push(format!(
                    "{method} {path} {body} as {user}: expected {expected}, got {} {}",
                    response.status,
                    response.text()
                ));
            }
            if response.status.is_client_error() {
                // Every refusal is the API's JSON error.
                response.assert_error(response.status);
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} cells differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// HTTP Basic with a new app password of `user`'s.
async fn basic(app: &TestApp, user: &str) -> String {
    use base64::Engine;
    let created = app
        .post(
            "/api/app-passwords",
            &token(user),
            &json!({"name": "matrix"}),
        )
        .await
        .json();
    let credentials = format!(
        "{user}:{}",
        created["password"].as_str().unwrap_or_default()
    );
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials)
    )
}

/// A refused write changes nothing: the outsider's and the viewer's attempts leave the
/// shared list's tasks exactly as they were.
async fn refused_writes_change_nothing(app: &TestApp) {
    let fixture = Fixture::new(app).await;
    let alice = token("alice");
    let before = app
        .get(&fixture.fill("/api/tasks?list_id={L}"), &alice)
        .await
        .json();
    for (method, path, body, _, expected) in TABLE {
        if *method == "GET" || !(path.contains("/tasks") || path.starts_with("/dav/")) {
            continue;
        }
        for (user, expected) in ROLES.iter().zip(expected).skip(2) {
            if *expected < 400 {
                continue;
            }
            let request = app.request(
                Method::from_bytes(method.as_bytes()).expect("a method"),
                &fixture.fill(&path.replace("{ME}", user)),
            );
            let mut request = match path.starts_with("/dav/") {
                true => request.header("authorization", &basic(app, user).await),
                false => request.token(&token(user)),
            };
            if path.starts_with("/dav/") {
                request = request
                    .header("content-type", "text/calendar")
                    .header("depth", "1")
                    .body(dav_body(&fixture, body));
            } else if !body.is_empty() {
                request = request
                    .header("content-type", "application/json")
                    .body(fixture.fill(body));
            }
            let response = request.send().await;
            assert!(
                response.status.is_client_error(),
                "{method} {path} as {user}"
            );
        }
    }
    let after = app
        .get(&fixture.fill("/api/tasks?list_id={L}"), &alice)
        .await
        .json();
    assert_eq!(before, after);
}

backend_tests!(
    every_route_answers_each_role_as_the_table_says,
    refused_writes_change_nothing,
);
