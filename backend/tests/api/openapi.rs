//! The served OpenAPI document describes what the API really does.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::app::{TestApp, token};

async fn served_document(app: &TestApp) -> Value {
    let response = app.request(Method::GET, "/openapi.json").send().await;
    assert_eq!(response.status, StatusCode::OK);
    response.json()
}

#[tokio::test]
async fn the_document_lists_every_route_with_its_responses() {
    let app = TestApp::builder().build().await;
    let doc = served_document(&app).await;
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    let expected: &[(&str, &str, &[&str])] = &[
        (
            "/api/invitations/accept",
            "post",
            &["200", "401", "404", "409", "413", "415", "422", "503"],
        ),
        (
            "/api/lists",
            "get",
            &["200", "304", "400", "401", "422", "503"],
        ),
        (
            "/api/lists",
            "post",
            &["201", "400", "401", "409", "413", "415", "422", "503"],
        ),
        (
            "/api/lists/{list_id}",
            "get",
            &["200", "401", "404", "422", "503"],
        ),
        (
            "/api/lists/{list_id}",
            "delete",
            &["204", "401", "403", "404", "409", "422", "503"],
        ),
        (
            "/api/lists/{list_id}",
            "patch",
            &["200", "401", "403", "404", "413", "415", "422", "503"],
        ),
        (
            "/api/lists/{list_id}/invitations",
            "get",
            &["200", "401", "403", "404", "422", "503"],
        ),
        (
            "/api/lists/{list_id}/invitations",
            "post",
            &[
                "201", "401", "403", "404", "409", "413", "415", "422", "503",
            ],
        ),
        (
            "/api/lists/{list_id}/invitations/{invitation_id}",
            "delete",
            &["204", "401", "403", "404", "422", "503"],
        ),
        (
            "/api/lists/{list_id}/members",
            "get",
            &["200", "401", "404", "422", "503"],
        ),
        (
            "/api/lists/{list_id}/members/{user_id}",
            "delete",
            &["204", "401", "403", "404", "409", "422", "503"],
        ),
        (
            "/api/lists/{list_id}/members/{user_id}",
            "patch",
            &[
                "200", "401", "403", "404", "409", "413", "415", "422", "503",
            ],
        ),
        (
            "/api/lists/{list_id}/move",
            "post",
            &["200", "401", "404", "413", "415", "422", "503"],
        ),
        (
            "/api/lists/{list_id}/restore",
            "post",
            &["200", "401", "403", "404", "422", "503"],
        ),
        (
            "/api/lists/{list_id}/transfer",
            "post",
            &["200", "401", "403", "404", "413", "415", "422", "503"],
        ),
        ("/api/me", "delete", &["204", "401", "503"]),
        ("/api/me/export", "get", &["200", "401", "503"]),
        (
            "/api/tasks",
            "get",
            &["200", "304", "401", "404", "422", "503"],
        ),
        (
            "/api/tasks",
            "post",
            &[
                "201", "400", "401", "403", "404", "409", "413", "415", "422", "503",
            ],
        ),
        (
            "/api/tasks/changes",
            "get",
            &["200", "401", "410", "422", "503"],
        ),
        (
            "/api/tasks/events",
            "get",
            &["200", "400", "401", "410", "422", "429", "503"],
        ),
        (
            "/api/tasks/{task_id}",
            "get",
            &["200", "304", "400", "401", "404", "422", "503"],
        ),
        (
            "/api/tasks/{task_id}",
            "put",
            &[
                "200", "400", "401", "403", "404", "409", "412", "413", "415", "422", "503",
            ],
        ),
        (
            "/api/tasks/{task_id}",
            "delete",
            &["204", "400", "401", "403", "404", "412", "422", "503"],
        ),
        (
            "/api/tasks/{task_id}",
            "patch",
            &[
                "200", "400", "401", "403", "404", "409", "412", "413", "415", "422", "503",
            ],
        ),
        (
            "/api/tasks/{task_id}/move",
            "post",
            &[
                "200", "400", "401", "403", "404", "409", "412", "415", "422", "503",
            ],
        ),
        (
            "/api/tasks/{task_id}/restore",
            "post",
            &["200", "401", "403", "404", "422", "503"],
        ),
        ("/health", "get", &["200"]),
        ("/ready", "get", &["200", "503"]),
    ];
    for (path, method, statuses) in expected {
        let operation = &doc["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is documented");
        let mut documented: Vec<&str> = operation["responses"]
            .as_object()
            .expect("responses")
            .keys()
            .map(String::as_str)
            .collect();
        documented.sort_unstable();
        assert_eq!(&documented, statuses, "{method} {path}");
        if path.starts_with("/api") {
            assert_eq!(
                operation["security"],
                json!([{"bearer": []}]),
                "{method} {path}"
            );
        }
    }
    let scheme = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(scheme["scheme"], "bearer");
    assert_eq!(
        doc["paths"].as_object().map(|p| p.len()),
        Some(20),
        "no undocumented extras"
    );
}

