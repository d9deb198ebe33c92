//! The change feed's route: a thin handler over [`crate::store::ChangeFeed::changes`].

use axum::Json;
use axum::extract::State;

use super::query::{FeedParams, FeedRequest};
use crate::domain::ChangePage;
use crate::http::extract::AuthUser;
use crate::http::responses::AuthenticatedErrors;
use crate::http::{ApiError, AppState, ErrorBody};

/// The caller's changes since a cursor, in the order they were committed: what an offline
/// client applies to its copy to catch up. Each task appears once, in its latest state
/// (`upsert`) or as deleted (`delete`); keep `next_cursor` and ask again while `has_more`.
#[utoipa::path(
    get,
    path = "/api/tasks/changes",
    tag = "tasks",
    params(FeedParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One page of changes", body = ChangePage),
        (status = 410, description = "The cursor is older than the kept history (or not from \
            this service): sync again from the start", body = ErrorBody),
        (status = 422, description = "Invalid since or limit", body = ErrorBody),
        AuthenticatedErrors,
    )
)]
pub async fn list_changes(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    request: FeedRequest,
) -> Result<Json<ChangePage>, ApiError> {
    let page = state
        .feed
        .changes(&user, request.since, request.limit, request.lists)
        .await?;
    Ok(Json(page))
}
