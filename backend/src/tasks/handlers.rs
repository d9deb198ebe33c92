//! The task routes. Each handler is a few lines: extract (which validates and authenticates),
//! call the store with the caller's id, shape the response.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};

use super::query::ListQuery;
use crate::domain::{CreateTask, Task, UpdateTask};
use crate::http::extract::{AuthUser, TaskIdParam, ValidJson, ValidQuery};
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

/// Lists the caller's tasks, newest first.
#[utoipa::path(
    get,
    path = "/api/tasks",
    tag = "tasks",
    params(ListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's tasks, newest first", body = Vec<Task>),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 422, description = "Invalid limit or offset", body = ErrorBody),
        (status = 503, description = "Database unavailable, retry", body = ErrorBody),
    )
)]
pub async fn list_tasks(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ValidQuery(query): ValidQuery<ListQuery>,
) -> Result<Json<Vec<Task>>, ApiError> {
    Ok(Json(state.store.list(&user, query.into()).await?))
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
