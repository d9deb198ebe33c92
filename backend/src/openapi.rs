//! What the OpenAPI document says beyond what the route annotations give: the headers every
//! route reads and writes, the statuses every route can answer (a URI or headers too large, a
//! rate limit), the fields every response carries, and where the document is served.
//!
//! These hold for many routes at once because layers, not handlers, produce them (the request
//! limits, the rate limits, conditional requests), so they are added here, once, rather than
//! repeated in each route's annotation. `tests/api/openapi.rs` holds the result to what the
//! service does.

use serde_json::{Map, Value, json};
use utoipa::openapi::OpenApi;

use crate::http::request_limits::{MAX_HEADER_BYTES, MAX_HEADERS, MAX_URI_BYTES};

/// Response schemas whose every property is always sent (`null` where it has no value), so
/// that generated clients need no `undefined` check.
const ALWAYS_SENT: [&str; 7] = [
    "Task",
    "List",
    "Member",
    "Invitation",
    "ChangePage",
    "Export",
    "ExportedList",
];

/// Operations that honour `If-Match` (a write at a version) and `If-None-Match` (a read that
/// may be answered 304).
const IF_MATCH: [(&str, &str); 4] = [
    ("put", "/api/tasks/{task_id}"),
    ("patch", "/api/tasks/{task_id}"),
    ("delete", "/api/tasks/{task_id}"),
    ("post", "/api/tasks/{task_id}/move"),
];
const IF_NONE_MATCH: [(&str, &str); 3] = [
    ("get", "/api/tasks"),
    ("get", "/api/tasks/{task_id}"),
    ("get", "/api/lists"),
];

/// The document with what the layers add.
pub fn complete(document: OpenApi) -> OpenApi {
    let Ok(mut json) = serde_json::to_value(&document) else {
        return document;
    };
    add_to(&mut json);
    serde_json::from_value(json).unwrap_or(document)
}

fn add_to(document: &mut Value) {
    document["servers"] = json!([{
        "url": "http://127.0.0.1:8000",
        "description": "The service as `cargo run` starts it; use your deployment's URL"
    }]);
    let components = &mut document["components"];
    components["headers"] = headers();
    for name in ALWAYS_SENT {
        if let Some(schema) = components["schemas"].get_mut(name) {
            let names: Vec<Value> = schema["properties"]
                .as_object()
                .map(|properties| properties.keys().cloned().map(Value::String).collect())
                .unwrap_or_default();
            schema["required"] = Value::Array(names);
        }
    }
    let Some(paths) = document["paths"].as_object_mut() else {
        return;
    };
    for (path, operations) in paths.iter_mut() {
        let Some(operations) = operations.as_object_mut() else {
            continue;
        };
        for (method, operation) in operations.iter_mut() {
            complete_operation(path, method, operation);
        }
    }
}

fn complete_operation(path: &str, method: &str, operation: &mut Value) {
    let api = path.starts_with("/api/");
    if !api {
        // The probes need no token.
        operation["security"] = json!([]);
    }
    let parameters = operation["parameters"].as_array_mut();
    let mut added = Vec::new();
    if IF_MATCH.contains(&(method, path)) {
        added.push(condition(
            "If-Match",
            "Write only at this version: the task's `ETag` (or `*`); another version is a 412",
        ));
    }
    if IF_NONE_MATCH.contains(&(method, path)) {
        added.push(condition(
            "If-None-Match",
            "The `ETag` of the copy the client holds: a 304 without a body when it is current",
        ));
    }
    match parameters {
        Some(parameters) => parameters.extend(added),
        None if !added.is_empty() => operation["parameters"] = Value::Array(added),
        None => {}
    }
    if path == "/api/tasks" && method == "get" {
        sort_as_enum(operation);
    }
    if path == "/api/tasks/events" {
        // OpenAPI 3.1 has no schema for the events of a stream (3.2's `itemSchema`): the
        // payload is named in an extension, for readers and for a client's own code (the
        // generators leave it out; clients/typescript types it by hand from the same schema).
        operation["responses"]["200"]["content"]["text/event-stream"]["x-event-data"] =
            json!({"$ref": "#/components/schemas/Change"});
    }
    let Some(responses) = operation["responses"].as_object_mut() else {
        return;
    };
    let uri = format!(
        "The request target is longer than {} KiB",
        MAX_URI_BYTES / 1024
    );
    add_response(responses, "414", &uri);
    let headers = format!(
        "More than {MAX_HEADERS} request headers, or more than {} KiB of them",
        MAX_HEADER_BYTES / 1024
    );
    add_response(responses, "431", &headers);
    if api {
        add_response(
            responses,
            "429",
            "Over a rate limit; `Retry-After` says when to retry",
        );
    }
    for (status, response) in responses.iter_mut() {
        let headers = response
            .as_object_mut()
            .map(|response| response.entry("headers").or_insert_with(|| json!({})));
        let Some(Value::Object(headers)) = headers else {
            continue;
        };
        if api {
            headers.insert("RateLimit".into(), header_ref("RateLimit"));
            headers.insert("RateLimit-Policy".into(), header_ref("RateLimit-Policy"));
        }
        if matches!(status.as_str(), "429" | "503") {
            headers.insert("Retry-After".into(), header_ref("Retry-After"));
        }
        if matches!(status.as_str(), "304" | "412") {
            headers.insert("ETag".into(), header_ref("ETag"));
        }
        if headers.is_empty()
            && let Some(response) = response.as_object_mut()
        {
            response.remove("headers");
        }
    }
}

fn condition(name: &str, description: &str) -> Value {
    json!({
        "name": name,
        "in": "header",
        "required": false,
        "description": description,
        "schema": {"type": "string", "examples": ["\"42-3\""]},
    })
}

fn sort_as_enum(operation: &mut Value) {
    let Some(parameters) = operation["parameters"].as_array_mut() else {
        return;
    };
    for parameter in parameters {
        if parameter["name"] == "sort" {
            let fields = [
                "created_at",
                "updated_at",
                "due_at",
                "priority",
                "title",
                "position",
            ];
            let values: Vec<Value> = fields
                .iter()
                .flat_map(|field| [json!(field), json!(format!("-{field}"))])
                .collect();
            parameter["schema"] = json!({
                "type": "string",
                "enum": values,
                "default": "-created_at",
            });
        }
    }
}

fn add_response(responses: &mut Map<String, Value>, status: &str, description: &str) {
    responses.entry(status).or_insert_with(|| {
        json!({
            "description": description,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}
            },
        })
    });
}

fn header_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/headers/{name}")})
}

fn headers() -> Value {
    json!({
        "RateLimit": {
            "description": "The caller's remaining quota, `\"<policy>\";r=<remaining>;t=<seconds \
                to reset>` (draft-ietf-httpapi-ratelimit-headers); sent when rate limits are on",
            "schema": {"type": "string"},
        },
        "RateLimit-Policy": {
            "description": "The quota policy, `\"<policy>\";q=<requests>;w=<window seconds>`; \
                sent when rate limits are on",
            "schema": {"type": "string"},
        },
        "ETag": {
            "description": "The current entity tag: of the copy the client holds (304), or of the \
                version that a condition did not name (412)",
            "schema": {"type": "string"},
        },
        "Retry-After": {
            "description": "Seconds to wait before retrying",
            "schema": {"type": "integer", "minimum": 0},
        },
    })
}
