//! How a task becomes a response: its JSON, its `ETag`, and for a replay the recorded
//! original.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::domain::{Once, Outcome, Replay, Task, TaskId};
use crate::http::ApiError;
use crate::http::etag::task_etag;

/// The header that marks a replayed response.
pub const REPLAYED: &str = "idempotent-replayed";

/// A task with its strong `ETag` (PUT's response omits it: RFC 9110 §9.3.4).
pub fn task(status: StatusCode, task: &Task, with_etag: bool) -> Result<Response, ApiError> {
    let body = serde_json::to_vec(task).map_err(|error| ApiError::Internal(error.into()))?;
    let mut response = json(status, body);
    if with_etag {
        response
            .headers_mut()
            .insert(header::ETAG, task_etag(task.id, task.version));
    }
    if status == StatusCode::CREATED {
        insert_location(&mut response, task.id);
    }
    Ok(response)
}

/// The outcome of a write that may have been made before under the same key: the new
/// task, or the original response again, marked as such.
pub fn once(what: Outcome, outcome: Once<Task>) -> Result<Response, ApiError> {
    match outcome {
        Once::Done(done) => task(status_of(what), &done, true),
        Once::Replayed(replay) => Ok(replayed(replay)),
    }
}

/// The status a write's outcome is answered with, the first time and on every replay.
fn status_of(outcome: Outcome) -> StatusCode {
    match outcome {
        Outcome::Created | Outcome::ListCreated => StatusCode::CREATED,
        Outcome::Moved => StatusCode::OK,
    }
}

pub fn replayed(replay: Replay) -> Response {
    let status = status_of(replay.outcome);
    let mut response = json(status, replay.body.into_bytes());
    let headers = response.headers_mut();
    headers.insert(REPLAYED, HeaderValue::from_static("true"));
    if replay.outcome == Outcome::ListCreated {
        if let Ok(location) = HeaderValue::from_str(&format!("/api/lists/{}", replay.id)) {
            response.headers_mut().insert(header::LOCATION, location);
        }
        return response;
    }
    headers.insert(header::ETAG, task_etag(replay.id, replay.version));
    if status == StatusCode::CREATED {
        insert_location(&mut response, replay.id);
    }
    response
}

/// 304: the client's copy, named by `etag`, is current.
pub fn not_modified(etag: HeaderValue) -> Response {
    (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response()
}

pub fn json(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn insert_location(response: &mut Response, id: TaskId) {
    if let Ok(location) = HeaderValue::from_str(&format!("/api/tasks/{id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
}
