//! HTTP behaviour every route shares: JSON errors for unknown routes and methods, request ids,
//! safety headers, and the health and readiness probes.

use std::collections::HashSet;

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::backend_tests;
use crate::support::app::{TestApp, token};

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
        (Method::GET, "/api/tasks/1/move"),
        (Method::POST, "/health"),
    ];
    for (method, uri) in cases {
        let response = app.request(method.clone(), uri).token(&alice).send().await;
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
        app.request(Method::GET, "/api/tasks").send().await,
        app.request(Method::GET, "/health").send().await,
        app.request(Method::GET, "/nope").send().await,
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
        let response = app
            .request(Method::GET, "/health")
            .header("x-request-id", sent)
            .send()
            .await;
        let id = response.header("x-request-id").expect("x-request-id");
        assert_eq!(id == sent, echoed, "{sent:?} -> {id:?}");
    }
}

async fn health_and_ready_answer(app: &TestApp) {
    let health = app.request(Method::GET, "/health").send().await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json(), json!({"status": "ok"}));
    let ready = app.request(Method::GET, "/ready").send().await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.json(), json!({"status": "ready"}));
}

backend_tests!(
    unknown_routes_and_wrong_methods_get_json_errors,
    every_response_carries_request_id_and_safety_headers,
    a_sane_client_request_id_is_echoed_and_others_replaced,
    health_and_ready_answer,
);
