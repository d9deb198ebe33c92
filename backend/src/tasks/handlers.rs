//! The task routes. Each handler is a few lines: extract (which validates and authenticates),
//! call the store with the caller's id, shape the response.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};

use super::cursor;
use super::query::{ListParams, ListRequest};
use crate::domain::task::MoveTaskSchema;
use crate::domain::{CreateTask, MoveTask, Task, UpdateTask};
use crate::http::extract::{AuthUser, TaskIdParam, ValidJson};
use crate::http::{ApiError, AppState, ErrorBody};

/// Creates a task owned by the caller.
#[utoipa::path(
    post,
    path = "/api/tasks",
    tag = "tasks",
    request_body = CreateTask,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The new task", body = Task,
            headers(("location" = String, description = "The new task's URL"))),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 413, description = "Body larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid body", body = ErrorBody),
        (status = 503, description = "Database unavailable, retry", body = ErrorBody),
    )
)]
pub async fn create_task(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ValidJson(body): ValidJson<CreateTask>,
) -> Result<(StatusCode, HeaderMap, Json<Task>), ApiError> {
    let task = state.store.create(&user, body).await?;
    let mut headers = HeaderMap::new();
    let location = format!("/api/tasks/{}", task.id);
    if let Ok(location) = HeaderValue::from_str(&location) {
        headers.insert(header::LOCATION, location);
    }
    Ok((StatusCode::CREATED, headers, Json(task)))
}

/// Lists the caller's tasks that match the filters, in the order asked for (newest first by
/// default), one page at a time.
///
/// `X-Total-Count` is the number of tasks that match the filters. A page that has a successor
/// carries `Link: <...>; rel="next"`, whose `cursor` starts the next page after the last task
/// of this one: pages stay stable while tasks are added, which `offset` does not promise.
#[utoipa::path(
    get,
    path = "/api/tasks",
    tag = "tasks",
    params(ListParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One page of the caller's matching tasks", body = Vec<Task>,
            headers(
                ("x-total-count" = i64, description = "How many tasks match the filters"),
                ("link" = String, description = "`<...>; rel=\"next\"` when another page follows"),
            )),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 422, description = "Invalid parameter or cursor", body = ErrorBody),
        (status = 503, description = "Database unavailable, retry", body = ErrorBody),
    )
)]
pub async fn list_tasks(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    request: ListRequest,
) -> Result<(HeaderMap, Json<Vec<Task>>), ApiError> {
    let mut query = request.query.clone();
    if let Some(raw) = &request.cursor {
        let keyset = cursor::decode(&state.cursor_key, &user, query.sort, &query.filter, raw)
            .map_err(|error| ApiError::invalid_field("cursor", error.to_string()))?;
        query.after = Some(keyset);
    }
    let page_size = query.limit as usize;
    // One task more than the page, to know whether another page follows.
    query.limit += 1;
    let (mut tasks, total) = tokio::try_join!(
        state.store.list(&user, &query),
        state.store.count(&user, &query.filter)
    )?;
    let mut headers = HeaderMap::new();
    headers.insert("x-total-count", HeaderValue::from(total));
    if tasks.len() > page_size {
        tasks.truncate(page_size);
        if let Some(last) = tasks.last() {
            let next = cursor::encode(&state.cursor_key, &user, query.sort, &query.filter, last);
            let link = format!("</api/tasks?{}>; rel=\"next\"", request.next_query(&next));
            if let Ok(link) = HeaderValue::from_str(&link) {
                headers.insert(header::LINK, link);
            }
        }
    }
    Ok((headers, Json(tasks)))
}

/// Returns one of the caller's tasks.
#[utoipa::path(
    get,
    path = "/api/tasks/{task_id}",
    tag = "tasks",
    params(TaskIdParam),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The task", body = Task),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "No such task for this user", body = ErrorBody),
        (status = 422, description = "Invalid task id", body = ErrorBody),
        (status = 503, description = "Database unavailable, retry", body = ErrorBody),
    )
)]
pub async fn get_task(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    TaskIdParam(id): TaskIdParam,
) -> Result<Json<Task>, ApiError> {
    Ok(Json(state.store.get(&user, id).await?))
}

/// Changes the fields present in the body; absent fields stay as they are.
#[utoipa::path(
    put,
    path = "/api/tasks/{task_id}",
    tag = "tasks",
    params(TaskIdParam),
    request_body = UpdateTask,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The updated task", body = Task),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "No such task for this user", body = ErrorBody),
        (status = 413, description = "Body larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid task id or body", body = ErrorBody),
        (status = 503, description = "Database unavailable, retry", body = ErrorBody),
    )
)]
pub async fn update_task(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    TaskIdParam(id): TaskIdParam,
    ValidJson(changes): ValidJson<UpdateTask>,
) -> Result<Json<Task>, ApiError> {
    Ok(Json(state.store.update(&user, id, changes).await?))
}

/// Changes the fields present in a JSON Merge Patch (RFC 7396): a member set to `null`
/// clears it (422 where the field cannot be empty), an absent member stays as it is.
#[utoipa::path(
    patch,
    path = "/api/tasks/{task_id}",
    tag = "tasks",
    params(TaskIdParam),
    request_body(content = UpdateTask, content_type = "application/merge-patch+json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The updated task", body = Task),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "No such task for this user", body = ErrorBody),
        (status = 413, description = "Body larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid task id or patch", body = ErrorBody),
        (status = 503, description = "Database unavailable, retry", body = ErrorBody),
    )
)]
pub async fn patch_task(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    TaskIdParam(id): TaskIdParam,
    ValidJson(patch): ValidJson<UpdateTask>,
) -> Result<Json<Task>, ApiError> {
    // For an object of scalars and arrays, a merge patch is exactly a partial update.
    Ok(Json(state.store.update(&user, id, patch).await?))
}

/// Moves a task in the manual order (`sort=position`): right after the task `after`, right
/// before the task `before`, to the top (`{"after": null}`) or to the bottom
/// (`{"before": null}`). Only the moved task changes; next to itself, nothing does.
#[utoipa::path(
    post,
    path = "/api/tasks/{task_id}/move",
    tag = "tasks",
    params(TaskIdParam),
    request_body = MoveTaskSchema,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The moved task, with its new position", body = Task),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "The task or its new neighbour is not the caller's", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Both or neither of after and before", body = ErrorBody),
        (status = 503, description = "Database unavailable, retry", body = ErrorBody),
    )
)]
pub async fn move_task(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    TaskIdParam(id): TaskIdParam,
    ValidJson(body): ValidJson<MoveTask>,
) -> Result<Json<Task>, ApiError> {
    let placement = body
        .placement()
        .map_err(|(field, message)| ApiError::invalid_field(field, message))?;
    Ok(Json(state.store.move_task(&user, id, placement).await?))
}

/// Deletes one of the caller's tasks.
#[utoipa::path(
    delete,
    path = "/api/tasks/{task_id}",
    tag = "tasks",
    params(TaskIdParam),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "No such task for this user", body = ErrorBody),
        (status = 422, description = "Invalid task id", body = ErrorBody),
        (status = 503, description = "Database unavailable, retry", body = ErrorBody),
    )
)]
pub async fn delete_task(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    TaskIdParam(id): TaskIdParam,
) -> Result<StatusCode, ApiError> {
    state.store.delete(&user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
