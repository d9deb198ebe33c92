//! CORS: preflights from allowed origins are granted, others get a JSON 403.

use axum::http::{HeaderValue, Method, StatusCode};

use todo_backend::http::policy::HttpSettings;

use crate::support::app::{TestApp, TestResponse};

async fn preflight(app: &TestApp, origin: &str) -> TestResponse {
    app.request(Method::OPTIONS, "/api/tasks")
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
}

#[tokio::test]
async fn an_allowed_origin_gets_its_preflight_granted() {
    let settings = HttpSettings {
        cors_allowed_origins: vec![HeaderValue::from_static("https://app.example.com")],
    };
    let app = TestApp::builder().settings(settings).build().await;
    let response = preflight(&app, "https://app.example.com").await;
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
        TestApp::builder().settings(settings).build().await,
        TestApp::builder().build().await,
    ] {
        let response = preflight(&app, "https://evil.example.com").await;
        response.assert_error(StatusCode::FORBIDDEN);
        assert!(response.header("access-control-allow-origin").is_none());
    }
}
