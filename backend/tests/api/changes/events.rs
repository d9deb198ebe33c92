//! The live event stream (docs/sync-and-live-updates.md, "The live event stream"):
//! `GET /api/tasks/events` is the live tail of the change feed, read here over real HTTP, event
//! by event.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::oneshot;

use todo_backend::live::hub::EventSettings;
use todo_backend::server::{ServeOptions, serve_with};

use crate::support::app::{TestApp, now, sign, token};
use crate::support::sse::{self, Frame};

/// Long enough for a loaded machine; a stream that is silent this long is a failure.
const PATIENCE: Duration = Duration::from_secs(10);

/// A short heartbeat, so that "nothing more came" is seen as a heartbeat arriving first.
const SETTINGS: EventSettings = EventSettings {
    poll_interval: Duration::from_millis(100),
    max_per_user: 10,
    max_streams: 10_000,
    heartbeat: Duration::from_millis(300),
};

/// An app served on a loopback port by the production server.
struct Served {
    app: TestApp,
    base: String,
    stop: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn serve(postgres: bool, settings: EventSettings) -> Served {
    let mut builder = TestApp::builder().events(settings);
    if postgres {
        builder = builder.postgres();
    }
    let app = builder.build().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let (stop, stopped) = oneshot::channel::<()>();
    let events = app.events.clone();
    let signal = async move {
        let _ = stopped.await;
        events.close();
    };
    let server = tokio::spawn(serve_with(
        listener,
        app.router.clone(),
        signal,
        ServeOptions::default(),
    ));
    Served {
        app,
        base,
        stop: Some(stop),
        server,
    }
}

/// Sends a JSON request through the router (writes need no real socket).
async fn write(app: &TestApp, method: &str, uri: &str, body: Value) -> Value {
    let method = method.parse().expect("a method");
    let response = app
        .request(method, uri)
        .token(&token("alice"))
        .json(&body)
        .send()
        .await;
    assert!(response.status.is_success(), "{uri}: {}", response.text());
    if response.body.is_empty() {
        Value::Null
    } else {
        response.json()
    }
}

async fn every_kind_of_write_is_its_event(postgres: bool) {
    let served = serve(postgres, SETTINGS).await;
    let app = &served.app;
    let mut stream = sse::open(&served.base, &token("alice"), None)
        .await
        .expect("opens");
    // One write at a time, each awaited on the stream: a stream that reads after two writes
    // of one task sends that task once, in its latest state, as the feed does.
    let mut events = Vec::new();
    let first = write(app, "POST", "/api/tasks", json!({"title": "first"})).await;
    events.extend(stream.events(1, PATIENCE).await);
    let second = write(app, "POST", "/api/tasks", json!({"title": "second"})).await;
    events.extend(stream.events(1, PATIENCE).await);
    let url = TestApp::url_of(&first);
    write(app, "PATCH", &url, json!({"priority": "high"})).await;
    events.extend(stream.events(1, PATIENCE).await);
    write(
        app,
        "POST",
        &format!("{url}/move"),
        json!({"after": second["id"]}),
    )
    .await;
    events.extend(stream.events(1, PATIENCE).await);
    let response = app.delete(&url, &token("alice")).await;
    assert_eq!(response.status, 204);
    events.extend(stream.events(1, PATIENCE).await);
    write(app, "POST", &format!("{url}/restore"), json!({})).await;
    events.extend(stream.events(1, PATIENCE).await);

    let ops: Vec<&str> = events.iter().map(|(_, op, _)| op.as_str()).collect();
    assert_eq!(
        ops,
        ["upsert", "upsert", "upsert", "upsert", "delete", "upsert"]
    );
    let ids: Vec<i64> = events.iter().map(|(id, _, _)| *id).collect();
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "{ids:?}");
    for (id, _, data) in &events {
        assert_eq!(
            data["cursor"],
            json!(id.to_string()),
            "the id is the cursor"
        );
    }
    assert_eq!(events[0].2["task"]["title"], "first");
    assert_eq!(events[1].2["task"]["title"], "second");
    assert_eq!(events[2].2["task"]["priority"], "high");
    assert_eq!(events[2].2["task"]["version"], 2);
    assert_eq!(events[3].2["task"]["version"], 3, "the move");
    assert_eq!(
        events[4].2,
        json!({"cursor": ids[4].to_string(), "op": "delete", "id": first["id"]})
    );
    assert_eq!(events[5].2["task"]["version"], 4, "the restore");
    // And then nothing but the heartbeat.
    assert!(matches!(
        stream.next(PATIENCE).await,
        Some(Frame::Comment(_))
    ));
}

