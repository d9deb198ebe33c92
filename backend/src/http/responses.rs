//! The error responses the routes share, for the OpenAPI document.
//!
//! Each type documents one status (or, for [`AuthenticatedErrors`], the set every
//! authenticated route returns) with an [`ErrorBody`], so a route's `#[utoipa::path]` lists
//! them by name and spells out only what is particular to it. Most are named after the
//! [`ApiError`](super::ApiError) variant they describe. None is ever built: they exist for
//! their [`IntoResponses`] implementations.

// Each field only carries the body's schema to the derive; nothing builds or reads one.
#![allow(dead_code)]

use std::collections::BTreeMap;

use utoipa::IntoResponses;
use utoipa::openapi::{RefOr, Response};

use super::ErrorBody;

/// The token is missing, malformed, expired or not trusted.
#[derive(IntoResponses)]
#[response(status = 401, description = "Missing or invalid token")]
pub struct Unauthorized(ErrorBody);

/// The database did not answer in time, or the service is shutting down.
#[derive(IntoResponses)]
#[response(status = 503, description = "Database unavailable, retry")]
pub struct Unavailable(ErrorBody);

/// What every authenticated route that reaches the database can fail with: [`Unauthorized`]
/// and [`Unavailable`].
pub struct AuthenticatedErrors;

impl IntoResponses for AuthenticatedErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut responses = Unauthorized::responses();
        responses.extend(Unavailable::responses());
        responses
    }
}

/// The task does not exist, or is in a list the caller is not a member of: the two are
/// indistinguishable.
#[derive(IntoResponses)]
#[response(
    status = 404,
    description = "No such task for this user (or a list named in the body is not theirs)"
)]
pub struct TaskNotFound(ErrorBody);

/// The caller is a member of the task's list (or of a list named in the body) without the
/// right to write it: a viewer.
#[derive(IntoResponses)]
#[response(
    status = 403,
    description = "A viewer of the task's list (or of the list named)"
)]
pub struct ReadOnly(ErrorBody);

/// The `{task_id}` in the path is not a task id.
#[derive(IntoResponses)]
#[response(status = 422, description = "Invalid task id")]
pub struct InvalidTaskId(ErrorBody);

/// `If-Match` is not a list of entity tags (or `*`).
#[derive(IntoResponses)]
#[response(status = 400, description = "Malformed If-Match")]
pub struct MalformedIfMatch(ErrorBody);

/// `If-Match` names another version than the task's; the response's `ETag` is the current one.
#[derive(IntoResponses)]
#[response(
    status = 412,
    description = "`If-Match` does not name the current version; `ETag` carries it"
)]
pub struct PreconditionFailed(ErrorBody);

/// A request with the same `Idempotency-Key` has not finished yet.
#[derive(IntoResponses)]
#[response(
    status = 409,
    description = "A request with this key is still in progress"
)]
pub struct KeyInFlight(ErrorBody);

/// A create or a move into a list that already holds a task with the uid, or a request whose
/// `Idempotency-Key` has not finished yet.
#[derive(IntoResponses)]
#[response(
    status = 409,
    description = "A request with this key is still in progress, or the list already holds a \
        task with this `uid` (`Location` names it)",
    headers(("location" = String, description = "The task that holds the uid"))
)]
pub struct KeyInFlightOrUidTaken(ErrorBody);

/// A move into a list that already holds a task with the task's uid.
#[derive(IntoResponses)]
#[response(
    status = 409,
    description = "The list the task moves to already holds a task with its `uid` \
        (`Location` names it)",
    headers(("location" = String, description = "The task that holds the uid"))
)]
pub struct UidTaken(ErrorBody);

/// The body is over [`BODY_LIMIT_BYTES`](super::request_limits::BODY_LIMIT_BYTES).
#[derive(IntoResponses)]
#[response(status = 413, description = "Body larger than 64 KiB")]
pub struct PayloadTooLarge(ErrorBody);

/// The body's `Content-Type` is not JSON.
#[derive(IntoResponses)]
#[response(status = 415, description = "Body is not JSON")]
pub struct UnsupportedMediaType(ErrorBody);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request_limits::BODY_LIMIT_BYTES;

    #[test]
    fn the_documented_body_limit_is_the_enforced_one() {
        let responses = PayloadTooLarge::responses();
        let RefOr::T(response) = &responses["413"] else {
            panic!("an inline response");
        };
        let limit = format!("{} KiB", BODY_LIMIT_BYTES / 1024);
        assert!(
            response.description.contains(&limit),
            "{}",
            response.description
        );
    }
}
