//! Calendar clients (docs/calendar-apps.md): app passwords, discovery, the objects and their
//! round trip, sync reports, queries, and bodies an attacker would send.

mod app_passwords;
mod concurrency;
mod discovery;
mod hostile;
mod objects;
mod reports;

use axum::http::{Method, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::support::app::{TestApp, TestResponse, token};

/// A user signed in to `/dav/` with a fresh app password.
pub struct Client<'a> {
    pub app: &'a TestApp,
    pub user: String,
    pub basic: String,
    pub password_id: i64,
}

impl<'a> Client<'a> {
    pub async fn new(app: &'a TestApp, user: &str) -> Client<'a> {
        let created = app
            .post("/api/app-passwords", &token(user), &json!({"name": "test"}))
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
        let created = created.json();
        assert_eq!(created["username"], user);
        let password = created["password"].as_str().expect("a password");
        Client {
            app,
            user: user.to_owned(),
            basic: format!("Basic {}", STANDARD.encode(format!("{user}:{password}"))),
            password_id: created["id"].as_i64().expect("an id"),
        }
    }

    /// Any method on a `/dav/` path, with an XML or iCalendar body and extra headers.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> TestResponse {
        let method = Method::from_bytes(method.as_bytes()).expect("a method");
        let mut request = self
            .app
            .request(method, path)
            .header("authorization", &self.basic);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.body(body.to_owned()).send().await
    }

    pub async fn propfind(&self, path: &str, depth: &str, body: &str) -> TestResponse {
        self.send("PROPFIND", path, &[("depth", depth)], body).await
    }

    pub async fn report(&self, path: &str, body: &str) -> TestResponse {
        self.send("REPORT", path, &[("depth", "1")], body).await
    }

    pub async fn put(&self, path: &str, ics: &str) -> TestResponse {
        self.send("PUT", path, &[("content-type", "text/calendar")], ics)
            .await
    }

    /// The caller's calendar for `list`.
    pub fn calendar(&self, list: i64) -> String {
        format!("/dav/calendars/{}/{list}/", self.user)
    }

    /// The caller's Inbox id (made if need be).
    pub async fn inbox(&self) -> i64 {
        let lists = self.app.get("/api/lists", &token(&self.user)).await.json();
        lists
            .as_array()
            .expect("lists")
            .iter()
            .find(|list| list["is_inbox"] == json!(true))
            .and_then(|list| list["id"].as_i64())
            .expect("an Inbox")
    }

    /// The caller's tasks of `list`, by the JSON API.
    pub async fn tasks(&self, list: i64) -> Vec<Value> {
        let response = self
            .app
            .get(
                &format!("/api/tasks?list_id={list}&limit=100"),
                &token(&self.user),
            )
            .await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        response.json().as_array().expect("tasks").clone()
    }
}

/// A VTODO in a VCALENDAR, CRLF-terminated, with `lines` inside the VTODO.
pub fn vtodo(uid: &str, lines: &[&str]) -> String {
    let mut text = String::from(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//Client//EN\r\nBEGIN:VTODO\r\n",
    );
    text.push_str(&format!("UID:{uid}\r\nDTSTAMP:20261201T100000Z\r\n"));
    for line in lines {
        text.push_str(line);
        text.push_str("\r\n");
    }
    text.push_str("END:VTODO\r\nEND:VCALENDAR\r\n");
    text
}