#[tokio::test]
async fn the_subcommand_prints_the_same_document() {
    let app = TestApp::builder().build().await;
    let served = served_document(&app).await;
    let built = serde_json::to_value(todo_backend::app::openapi()).expect("serializes");
    assert_eq!(served, built);
}

/// Validates `instance` against the named component schema of the served document.
fn validate(doc: &Value, schema: Value, instance: &Value) {
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": doc["components"],
        "allOf": [schema],
    });
    let validator = jsonschema::validator_for(&root).expect("the schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "{instance} violates its schema: {errors:?}"
    );
}

#[tokio::test]
async fn real_responses_validate_against_their_schemas() {
    let app = TestApp::builder().build().await;
    let doc = served_document(&app).await;
    let alice = token("alice");
    let task_ref = json!({"$ref": "#/components/schemas/Task"});
    let error_ref = json!({"$ref": "#/components/schemas/ErrorBody"});

    let created = app
        .create_task(&alice, json!({"title": "schema", "description": "checked"}))
        .await;
    validate(&doc, task_ref.clone(), &created);
    let bare = app
        .create_task(&alice, json!({"title": "no description"}))
        .await;
    validate(&doc, task_ref.clone(), &bare);
    let list = app.get("/api/tasks", &alice).await.json();
    validate(&doc, json!({"type": "array", "items": task_ref}), &list);

    let feed = app.get("/api/tasks/changes", &alice).await.json();
    validate(
        &doc,
        json!({"$ref": "#/components/schemas/ChangePage"}),
        &feed,
    );
    app.delete(&TestApp::url_of(&bare), &alice).await;
    let feed = app.get("/api/tasks/changes", &alice).await.json();
    assert_eq!(feed["changes"][1]["op"], "delete", "{feed}");
    validate(
        &doc,
        json!({"$ref": "#/components/schemas/ChangePage"}),
        &feed,
    );

    let not_found = app.get("/api/tasks/999999", &alice).await.json();
    validate(&doc, error_ref.clone(), &not_found);
    let invalid = app
        .post("/api/tasks", &alice, &json!({"title": ""}))
        .await
        .json();
    validate(&doc, error_ref.clone(), &invalid);

    // And the validator is not a rubber stamp.
    let broken = json!({"id": "seven", "title": 1});
    let root =
        json!({"components": doc["components"], "allOf": [{"$ref": "#/components/schemas/Task"}]});
    let validator = jsonschema::validator_for(&root).expect("compiles");
    assert!(!validator.is_valid(&broken));
}

#[tokio::test]
async fn the_docs_page_works_offline() {
    let app = TestApp::builder().build().await;
    let page = app.request(Method::GET, "/docs/").send().await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    assert!(html.contains("swagger-ui"), "it is Swagger UI");
    for asset in [
        "swagger-ui-bundle.js",
        "swagger-ui.css",
        "swagger-initializer.js",
    ] {
        let response = app
            .request(Method::GET, &format!("/docs/{asset}"))
            .send()
            .await;
        assert_eq!(response.status, StatusCode::OK, "{asset} is served locally");
        assert!(!response.body.is_empty());
    }
    assert!(!html.contains("src=\"http"), "no script from the network");
    assert!(
        !html.contains("href=\"http"),
        "no stylesheet from the network"
    );
    let initializer = app
        .request(Method::GET, "/docs/swagger-initializer.js")
        .send()
        .await
        .text();
    assert!(initializer.contains("/openapi.json"), "{initializer}");
    for missing in [
        "/docs/nope",
        "/docs/../etc/passwd",
        "/docs/swagger-ui.css.map",
    ] {
        app.request(Method::GET, missing)
            .send()
            .await
            .assert_error(StatusCode::NOT_FOUND);
    }
}

#[test]
fn the_documented_text_patterns_agree_with_the_validation() {
    use todo_backend::domain::{TaskDescription, TaskTitle};
    let doc = serde_json::to_value(todo_backend::app::openapi()).expect("serializes");
    let properties = &doc["components"]["schemas"]["CreateTask"]["properties"];
    let title = jsonschema::validator_for(&properties["title"]).expect("title schema");
    let description = jsonschema::validator_for(&json!({"type": "string",
        "pattern": properties["description"]["pattern"]}))
    .expect("description schema");
    let samples = [
        "a",
        " a ",
        "",
        " ",
        "\t\n",
        "\u{0085}",
        "\u{00A0}x",
        "\u{3000}",
        "\u{FEFF}",
        "a\0b",
        "\0",
        "ü",
        "\u{2028}\u{2029}",
        "\r",
    ];
    for sample in samples {
        let accepted = TaskTitle::try_from(sample.to_owned()).is_ok();
        assert_eq!(title.is_valid(&json!(sample)), accepted, "title {sample:?}");
        let accepted = TaskDescription::try_from(sample.to_owned()).is_ok();
        assert_eq!(
            description.is_valid(&json!(sample)),
            accepted,
            "description {sample:?}"
        );
    }
}