/// From every point of a 50-change history, the stream replays exactly the rest of the feed,
/// then goes quiet: no gap, no duplicate.
async fn resuming_from_any_event_gives_exactly_the_rest(postgres: bool) {
    let settings = EventSettings {
        max_per_user: 64,
        ..SETTINGS
    };
    let served = serve(postgres, settings).await;
    let app = &served.app;
    let mut tasks = Vec::new();
    for n in 0..50 {
        tasks.push(
            write(
                app,
                "POST",
                "/api/tasks",
                json!({"title": format!("task {n}")}),
            )
            .await,
        );
    }
    for task in tasks.iter().step_by(5) {
        write(
            app,
            "PATCH",
            &TestApp::url_of(task),
            json!({"status": "completed"}),
        )
        .await;
    }
    for task in tasks.iter().skip(2).step_by(10) {
        let response = app.delete(&TestApp::url_of(task), &token("alice")).await;
        assert_eq!(response.status, 204);
    }
    let feed = app
        .get("/api/tasks/changes?limit=1000", &token("alice"))
        .await
        .json();
    let feed = feed["changes"].as_array().expect("changes").clone();
    assert_eq!(feed.len(), 50, "one entry per task");

    let mut readers = Vec::new();
    for start in 0..=feed.len() {
        let base = served.base.clone();
        let expected = feed[start..].to_vec();
        let after = (start > 0).then(|| {
            feed[start - 1]["cursor"]
                .as_str()
                .expect("a cursor")
                .to_owned()
        });
        readers.push(tokio::spawn(async move {
            let mut stream = sse::open(&base, &token("alice"), after.as_deref())
                .await
                .expect("opens");
            let events = stream.events(expected.len(), PATIENCE).await;
            let data: Vec<Value> = events.into_iter().map(|(_, _, data)| data).collect();
            assert_eq!(data, expected, "resumed after entry {start}");
            let next = stream.next(PATIENCE).await;
            assert!(
                matches!(next, Some(Frame::Comment(_))),
                "after entry {start}: {next:?} instead of the heartbeat"
            );
        }));
    }
    for reader in readers {
        reader.await.expect("the reader passed");
    }
}

async fn a_user_hears_only_their_own_writes(postgres: bool) {
    let served = serve(postgres, SETTINGS).await;
    let app = &served.app;
    let mut bobs = sse::open(&served.base, &token("bob"), None)
        .await
        .expect("opens");
    for n in 0..5 {
        write(
            app,
            "POST",
            "/api/tasks",
            json!({"title": format!("alice {n}")}),
        )
        .await;
    }
    let response = app
        .post("/api/tasks", &token("bob"), &json!({"title": "bob's"}))
        .await;
    assert_eq!(response.status, 201);
    let events = bobs.events(1, PATIENCE).await;
    assert_eq!(events[0].2["task"]["title"], "bob's");
    assert_eq!(events[0].2["task"]["user_id"], "bob");
    assert!(matches!(bobs.next(PATIENCE).await, Some(Frame::Comment(_))));
}

