//! Bad input: every refusal is a 4xx JSON error that changes nothing.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::backend_tests;
use crate::support::app::{TestApp, token};

async fn invalid_bodies_are_422_and_store_nothing(app: &TestApp) {
    let alice = token("alice");
    let cases = [
        ("empty title", json!({"title": ""}), "title"),
        ("blank title", json!({"title": "   "}), "title"),
        (
            "201-character title",
            json!({"title": "a".repeat(201)}),
            "title",
        ),
        (
            "201 multi-byte characters",
            json!({"title": "é".repeat(201)}),
            "title",
        ),
        ("NUL in title", json!({"title": "a\u{0}b"}), "title"),
        (
            "2001-character description",
            json!({"title": "a", "description": "d".repeat(2001)}),
            "description",
        ),
        (
            "NUL in description",
            json!({"title": "a", "description": "\u{0}"}),
            "description",
        ),
        (
            "unknown status",
            json!({"title": "a", "status": "done"}),
            "status",
        ),
        (
            "null status",
            json!({"title": "a", "status": null}),
            "status",
        ),
        ("numeric title", json!({"title": 5}), "title"),
        ("array title", json!({"title": ["a"]}), "title"),
        (
            "numeric description",
            json!({"title": "a", "description": 1}),
            "description",
        ),
        ("missing title", json!({"description": "x"}), "title"),
        ("null title", json!({"title": null}), "title"),
        ("not an object", json!(["title"]), "body"),
        ("a string", json!("title"), "body"),
    ];
    for (case, body, field) in cases {
        let response = app.post("/api/tasks", &alice, &body).await;
        let error = response.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(error["errors"][0]["field"], field, "{case}: {error}");
        assert!(error["errors"][0]["message"].is_string(), "{case}");
    }
    assert_eq!(
        app.get("/api/tasks", &alice).await.json(),
        json!([]),
        "nothing was stored"
    );
}

async fn boundary_lengths_are_accepted(app: &TestApp) {
    let alice = token("alice");
    let title = "é".repeat(200);
    let description = "😀".repeat(2000);
    let task = app
        .create_task(&alice, json!({"title": title, "description": description}))
        .await;
    assert_eq!(task["title"], title);
    assert_eq!(task["description"], description);
}

async fn malformed_json_is_a_422_json_error(app: &TestApp) {
    let alice = token("alice");
    for raw in [
        r#"{"title": "a""#,
        "{title: 'a'}",
        "",
        "null",
        r#"{"title":"a"} {}"#,
    ] {
        app.request(Method::POST, "/api/tasks")
            .token(&alice)
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    }
}

async fn duplicate_keys_and_deep_nesting_are_refused(app: &TestApp) {
    let alice = token("alice");
    let deep = format!(
        r#"{{"title":"a","x":{}{}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    for raw in [r#"{"title":"a","title":"b"}"#.to_owned(), deep] {
        app.request(Method::POST, "/api/tasks")
            .token(&alice)
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    }
}

async fn a_body_that_is_not_json_is_415(app: &TestApp) {
    let alice = token("alice");
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut request = app.request(Method::POST, "/api/tasks").token(&alice);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request
            .body(r#"{"title":"a"}"#)
            .send()
            .await
            .assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    assert_eq!(app.get("/api/tasks", &alice).await.json(), json!([]));
}

async fn a_body_over_64_kib_is_413(app: &TestApp) {
    let alice = token("alice");
    let huge = json!({"title": "a", "description": "d".repeat(1024 * 1024)});
    app.post("/api/tasks", &alice, &huge)
        .await
        .assert_error(StatusCode::PAYLOAD_TOO_LARGE);

    // Chunked, with no Content-Length to check up front.
    let chunks = (0..80).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1024]));
    app.request(Method::POST, "/api/tasks")
        .token(&alice)
        .header("content-type", "application/json")
        .body(Body::from_stream(futures_util::stream::iter(chunks)))
        .send()
        .await
        .assert_error(StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(app.get("/api/tasks", &alice).await.json(), json!([]));
}

async fn bad_query_parameters_are_422(app: &TestApp) {
    let alice = token("alice");
    let cases = [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=-1", "limit"),
        ("limit=abc", "limit"),
        ("limit=", "limit"),
        ("limit=1.5", "limit"),
        ("limit=99999999999999999999", "limit"),
        ("offset=-1", "offset"),
        ("offset=abc", "offset"),
        ("offset=99999999999999999999", "offset"),
        ("limit=1&limit=2", "limit"),
        // `+` is a space in a query string, and `%2B` a plus: neither is a digit.
        ("offset=+1", "offset"),
        ("offset=%2B1", "offset"),
        ("limit=%2B1", "limit"),
        ("limit=%201", "limit"),
    ];
    for (query, field) in cases {
        let body = app
            .get(&format!("/api/tasks?{query}"), &alice)
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["errors"][0]["field"], field, "{query}: {body}");
    }
    let largest = app
        .get("/api/tasks?limit=100&offset=9223372036854775807", &alice)
        .await;
    assert_eq!(largest.status, StatusCode::OK, "{}", largest.text());
}

