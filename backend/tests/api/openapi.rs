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
            &["200", "304", "400", "401", "404", "422", "503"],
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
            &["200", "400", "401", "410", "422", "503"],
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
        ("/api/app-passwords", "get", &["200", "401", "503"]),
        (
            "/api/app-passwords",
            "post",
            &["201", "401", "409", "413", "415", "422", "503"],
        ),
        (
            "/api/app-passwords/{app_password_id}",
            "delete",
            &["204", "401", "404", "422", "503"],
        ),
        ("/health", "get", &["200"]),
        ("/ready", "get", &["200", "503"]),
    ];
    for (path, method, statuses) in expected {
        let operation = &doc["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is documented");
        let responses = operation["responses"].as_object().expect("responses");
        // What the layers answer on every route: a target or headers too large, and, on the
        // API, a rate limit.
        let mut everywhere = vec!["414", "431"];
        if path.starts_with("/api") {
            everywhere.push("429");
        }
        for status in &everywhere {
            assert!(responses.contains_key(*status), "{method} {path} {status}");
        }
        let mut documented: Vec<&str> = responses
            .keys()
            .map(String::as_str)
            .filter(|status| !everywhere.contains(status))
            .collect();
        documented.sort_unstable();
        assert_eq!(&documented, statuses, "{method} {path}");
        let security = match path.starts_with("/api") {
            true => json!([{"bearer": []}]),
            false => json!([]),
        };
        assert_eq!(operation["security"], security, "{method} {path}");
    }
    let scheme = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(scheme["scheme"], "bearer");
    assert_eq!(
        doc["paths"].as_object().map(|p| p.len()),
        Some(22),
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

/// The headers a client acts on: each one a response carries must be declared on that
/// response of its operation in the document.
const WATCHED: [&str; 9] = [
    "etag",
    "location",
    "link",
    "x-total-count",
    "preference-applied",
    "idempotent-replayed",
    "retry-after",
    "ratelimit",
    "ratelimit-policy",
];

/// `status` and the watched headers among `sent` are declared for `method path`.
fn declared(doc: &Value, method: &str, path: &str, status: u16, sent: &[&str]) {
    let operation = &doc["paths"][path][method];
    let response = &operation["responses"][status.to_string()];
    assert!(
        response.is_object(),
        "{method} {path} answered {status}, which the document does not declare"
    );
    let headers: Vec<String> = response["headers"]
        .as_object()
        .map(|headers| {
            headers
                .keys()
                .map(|name| name.to_ascii_lowercase())
                .collect()
        })
        .unwrap_or_default();
    for name in sent.iter().filter(|name| WATCHED.contains(name)) {
        assert!(
            headers.iter().any(|declared| declared == name),
            "{method} {path} {status} sends `{name}`, which the document does not declare \
             there (it declares {headers:?})"
        );
    }
}

fn sent(response: &crate::support::app::TestResponse) -> Vec<&str> {
    response.headers.keys().map(|name| name.as_str()).collect()
}

/// What the suite observes, operation by operation, is what the document declares: every
/// status below and every header a client acts on.
#[tokio::test]
async fn observed_statuses_and_headers_are_declared() {
    let app = TestApp::builder().build().await;
    let doc = served_document(&app).await;
    let alice = token("alice");
    let check = |method: &str, path: &str, response: &crate::support::app::TestResponse| {
        declared(
            &doc,
            method,
            path,
            response.status.as_u16(),
            &sent(response),
        );
    };
    let send =
        |method: Method, uri: String, headers: Vec<(&'static str, String)>, body: Option<Value>| {
            let mut request = app.request(method, &uri).token(&alice);
            for (name, value) in &headers {
                request = request.header(name, value);
            }
            if let Some(body) = &body {
                request = request.json(body);
            }
            request.send()
        };

    let created = send(
        Method::POST,
        "/api/tasks".into(),
        vec![],
        Some(json!({"title": "a", "uid": "u-1"})),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
    check("post", "/api/tasks", &created);
    let task = created.json();
    let id = task["id"].clone();
    let url = format!("/api/tasks/{id}");
    let etag = created.header("etag").unwrap_or_default().to_owned();
    let keyed = || {
        send(
            Method::POST,
            "/api/tasks".into(),
            vec![("idempotency-key", "k-1".into())],
            Some(json!({"title": "b"})),
        )
    };
    check("post", "/api/tasks", &keyed().await);
    let replayed = keyed().await;
    assert_eq!(replayed.header("idempotent-replayed"), Some("true"));
    check("post", "/api/tasks", &replayed);
    let taken = send(
        Method::POST,
        "/api/tasks".into(),
        vec![],
        Some(json!({"title": "c", "uid": "u-1"})),
    )
    .await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    check("post", "/api/tasks", &taken);

    let page = send(Method::GET, "/api/tasks?limit=1".into(), vec![], None).await;
    assert!(page.header("link").is_some() && page.header("x-total-count").is_some());
    check("get", "/api/tasks", &page);
    let page_tag = page.header("etag").unwrap_or_default().to_owned();
    let unchanged = send(
        Method::GET,
        "/api/tasks?limit=1".into(),
        vec![("if-none-match", page_tag)],
        None,
    )
    .await;
    assert_eq!(unchanged.status, StatusCode::NOT_MODIFIED);
    check("get", "/api/tasks", &unchanged);
    let read = send(Method::GET, url.clone(), vec![], None).await;
    check("get", "/api/tasks/{task_id}", &read);
    let fresh = send(
        Method::GET,
        url.clone(),
        vec![("if-none-match", etag.clone())],
        None,
    )
    .await;
    assert_eq!(fresh.status, StatusCode::NOT_MODIFIED);
    check("get", "/api/tasks/{task_id}", &fresh);

    let patched = send(
        Method::PATCH,
        url.clone(),
        vec![("if-match", etag.clone())],
        Some(json!({"title": "a2"})),
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK);
    check("patch", "/api/tasks/{task_id}", &patched);
    let stale = send(
        Method::PATCH,
        url.clone(),
        vec![("if-match", etag.clone())],
        Some(json!({"title": "a3"})),
    )
    .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    check("patch", "/api/tasks/{task_id}", &stale);
    let put = send(
        Method::PUT,
        url.clone(),
        vec![],
        Some(json!({"priority": "high"})),
    )
    .await;
    check("put", "/api/tasks/{task_id}", &put);
    let moved = send(
        Method::POST,
        format!("{url}/move"),
        vec![("idempotency-key", "m-1".into())],
        Some(json!({"after": null})),
    )
    .await;
    check("post", "/api/tasks/{task_id}/move", &moved);
    let stale_delete = send(Method::DELETE, url.clone(), vec![("if-match", etag)], None).await;
    assert_eq!(stale_delete.status, StatusCode::PRECONDITION_FAILED);
    check("delete", "/api/tasks/{task_id}", &stale_delete);
    check(
        "delete",
        "/api/tasks/{task_id}",
        &send(Method::DELETE, url.clone(), vec![], None).await,
    );
    check(
        "post",
        "/api/tasks/{task_id}/restore",
        &send(Method::POST, format!("{url}/restore"), vec![], None).await,
    );
    check(
        "get",
        "/api/tasks/{task_id}",
        &send(Method::GET, "/api/tasks/999999".into(), vec![], None).await,
    );
    check(
        "get",
        "/api/tasks/changes",
        &send(Method::GET, "/api/tasks/changes".into(), vec![], None).await,
    );

    let lists = send(Method::GET, "/api/lists".into(), vec![], None).await;
    check("get", "/api/lists", &lists);
    let lists_tag = lists.header("etag").unwrap_or_default().to_owned();
    let same = send(
        Method::GET,
        "/api/lists".into(),
        vec![("if-none-match", lists_tag)],
        None,
    )
    .await;
    assert_eq!(same.status, StatusCode::NOT_MODIFIED);
    check("get", "/api/lists", &same);
    check(
        "post",
        "/api/lists",
        &send(
            Method::POST,
            "/api/lists".into(),
            vec![],
            Some(json!({"name": "L"})),
        )
        .await,
    );

    // What the layers answer, on any route.
    let long = send(
        Method::GET,
        format!("/api/tasks?q={}", "x".repeat(9000)),
        vec![],
        None,
    )
    .await;
    assert_eq!(long.status, StatusCode::URI_TOO_LONG);
    check("get", "/api/tasks", &long);
    let mut crowded = app.request(Method::GET, "/api/lists").token(&alice);
    for n in 0..120 {
        crowded = crowded.header(&format!("x-filler-{n}"), "1");
    }
    let crowded = crowded.send().await;
    assert_eq!(crowded.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    check("get", "/api/lists", &crowded);
    let anonymous = app.request(Method::GET, "/api/tasks").send().await;
    check("get", "/api/tasks", &anonymous);
    for probe in ["/health", "/ready"] {
        check("get", probe, &app.request(Method::GET, probe).send().await);
    }
}

/// With rate limits on, every counted response carries the quota, and the one over it
/// `Retry-After`: all declared.
#[test]
fn rate_limit_headers_are_declared() {
    use crate::operations::request;
    use crate::support::app::SECRET;
    use crate::support::spawned::Server;
    let doc = serde_json::to_value(todo_backend::app::openapi()).expect("serializes");
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(
        dir.path(),
        &[
            ("BETTER_AUTH_SECRET", SECRET),
            ("DATABASE_URL", "sqlite::memory:"),
            ("RATE_LIMIT_PER_MINUTE", "60"),
            ("RATE_LIMIT_BURST", "2"),
        ],
    );
    let user = format!("quota-{}", uuid::Uuid::new_v4().simple());
    let alice = token(&user);
    let mut statuses = Vec::new();
    for (method, path, template) in [
        ("POST", "/api/tasks", "/api/tasks"),
        ("GET", "/api/tasks", "/api/tasks"),
        ("GET", "/api/lists", "/api/lists"),
    ] {
        let response = request(server.port, method, path, Some(&alice), &[]);
        let names: Vec<&str> = response
            .head
            .lines()
            .skip(1)
            .filter_map(|line| line.split_once(':').map(|(name, _)| name))
            .collect();
        let lower: Vec<String> = names.iter().map(|name| name.to_ascii_lowercase()).collect();
        let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
        assert!(lower.contains(&"ratelimit"), "{}", response.head);
        declared(
            &doc,
            &method.to_ascii_lowercase(),
            template,
            response.status,
            &lower,
        );
        statuses.push(response.status);
    }
    assert_eq!(
        statuses.last(),
        Some(&429),
        "the third is over the burst of two"
    );
}
