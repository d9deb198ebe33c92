//! The task API through the real router: SPEC §4, row by row.

use std::collections::HashSet;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{TestApp, token};

async fn create_returns_201_with_the_task_and_its_location(app: &TestApp) {
    let alice = token("alice");
    let response = app
        .post(
            "/api/tasks",
            &alice,
            &json!({"title": "Buy milk", "description": "semi-skimmed", "status": "in_progress"}),
        )
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
    let task = response.json();
    assert!(task["id"].as_i64().is_some_and(|id| id > 0), "{task}");
    assert_eq!(task["title"], "Buy milk");
    assert_eq!(task["description"], "semi-skimmed");
    assert_eq!(task["status"], "in_progress");
    assert_eq!(task["user_id"], "alice");
    assert_eq!(task["created_at"], task["updated_at"]);
    let created_at = task["created_at"].as_str().expect("created_at is a string");
    assert!(created_at.ends_with('Z'), "UTC RFC 3339: {created_at}");
    assert!(chrono::DateTime::parse_from_rfc3339(created_at).is_ok());
    assert_eq!(
        response.header("location"),
        Some(TestApp::url_of(&task).as_str())
    );

    let fetched = app.get(&TestApp::url_of(&task), &alice).await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.json(), task, "what was returned is what was stored");
}

async fn create_defaults_to_pending_with_no_description(app: &TestApp) {
    let task = app
        .create_task(&token("alice"), json!({"title": "x"}))
        .await;
    assert_eq!(task["status"], "pending");
    assert_eq!(task["description"], Value::Null);
}

async fn get_returns_404_for_a_missing_task(app: &TestApp) {
    let response = app.get("/api/tasks/999999", &token("alice")).await;
    let body = response.assert_error(StatusCode::NOT_FOUND);
    assert_eq!(body["detail"], "task not found");
}

async fn list_returns_the_callers_tasks_newest_first(app: &TestApp) {
    let alice = token("alice");
    let mut ids = Vec::new();
    for n in 0..3 {
        let task = app
            .create_task(&alice, json!({"title": format!("task {n}")}))
            .await;
        ids.push(task["id"].as_i64().expect("id"));
    }
    let response = app.get("/api/tasks", &alice).await;
    assert_eq!(response.status, StatusCode::OK);
    let listed: Vec<i64> = response
        .json()
        .as_array()
        .expect("a JSON array")
        .iter()
        .map(|task| task["id"].as_i64().expect("id"))
        .collect();
    ids.reverse();
    assert_eq!(listed, ids);
}

async fn list_of_a_new_user_is_an_empty_array(app: &TestApp) {
    let response = app.get("/api/tasks", &token("newcomer")).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json(), json!([]));
}

async fn list_pages_with_limit_and_offset(app: &TestApp) {
    let alice = token("alice");
    for n in 0..55 {
        app.create_task(&alice, json!({"title": format!("task {n}")}))
            .await;
    }
    let all = app.get("/api/tasks?limit=100", &alice).await.json();
    assert_eq!(all.as_array().map(Vec::len), Some(55));
    let default = app.get("/api/tasks", &alice).await.json();
    assert_eq!(
        default.as_array().map(Vec::len),
        Some(50),
        "default limit is 50"
    );

    let mut paged = Vec::new();
    for offset in (0..60).step_by(20) {
        let page = app
            .get(&format!("/api/tasks?limit=20&offset={offset}"), &alice)
            .await
            .json();
        paged.extend(page.as_array().expect("array").iter().cloned());
    }
    assert_eq!(
        Value::Array(paged),
        all,
        "pages are disjoint, complete and in order"
    );

    let beyond = app.get("/api/tasks?offset=1000", &alice).await;
    assert_eq!(beyond.json(), json!([]));
    let unknown_parameters_are_ignored = app.get("/api/tasks?limit=1&_=123", &alice).await;
    assert_eq!(
        unknown_parameters_are_ignored
            .json()
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

async fn update_changes_only_the_fields_given(app: &TestApp) {
    let alice = token("alice");
    let task = app
        .create_task(&alice, json!({"title": "old", "description": "keep me"}))
        .await;
    let url = TestApp::url_of(&task);

    let response = app.put(&url, &alice, &json!({"status": "completed"})).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    let updated = response.json();
    assert_eq!(updated["status"], "completed");
    assert_eq!(updated["title"], "old");
    assert_eq!(updated["description"], "keep me");

    let renamed = app.put(&url, &alice, &json!({"title": "new"})).await.json();
    assert_eq!(renamed["title"], "new");
    assert_eq!(renamed["status"], "completed");

    let cleared = app
        .put(&url, &alice, &json!({"description": null}))
        .await
        .json();
    assert_eq!(cleared["description"], Value::Null);
    assert_eq!(cleared["title"], "new");

    assert_eq!(app.get(&url, &alice).await.json(), cleared);
}

async fn update_moves_updated_at_but_never_created_at(app: &TestApp) {
    let alice = token("alice");
    let task = app.create_task(&alice, json!({"title": "a"})).await;
    let url = TestApp::url_of(&task);
    let first = app.put(&url, &alice, &json!({"title": "b"})).await.json();
    let second = app.put(&url, &alice, &json!({"title": "c"})).await.json();
    assert_eq!(first["created_at"], task["created_at"]);
    assert_eq!(second["created_at"], task["created_at"]);
    let time = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().expect("string")).expect("rfc3339")
    };
    assert!(time(&first["updated_at"]) > time(&task["updated_at"]));
    assert!(time(&second["updated_at"]) > time(&first["updated_at"]));
}

