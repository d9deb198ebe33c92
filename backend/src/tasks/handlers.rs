//! The task routes. Each handler is a few lines: extract (which validates and authenticates),
//! call the store with the caller's id, shape the response.

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};

use super::model::{CreateTask, ListQuery, Task, TaskId, UpdateTask};
use crate::app::AppState;
use crate::auth::AuthUser;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ValidJson, ValidQuery};

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

/// The `{task_id}` path parameter: a positive integer, else 422.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(names("task_id"), parameter_in = Path)]
pub struct TaskIdParam(#[param(value_type = i64, minimum = 1)] pub TaskId);

impl<S: Send + Sync> FromRequestParts<S> for TaskIdParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| ApiError::invalid_field("task_id", rejection.body_text()))?;
        raw.parse()
            .map(TaskIdParam)
            .map_err(|message: &str| ApiError::invalid_field("task_id", message))
    }
}