async fn limits_refuse_with_the_error_body(postgres: bool) {
    let settings = EventSettings {
        max_streams: 12,
        ..SETTINGS
    };
    let served = serve(postgres, settings).await;
    let mut open = Vec::new();
    for _ in 0..10 {
        open.push(
            sse::open(&served.base, &token("alice"), None)
                .await
                .expect("opens"),
        );
    }
    let (status, body) = sse::open(&served.base, &token("alice"), None)
        .await
        .err()
        .expect("the 11th stream is refused");
    assert_eq!(status, 429);
    let body: Value = serde_json::from_str(&body).expect("the error body");
    assert_eq!(body["status_code"], 429);
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|detail| detail.contains("10"))
    );
    // Another user is not limited by alice's streams, but by the instance's cap.
    open.push(
        sse::open(&served.base, &token("bob"), None)
            .await
            .expect("opens"),
    );
    open.push(
        sse::open(&served.base, &token("carol"), None)
            .await
            .expect("opens"),
    );
    let (status, body) = sse::open(&served.base, &token("dave"), None)
        .await
        .err()
        .expect("past the instance's cap");
    assert_eq!(status, 503);
    let body: Value = serde_json::from_str(&body).expect("the error body");
    assert_eq!(body["status_code"], 503);
    assert_eq!(served.app.events.open_streams(), 12);
}

async fn a_stream_ends_when_its_token_expires(postgres: bool) {
    let served = serve(postgres, SETTINGS).await;
    let short = sign(&json!({"sub": "alice", "exp": now() + 2}));
    let opened = Instant::now();
    let mut stream = sse::open(&served.base, &short, None).await.expect("opens");
    while let Some(frame) = stream.next(PATIENCE).await {
        assert!(matches!(frame, Frame::Comment(_)), "{frame:?}");
    }
    let lasted = opened.elapsed();
    assert!(
        lasted >= Duration::from_secs(1),
        "ended after {lasted:?}, before the token expired"
    );
}

async fn shutdown_ends_streams_cleanly(postgres: bool) {
    let mut served = serve(postgres, SETTINGS).await;
    let mut stream = sse::open(&served.base, &token("alice"), None)
        .await
        .expect("opens");
    write(
        &served.app,
        "POST",
        "/api/tasks",
        json!({"title": "before"}),
    )
    .await;
    assert_eq!(stream.events(1, PATIENCE).await.len(), 1);
    let _ = served.stop.take().expect("running").send(());
    // The end of the response, not a reset: `next` reads it as the end of the stream.
    loop {
        match stream.next(PATIENCE).await {
            Some(Frame::Comment(_)) => {}
            Some(frame) => panic!("{frame:?} after shutdown"),
            None => break,
        }
    }
    tokio::time::timeout(PATIENCE, &mut served.server)
        .await
        .expect("the server stops once its streams have ended")
        .expect("joined")
        .expect("served");
}

async fn a_resume_point_from_before_the_kept_history_is_gone(postgres: bool) {
    let served = serve(postgres, SETTINGS).await;
    let task = write(&served.app, "POST", "/api/tasks", json!({"title": "x"})).await;
    assert!(task["id"].is_number());
    let (status, body) = sse::open(&served.base, &token("alice"), Some("999999"))
        .await
        .err()
        .expect("a cursor this database never issued");
    assert_eq!(status, 410, "{body}");
    let (status, _) = sse::open(&served.base, &token("alice"), Some("not-a-cursor"))
        .await
        .err()
        .expect("malformed");
    assert_eq!(status, 400);
}

/// Trashing, restoring and completing a parent reach the stream as one event per task of
/// its subtree.
async fn a_subtree_change_is_an_event_per_task(postgres: bool) {
    let served = serve(postgres, SETTINGS).await;
    let app = &served.app;
    let parent = write(app, "POST", "/api/tasks", json!({"title": "parent"})).await;
    let mut subtree = vec![parent["id"].clone()];
    for title in ["first", "second"] {
        let body = json!({"title": title, "parent_id": parent["id"]});
        subtree.push(write(app, "POST", "/api/tasks", body).await["id"].clone());
    }
    let mut stream = sse::open(&served.base, &token("alice"), None)
        .await
        .expect("opens");
    stream.events(3, PATIENCE).await;
    let ids_of = |events: &[(i64, String, Value)], op: &str| {
        let mut ids: Vec<Value> = events
            .iter()
            .map(|(_, kind, data)| {
                assert_eq!(kind, op, "{data}");
                match op {
                    "delete" => data["id"].clone(),
                    _ => data["task"]["id"].clone(),
                }
            })
            .collect();
        ids.sort_by_key(|id| id.as_i64());
        ids
    };
    let url = TestApp::url_of(&parent);
    assert_eq!(app.delete(&url, &token("alice")).await.status, 204);
    assert_eq!(ids_of(&stream.events(3, PATIENCE).await, "delete"), subtree);
    write(app, "POST", &format!("{url}/restore"), json!({})).await;
    assert_eq!(ids_of(&stream.events(3, PATIENCE).await, "upsert"), subtree);
    write(app, "PATCH", &url, json!({"status": "completed"})).await;
    let completed = stream.events(3, PATIENCE).await;
    assert_eq!(ids_of(&completed, "upsert"), subtree);
    for (_, _, data) in &completed {
        assert_eq!(data["task"]["status"], "completed", "{data}");
    }
}