async fn update_with_an_empty_body_changes_nothing(app: &TestApp) {
    let alice = token("alice");
    let task = app.create_task(&alice, json!({"title": "a"})).await;
    let response = app.put(&TestApp::url_of(&task), &alice, &json!({})).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json(), task);
}

async fn update_refuses_null_title_and_status(app: &TestApp) {
    let alice = token("alice");
    let task = app.create_task(&alice, json!({"title": "a"})).await;
    let url = TestApp::url_of(&task);
    for body in [json!({"title": null}), json!({"status": null})] {
        app.put(&url, &alice, &body)
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    }
    assert_eq!(app.get(&url, &alice).await.json(), task);
}

async fn update_returns_404_for_a_missing_task(app: &TestApp) {
    app.put("/api/tasks/424242", &token("alice"), &json!({"title": "x"}))
        .await
        .assert_error(StatusCode::NOT_FOUND);
}

async fn delete_returns_204_then_the_task_is_gone(app: &TestApp) {
    let alice = token("alice");
    let task = app.create_task(&alice, json!({"title": "a"})).await;
    let url = TestApp::url_of(&task);
    let response = app.delete(&url, &alice).await;
    assert_eq!(response.status, StatusCode::NO_CONTENT);
    assert!(response.body.is_empty());
    app.get(&url, &alice)
        .await
        .assert_error(StatusCode::NOT_FOUND);
    app.delete(&url, &alice)
        .await
        .assert_error(StatusCode::NOT_FOUND);
}

async fn another_users_task_is_a_404_that_looks_like_a_missing_one(app: &TestApp) {
    let (alice, bob) = (token("alice"), token("bob"));
    let task = app
        .create_task(
            &alice,
            json!({"title": "alice's secret", "description": "private"}),
        )
        .await;
    let url = TestApp::url_of(&task);
    let missing = app.get("/api/tasks/999999999", &bob).await.json();

    let attempts = [
        app.get(&url, &bob).await,
        app.put(
            &url,
            &bob,
            &json!({"title": "pwned", "status": "completed"}),
        )
        .await,
        app.delete(&url, &bob).await,
    ];
    for response in attempts {
        let body = response.assert_error(StatusCode::NOT_FOUND);
        assert_eq!(
            body, missing,
            "a foreign task is indistinguishable from a missing one"
        );
        assert!(!response.text().contains("secret"));
    }
    assert_eq!(app.get("/api/tasks", &bob).await.json(), json!([]));
    assert_eq!(
        app.get(&url, &alice).await.json(),
        task,
        "alice's task is untouched"
    );
}