async fn bad_task_ids_are_422_and_unknown_ones_404(app: &TestApp) {
    let alice = token("alice");
    let task = app.create_task(&alice, json!({"title": "one"})).await;
    assert_eq!(task["id"], 1, "the first task of a fresh database");
    for id in [
        "0",
        "-1",
        "abc",
        "1.5",
        "99999999999999999999",
        "%00",
        "1%20",
        // One task, one URL: no sign, no leading zeros, no percent-encoded digits.
        "+1",
        "01",
        "00001",
        "%31",
    ] {
        let url = format!("/api/tasks/{id}");
        for response in [
            app.get(&url, &alice).await,
            app.put(&url, &alice, &json!({"title": "x"})).await,
            app.delete(&url, &alice).await,
        ] {
            let body = response.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
            assert_eq!(body["errors"][0]["field"], "task_id", "{id}: {body}");
        }
    }
    app.get("/api/tasks/9223372036854775807", &alice)
        .await
        .assert_error(StatusCode::NOT_FOUND);
}

async fn a_title_nobody_can_see_is_refused_like_a_blank_one(app: &TestApp) {
    let alice = token("alice");
    for title in [
        "\u{200B}",
        "\u{200B}\u{200C}\u{200D}\u{2060}\u{FEFF}",
        "\u{1}\u{7}\u{1b}",
        "\u{202E}\u{2066}",
        "\u{3164}\u{FE0F}",
        " \u{00AD} ",
    ] {
        let body = app
            .post("/api/tasks", &alice, &json!({"title": title}))
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["errors"][0]["field"], "title", "{title:?}: {body}");
    }
    assert_eq!(app.get("/api/tasks", &alice).await.json(), json!([]));
    let visible = app
        .create_task(&alice, json!({"title": "\u{200B}a\u{200B}"}))
        .await;
    assert_eq!(visible["title"], "\u{200B}a\u{200B}", "kept as sent");
}

async fn oversized_targets_and_headers_get_json_errors(app: &TestApp) {
    let alice = token("alice");
    let long = format!("/api/tasks?x={}", "a".repeat(9 * 1024));
    app.get(&long, &alice)
        .await
        .assert_error(StatusCode::URI_TOO_LONG);
    let mut many = app.request(Method::GET, "/api/tasks").token(&alice);
    for n in 0..100 {
        many = many.header(&format!("x-filler-{n}"), "1");
    }
    many.send()
        .await
        .assert_error(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    app.request(Method::GET, "/api/tasks")
        .token(&alice)
        .header("x-big", &"b".repeat(17 * 1024))
        .send()
        .await
        .assert_error(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
}

async fn a_declared_body_over_the_limit_is_413_before_reading(app: &TestApp) {
    let alice = token("alice");
    // The body never arrives: only the declared length can have caused the refusal.
    let never = futures_util::stream::pending::<Result<Vec<u8>, std::io::Error>>();
    let response = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        app.request(Method::POST, "/api/tasks")
            .token(&alice)
            .header("content-type", "application/json")
            .header("content-length", "1000000000")
            .body(Body::from_stream(never))
            .send(),
    )
    .await
    .expect("answered without waiting for the body");
    response.assert_error(StatusCode::PAYLOAD_TOO_LARGE);
}

/// A JSON Patch is not a merge patch, a query must be UTF-8 once decoded, and a neighbour's
/// id has one spelling: each refused, and nothing changes.
async fn other_patch_types_undecodable_queries_and_respelled_ids_are_refused(app: &TestApp) {
    let alice = token("alice");
    let one = app.create_task(&alice, json!({"title": "one"})).await;
    let two = app.create_task(&alice, json!({"title": "two"})).await;
    let url = TestApp::url_of(&one);
    let json_patch = json!([{"op": "replace", "path": "/title", "value": "patched"}]);
    for content_type in ["application/json-patch+json", "application/vnd.api+json"] {
        app.request(Method::PATCH, &url)
            .token(&alice)
            .header("content-type", content_type)
            .body(json_patch.to_string())
            .send()
            .await
            .assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    // Plain JSON is still read as a merge patch.
    let patched = app
        .request(Method::PATCH, &url)
        .token(&alice)
        .header("content-type", "application/json")
        .body(json!({"priority": "high"}).to_string())
        .send()
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text());
    for query in ["q=%FF", "q=caf%C3", "tag=%ED%A0%80", "q%FF=1"] {
        app.get(&format!("/api/tasks?{query}"), &alice)
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    }
    app.get("/api/tasks/changes?since=%FF", &alice)
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    let two_id = two["id"].as_i64().expect("id");
    for body in [
        format!(r#"{{"after": {two_id}.0}}"#),
        format!(r#"{{"after": {two_id}e0}}"#),
        format!(r#"{{"before": {two_id}.0}}"#),
        format!(r#"{{"before": {two_id}0e-1}}"#),
    ] {
        app.request(Method::POST, &format!("{url}/move"))
            .token(&alice)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    }
    let now = app.get(&url, &alice).await.json();
    assert_eq!(now["title"], "one");
    assert_eq!(now["version"], 2, "only the plain-JSON patch changed it");
}

backend_tests!(
    invalid_bodies_are_422_and_store_nothing,
    boundary_lengths_are_accepted,
    malformed_json_is_a_422_json_error,
    duplicate_keys_and_deep_nesting_are_refused,
    a_body_that_is_not_json_is_415,
    a_body_over_64_kib_is_413,
    bad_query_parameters_are_422,
    bad_task_ids_are_422_and_unknown_ones_404,
    a_title_nobody_can_see_is_refused_like_a_blank_one,
    oversized_targets_and_headers_get_json_errors,
    a_declared_body_over_the_limit_is_413_before_reading,
    other_patch_types_undecodable_queries_and_respelled_ids_are_refused,
);
