//! Running many instances (docs/operating.md, "Many instances"): two copies of the binary on
//! one PostgreSQL, as behind a load balancer. What one records (idempotency keys, versions, the
//! change feed), the other honours, and a stream open on one hears the writes made through the
//! other.

use crate::support::app::{PgTestDatabase, SECRET, token};
use crate::support::spawned::{RawResponse, Server, exchange};
use crate::support::sse;

mod postgres {
    use super::*;

    /// `DATABASE_URL` for the test's database: through the pooler when the suite runs
    /// behind one.
    fn database_url(database: &PgTestDatabase) -> (String, &'static str) {
        let direct = database.url_with("");
        match std::env::var("TEST_POOLER_ADDRESS") {
            Ok(pooler) => {
                let name = direct
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .trim_end_matches('?');
                (format!("postgres://postgres@{pooler}/{name}"), "on")
            }
            Err(_) => (direct, "auto"),
        }
    }

    fn send(
        port: u16,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> RawResponse {
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nConnection: close\r\n",
            token("alice")
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        if !body.is_empty() {
            request.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        request.push_str("\r\n");
        request.push_str(body);
        exchange(port, &request)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(not(test_database), ignore = "needs TEST_DATABASE_URL")]
    async fn what_one_instance_records_the_other_honours() {
        let database = PgTestDatabase::create().await;
        let (url, pooler) = database_url(&database);
        let dir = tempfile::tempdir().expect("tempdir");
        let env = [
            ("DATABASE_URL", url.as_str()),
            ("DB_TRANSACTION_POOLER", pooler),
            ("BETTER_AUTH_SECRET", SECRET),
        ];
        // The first instance migrates; the second starts on the migrated database.
        let a = Server::start(dir.path(), &env);
        let b = Server::start(dir.path(), &env);

        let body = r#"{"title":"sent twice"}"#;
        let key = [("Idempotency-Key", "one-request")];
        let first = send(a.port, "POST", "/api/tasks", &key, body);
        assert_eq!(first.status, 201, "{}", first.body);
        let again = send(b.port, "POST", "/api/tasks", &key, body);
        assert_eq!(again.status, 201, "{}", again.body);
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
        assert_eq!(again.body, first.body);
        assert_eq!(again.header("location"), first.header("location"));
        let list = send(b.port, "GET", "/api/tasks", &[], "");
        let tasks: serde_json::Value = serde_json::from_str(&list.body).expect("json");
        assert_eq!(tasks.as_array().map(Vec::len), Some(1), "one task, not two");

        // An ETag from A is honoured by B, and a stale one refused by both.
        let location = first.header("location").expect("location").to_owned();
        let etag = first.header("etag").expect("etag").to_owned();
        let cached = send(b.port, "GET", &location, &[("If-None-Match", &etag)], "");
        assert_eq!(cached.status, 304);
        let patched = send(
            b.port,
            "PATCH",
            &location,
            &[("If-Match", &etag)],
            r#"{"priority":"low"}"#,
        );
        assert_eq!(patched.status, 200, "{}", patched.body);
        for port in [a.port, b.port] {
            let stale = send(
                port,
                "PATCH",
                &location,
                &[("If-Match", &etag)],
                r#"{"priority":"high"}"#,
            );
            assert_eq!(stale.status, 412, "{}", stale.body);
            assert_eq!(stale.header("etag"), patched.header("etag"));
        }
        // The change feed is the same from either.
        let from_a = send(a.port, "GET", "/api/tasks/changes", &[], "").body;
        let from_b = send(b.port, "GET", "/api/tasks/changes", &[], "").body;
        assert_eq!(from_a, from_b);
        a.stop();
        b.stop();
    }

    /// 1,000 changes from 4 writers through instance B reach a stream open on instance A,
    /// each once and in commit order: by the poll alone, or with `LISTEN` as well.
    async fn a_stream_on_one_instance_hears_every_write_through_another(listen: bool) {
        let database = PgTestDatabase::create().await;
        let (url, pooler) = database_url(&database);
        // LISTEN needs a session of its own: always the direct URL, never the pooler.
        let direct = database.url_with("");
        let dir = tempfile::tempdir().expect("tempdir");
        let mut env = vec![
            ("DATABASE_URL", url.as_str()),
            ("DB_TRANSACTION_POOLER", pooler),
            ("BETTER_AUTH_SECRET", SECRET),
            ("SHUTDOWN_GRACE_SECONDS", "0"),
        ];
        if listen {
            env.push(("DATABASE_LISTEN_URL", direct.as_str()));
        }
        let a = Server::start(dir.path(), &env);
        let b = Server::start(dir.path(), &env);
        let mut stream = sse::open(
            &format!("http://127.0.0.1:{}", a.port),
            &token("alice"),
            None,
        )
        .await
        .expect("opens");

        let client = reqwest::Client::new();
        let mut writers = Vec::new();
        for writer in 0..4 {
            let client = client.clone();
            let url = format!("http://127.0.0.1:{}/api/tasks", b.port);
            writers.push(tokio::spawn(async move {
                let mut ids = Vec::new();
                for n in 0..250 {
                    let response = client
                        .post(&url)
                        .bearer_auth(token("alice"))
                        .header("content-type", "application/json")
                        .body(serde_json::json!({"title": format!("{writer}-{n}")}).to_string())
                        .send()
                        .await
                        .expect("answered");
                    assert_eq!(response.status(), 201);
                    let body = response.text().await.expect("a body");
                    let task: serde_json::Value = serde_json::from_str(&body).expect("json");
                    ids.push(task["id"].as_i64().expect("an id"));
                }
                ids
            }));
        }
        let mut written = Vec::new();
        for writer in writers {
            written.extend(writer.await.expect("the writer finished"));
        }
        let events = stream
            .events(1000, std::time::Duration::from_secs(30))
            .await;
        let cursors: Vec<i64> = events.iter().map(|(id, _, _)| *id).collect();
        assert!(
            cursors.windows(2).all(|pair| pair[0] < pair[1]),
            "events out of commit order"
        );
        let mut heard: Vec<i64> = events
            .iter()
            .map(|(_, op, data)| {
                assert_eq!(op, "upsert");
                data["task"]["id"].as_i64().expect("a task id")
            })
            .collect();
        heard.sort_unstable();
        written.sort_unstable();
        assert_eq!(heard, written, "every write heard exactly once");
        let (_, log) = a.stop();
        b.stop();
        let confirmed = log
            .iter()
            .any(|line| line.contains("listening for other instances' writes (LISTEN)"));
        assert_eq!(
            confirmed, listen,
            "the log says whether LISTEN is on: {log:#?}"
        );
        // The migrator's notices on every start after the first are noise at INFO.
        assert!(
            !log.iter().any(|line| line.contains("already exists")),
            "a PostgreSQL notice at INFO: {log:#?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(not(test_database), ignore = "needs TEST_DATABASE_URL")]
    async fn a_stream_hears_another_instances_writes_by_polling() {
        a_stream_on_one_instance_hears_every_write_through_another(false).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(not(test_database), ignore = "needs TEST_DATABASE_URL")]
    async fn a_stream_hears_another_instances_writes_by_listening() {
        a_stream_on_one_instance_hears_every_write_through_another(true).await;
    }

    /// Another member's write through instance B reaches a member's stream on instance A; removed
    /// through B, the member hears it on A within a second, and nothing of the list afterwards:
    /// each read of the feed checks membership again.
    mod revocation {
        use std::time::{Duration, Instant};

        use super::database_url;

        use serde_json::{Value, json};

        use crate::support::app::{PgTestDatabase, SECRET, token};
        use crate::support::spawned::Server;
        use crate::support::sse::{self, Frame};

        async fn call(
            port: u16,
            method: reqwest::Method,
            path: &str,
            user: &str,
            body: Value,
        ) -> Value {
            let response = reqwest::Client::new()
                .request(method, format!("http://127.0.0.1:{port}{path}"))
                .bearer_auth(token(user))
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .expect("answered");
            assert!(
                response.status().is_success(),
                "{path}: {}",
                response.status()
            );
            let text = response.text().await.unwrap_or_default();
            serde_json::from_str(&text).unwrap_or(Value::Null)
        }

        async fn a_removed_member_hears_it_at_once_and_nothing_after(listen: bool) {
            let database = PgTestDatabase::create().await;
            let (url, pooler) = database_url(&database);
            // LISTEN needs a session of its own: always the direct URL, never the pooler.
            let direct = database.url_with("");
            let dir = tempfile::tempdir().expect("tempdir");
            let mut env = vec![
                ("DATABASE_URL", url.as_str()),
                ("DB_TRANSACTION_POOLER", pooler),
                ("BETTER_AUTH_SECRET", SECRET),
                ("SHUTDOWN_GRACE_SECONDS", "0"),
                // Comments often, so that a quiet stream is seen to be quiet, not stuck.
                ("EVENTS_HEARTBEAT_MS", "200"),
            ];
            if listen {
                env.push(("DATABASE_LISTEN_URL", direct.as_str()));
            }
            let a = Server::start(dir.path(), &env);
            let b = Server::start(dir.path(), &env);
            use reqwest::Method;
            let list = call(
                b.port,
                Method::POST,
                "/api/lists",
                "alice",
                json!({"name": "Shared"}),
            )
            .await;
            let invitation = call(
                b.port,
                Method::POST,
                &format!("/api/lists/{}/invitations", list["id"]),
                "alice",
                json!({"role": "viewer"}),
            )
            .await;
            call(
                b.port,
                Method::POST,
                "/api/invitations/accept",
                "bob",
                json!({"token": invitation["token"]}),
            )
            .await;
            let task = call(
                b.port,
                Method::POST,
                "/api/tasks",
                "alice",
                json!({"title": "seen", "list_id": list["id"]}),
            )
            .await;
            let mut stream = sse::open_path(
                &format!("http://127.0.0.1:{}", a.port),
                "/api/tasks/events?include=lists",
                &token("bob"),
                None,
            )
            .await
            .expect("opens");
            // The stream has caught up: the task is there.
            let heard = stream.events(2, Duration::from_secs(10)).await;
            assert!(
                heard
                    .iter()
                    .any(|(_, _, data)| data["task"]["id"] == task["id"]),
                "{heard:?}"
            );
            // Another member's write through instance B reaches bob's stream on A.
            let live = call(
                b.port,
                Method::POST,
                "/api/tasks",
                "alice",
                json!({"title": "live", "list_id": list["id"]}),
            )
            .await;
            let heard = stream.events(1, Duration::from_secs(2)).await;
            assert_eq!(heard[0].2["task"]["id"], live["id"], "{heard:?}");

            let removed_at = Instant::now();
            let response = reqwest::Client::new()
                .delete(format!(
                    "http://127.0.0.1:{}/api/lists/{}/members/bob",
                    b.port, list["id"]
                ))
                .bearer_auth(token("alice"))
                .send()
                .await
                .expect("answered");
            assert_eq!(response.status(), 204);
            let mut lost = false;
            while !lost {
                match stream.next(Duration::from_secs(2)).await {
                    Some(Frame::Event { event, data, .. }) => {
                        lost = event == "delete" && data["list_id"] == list["id"];
                    }
                    Some(_) => {}
                    None => panic!("the stream ended"),
                }
            }
            let took = removed_at.elapsed();
            assert!(took < Duration::from_secs(1), "the delete took {took:?}");
            // Alice goes on writing in the list; bob's stream hears none of it.
            for n in 0..5 {
                call(
                    b.port,
                    Method::PATCH,
                    &format!("/api/tasks/{}", task["id"]),
                    "alice",
                    json!({"title": format!("after {n}")}),
                )
                .await;
            }
            let deadline = Instant::now() + Duration::from_millis(1500);
            while Instant::now() < deadline {
                match stream.next(Duration::from_secs(2)).await {
                    // The loss itself names each task of the list; nothing else may come.
                    Some(Frame::Event { event, data, .. })
                        if event == "delete"
                            && (data["id"] == task["id"] || data["id"] == live["id"]) => {}
                    Some(Frame::Event { data, .. }) => panic!("heard after removal: {data}"),
                    Some(_) => {}
                    None => panic!("the stream ended"),
                }
            }
            a.stop();
            b.stop();
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        #[cfg_attr(not(test_database), ignore = "needs TEST_DATABASE_URL")]
        async fn by_polling() {
            a_removed_member_hears_it_at_once_and_nothing_after(false).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        #[cfg_attr(not(test_database), ignore = "needs TEST_DATABASE_URL")]
        async fn by_listening() {
            a_removed_member_hears_it_at_once_and_nothing_after(true).await;
        }
    }
}