async fn the_body_cannot_choose_the_owner_or_the_id(app: &TestApp) {
    let alice = token("alice");
    for field in [
        json!({"title": "x", "user_id": "bob"}),
        json!({"title": "x", "id": 1}),
        json!({"title": "x", "created_at": "2000-01-01T00:00:00Z"}),
        json!({"title": "x", "updated_at": "2000-01-01T00:00:00Z"}),
    ] {
        let body = app
            .post("/api/tasks", &alice, &field)
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
        assert!(body["errors"][0]["field"].is_string(), "{body}");
    }
    let task = app.create_task(&alice, json!({"title": "mine"})).await;
    let url = TestApp::url_of(&task);
    for field in [
        json!({"user_id": "bob"}),
        json!({"id": 99}),
        json!({"created_at": "2000-01-01T00:00:00Z"}),
    ] {
        app.put(&url, &alice, &field)
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    }
    assert_eq!(app.get(&url, &alice).await.json(), task);
    assert_eq!(app.get("/api/tasks", &token("bob")).await.json(), json!([]));
}

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
        let request = Request::post("/api/tasks")
            .header(header::AUTHORIZATION, format!("Bearer {alice}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(raw))
            .expect("request");
        app.send(request)
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
        let request = Request::post("/api/tasks")
            .header(header::AUTHORIZATION, format!("Bearer {alice}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(raw))
            .expect("request");
        app.send(request)
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
        let mut request =
            Request::post("/api/tasks").header(header::AUTHORIZATION, format!("Bearer {alice}"));
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        let request = request
            .body(Body::from(r#"{"title":"a"}"#))
            .expect("request");
        app.send(request)
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
    let request = Request::post("/api/tasks")
        .header(header::AUTHORIZATION, format!("Bearer {alice}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(futures_util::stream::iter(chunks)))
        .expect("request");
    app.send(request)
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
    for id in [
        "0",
        "-1",
        "abc",
        "1.5",
        "99999999999999999999",
        "%00",
        "1%20",
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

async fn unknown_routes_and_wrong_methods_get_json_errors(app: &TestApp) {
    let alice = token("alice");
    app.get("/api/nothing-here", &alice)
        .await
        .assert_error(StatusCode::NOT_FOUND);
    app.get("/", &alice)
        .await
        .assert_error(StatusCode::NOT_FOUND);

    let cases = [
        (Method::PATCH, "/api/tasks"),
        (Method::DELETE, "/api/tasks"),
        (Method::POST, "/api/tasks/1"),
        (Method::PATCH, "/api/tasks/1"),
        (Method::POST, "/health"),
    ];
    for (method, uri) in cases {
        let response = app.call(method.clone(), uri, Some(&alice), None).await;
        response.assert_error(StatusCode::METHOD_NOT_ALLOWED);
        let allow = response.header("allow").unwrap_or_default().to_owned();
        assert!(
            !allow.is_empty(),
            "{method} {uri} lists the allowed methods"
        );
        assert!(!allow.contains(method.as_str()), "{method} {uri}: {allow}");
    }
}

async fn every_response_carries_request_id_and_safety_headers(app: &TestApp) {
    let alice = token("alice");
    let responses = [
        app.get("/api/tasks", &alice).await,
        app.get("/api/tasks/1", &alice).await,
        app.call(Method::GET, "/api/tasks", None, None).await,
        app.call(Method::GET, "/health", None, None).await,
        app.call(Method::GET, "/nope", None, None).await,
    ];
    let mut ids = HashSet::new();
    for response in &responses {
        let id = response.header("x-request-id").expect("x-request-id");
        assert!(ids.insert(id.to_owned()), "request ids are unique");
        assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(response.header("cache-control"), Some("no-store"));
    }
}

async fn a_sane_client_request_id_is_echoed_and_others_replaced(app: &TestApp) {
    for (sent, echoed) in [
        ("trace-123_abc", true),
        ("bad id with spaces", false),
        ("<x>", false),
    ] {
        let request = Request::get("/health")
            .header("x-request-id", sent)
            .body(Body::empty())
            .expect("request");
        let response = app.send(request).await;
        let id = response.header("x-request-id").expect("x-request-id");
        assert_eq!(id == sent, echoed, "{sent:?} -> {id:?}");
    }
}

async fn health_and_ready_answer(app: &TestApp) {
    let health = app.call(Method::GET, "/health", None, None).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json(), json!({"status": "ok"}));
    let ready = app.call(Method::GET, "/ready", None, None).await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.json(), json!({"status": "ready"}));
}

async fn one_hundred_concurrent_creates_all_succeed_with_distinct_ids(app: &TestApp) {
    let alice = token("alice");
    let mut handles = Vec::new();
    for n in 0..100 {
        let router = app.router.clone();
        let alice = alice.clone();
        handles.push(tokio::spawn(async move {
            use tower::ServiceExt;
            let request = Request::post("/api/tasks")
                .header(header::AUTHORIZATION, format!("Bearer {alice}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(
                    json!({"title": format!("task {n}")}).to_string(),
                ))
                .expect("request");
            let response = router.oneshot(request).await.expect("infallible");
            let status = response.status();
            let body = http_body_util::BodyExt::collect(response.into_body())
                .await
                .expect("body")
                .to_bytes();
            (status, body)
        }));
    }
    let mut ids = HashSet::new();
    for handle in handles {
        let (status, body) = handle.await.expect("task ran");
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&body)
        );
        let task: Value = serde_json::from_slice(&body).expect("json");
        assert!(
            ids.insert(task["id"].as_i64().expect("id")),
            "ids are distinct"
        );
    }
    let listed = app.get("/api/tasks?limit=100", &alice).await.json();
    assert_eq!(listed.as_array().map(Vec::len), Some(100));
}

backend_tests!(
    create_returns_201_with_the_task_and_its_location,
    create_defaults_to_pending_with_no_description,
    get_returns_404_for_a_missing_task,
    list_returns_the_callers_tasks_newest_first,
    list_of_a_new_user_is_an_empty_array,
    list_pages_with_limit_and_offset,
    update_changes_only_the_fields_given,
    update_moves_updated_at_but_never_created_at,
    update_with_an_empty_body_changes_nothing,
    update_refuses_null_title_and_status,
    update_returns_404_for_a_missing_task,
    delete_returns_204_then_the_task_is_gone,
    another_users_task_is_a_404_that_looks_like_a_missing_one,
    the_body_cannot_choose_the_owner_or_the_id,
    invalid_bodies_are_422_and_store_nothing,
    boundary_lengths_are_accepted,
    malformed_json_is_a_422_json_error,
    duplicate_keys_and_deep_nesting_are_refused,
    a_body_that_is_not_json_is_415,
    a_body_over_64_kib_is_413,
    bad_query_parameters_are_422,
    bad_task_ids_are_422_and_unknown_ones_404,
    unknown_routes_and_wrong_methods_get_json_errors,
    every_response_carries_request_id_and_safety_headers,
    a_sane_client_request_id_is_echoed_and_others_replaced,
    health_and_ready_answer,
    one_hundred_concurrent_creates_all_succeed_with_distinct_ids,
);

mod cors {
    use axum::body::Body;
    use axum::http::{HeaderValue, Request, StatusCode, header};

    use todo_backend::app::HttpSettings;

    use crate::helpers::TestApp;

    fn preflight(origin: &str) -> Request<Body> {
        Request::options("/api/tasks")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(
                header::ACCESS_CONTROL_REQUEST_HEADERS,
                "authorization,content-type",
            )
            .body(Body::empty())
            .expect("request")
    }

    #[tokio::test]
    async fn an_allowed_origin_gets_its_preflight_granted() {
        let settings = HttpSettings {
            cors_allowed_origins: vec![HeaderValue::from_static("https://app.example.com")],
        };
        let app = TestApp::sqlite_with_settings(settings).await;
        let response = app.send(preflight("https://app.example.com")).await;
        assert!(response.status.is_success(), "{:?}", response.status);
        assert_eq!(
            response.header("access-control-allow-origin"),
            Some("https://app.example.com")
        );
        let methods = response
            .header("access-control-allow-methods")
            .unwrap_or_default();
        assert!(methods.contains("POST"), "{methods}");
    }

    #[tokio::test]
    async fn a_foreign_origin_gets_a_403_json_error() {
        let settings = HttpSettings {
            cors_allowed_origins: vec![HeaderValue::from_static("https://app.example.com")],
        };
        for app in [
            TestApp::sqlite_with_settings(settings).await,
            TestApp::sqlite_with_settings(HttpSettings::default()).await,
        ] {
            let response = app.send(preflight("https://evil.example.com")).await;
            response.assert_error(StatusCode::FORBIDDEN);
            assert!(response.header("access-control-allow-origin").is_none());
        }
    }
}