/// Many streams of one user share their reads of the feed on an instance; under concurrent
/// writers every stream still gets every change exactly once, in feed order, including one
/// that joined late and replays from the middle.
async fn streams_of_one_user_each_get_every_change_once(postgres: bool) {
    const STREAMS: usize = 8;
    const WRITERS: usize = 4;
    const WRITES: usize = 25;
    let served = serve(postgres, SETTINGS).await;
    let app = &served.app;
    let mut streams = Vec::new();
    for _ in 0..STREAMS {
        streams.push(
            sse::open(&served.base, &token("alice"), None)
                .await
                .expect("opens"),
        );
    }
    let first = write(app, "POST", "/api/tasks", json!({"title": "first"})).await;
    let writers = (0..WRITERS).map(|writer| async move {
        for n in 0..WRITES {
            write(
                app,
                "POST",
                "/api/tasks",
                json!({"title": format!("writer {writer} task {n}")}),
            )
            .await;
        }
    });
    let total = 1 + WRITERS * WRITES;
    let readers = streams
        .iter_mut()
        .map(|stream| stream.events(total, PATIENCE * 3));
    let (_, heard) = tokio::join!(
        futures_util::future::join_all(writers),
        futures_util::future::join_all(readers)
    );
    let feed = app
        .get(
            &format!("/api/tasks/changes?limit={total}"),
            &token("alice"),
        )
        .await
        .json();
    let expected: Vec<Value> = feed["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|change| change["task"]["id"].clone())
        .collect();
    assert_eq!(expected.len(), total, "{feed}");
    for events in &heard {
        let ids: Vec<Value> = events
            .iter()
            .map(|(_, _, data)| data["task"]["id"].clone())
            .collect();
        assert_eq!(
            ids, expected,
            "each stream, every create once in feed order"
        );
    }
    // A stream that joins late, from the first event, replays exactly the rest.
    let after = heard[0][0].0.to_string();
    let mut late = sse::open(&served.base, &token("alice"), Some(&after))
        .await
        .expect("opens");
    let rest = late.events(total - 1, PATIENCE).await;
    assert_eq!(rest, heard[0][1..].to_vec());
    assert_eq!(heard[0][0].2["task"]["id"], first["id"]);
    // And every stream then hears only the heartbeat.
    for stream in streams.iter_mut().chain([&mut late]) {
        assert!(matches!(
            stream.next(PATIENCE).await,
            Some(Frame::Comment(_))
        ));
    }
}

macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(false).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(test_database), ignore = "needs TEST_DATABASE_URL")]
                async fn $test() {
                    super::$test(true).await;
                }
            )*
        }
    };
}

on_both_backends!(
    every_kind_of_write_is_its_event,
    resuming_from_any_event_gives_exactly_the_rest,
    a_user_hears_only_their_own_writes,
    limits_refuse_with_the_error_body,
    a_stream_ends_when_its_token_expires,
    shutdown_ends_streams_cleanly,
    a_resume_point_from_before_the_kept_history_is_gone,
    a_subtree_change_is_an_event_per_task,
    streams_of_one_user_each_get_every_change_once,
);
