//! The task routes. Each handler is a few lines: extract (which validates and authenticates),
//! call the store with the caller's id, shape the response.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use super::query::{ListParams, ListRequest};
use super::{cursor, respond};
use crate::domain::task::MoveTaskSchema;
use crate::domain::{CreateTask, Expect, Move, Outcome, Task, UpdateTask};
use crate::http::conditional::{IfMatch, none_match};
use crate::http::etag::{list_etag, task_etag};
use crate::http::extract::{AuthUser, MergePatch, TaskIdParam, ValidJson};
use crate::http::idempotency::IdempotentJson;
use crate::http::prefer::{self, Count};
use crate::http::responses::{
    AuthenticatedErrors, InvalidTaskId, KeyInFlightOrUidTaken, MalformedIfMatch, PayloadTooLarge,
    PreconditionFailed, ReadOnly, TaskNotFound, UidTaken, UnsupportedMediaType,
};
use crate::http::{ApiError, AppState, ErrorBody};

/// Creates a task owned by the caller.
#[utoipa::path(
    post,
    path = "/api/tasks",
    tag = "tasks",
    request_body = CreateTask,
    params(IdempotencyKeyHeader),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The new task (or, with `Idempotent-Replayed: true`, the \
            original response to the same request sent earlier with the same key)", body = Task,
            headers(
                ("location" = String, description = "The new task's URL"),
                ("etag" = String, description = "The task's strong entity tag"),
                ("idempotent-replayed" = bool, description = "`true` on a replay"),
            )),
        (status = 400, description = "Invalid Idempotency-Key", body = ErrorBody),
        (status = 404, description = "`list_id` names a list the caller is not a member of, or \
            `parent_id` a task that is not a live task of the list", body = ErrorBody),
        (status = 422, description = "Invalid body, an assignee who is not a member of the \
            list, a fifth level of subtasks, a recurrence without `due_at`, or a key used with \
            a different request", body = ErrorBody),
        ReadOnly, KeyInFlightOrUidTaken, PayloadTooLarge, UnsupportedMediaType,
        AuthenticatedErrors,
    )
)]
pub async fn create_task(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    body: IdempotentJson<CreateTask>,
) -> Result<Response, ApiError> {
    let outcome = state
        .tasks
        .create(&user, body.value, body.key.as_ref())
        .await?;
    respond::once(Outcome::Created, outcome)
}

/// Lists the caller's tasks that match the filters, in the order asked for (newest first by
/// default), one page at a time.
///
/// `X-Total-Count` is the number of tasks that match the filters; a client that does not read
/// it sends `Prefer: count=none`, and no count is made. A page that has a successor
/// carries `Link: <...>; rel="next"`, whose `cursor` starts the next page after the last task
/// of this one: pages stay stable while tasks are added, which `offset` does not promise.
#[utoipa::path(
    get,
    path = "/api/tasks",
    tag = "tasks",
    params(ListParams, PreferHeader),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One page of the caller's matching tasks", body = Vec<Task>,
            headers(
                ("x-total-count" = i64, description = "How many tasks match the filters; not \
                    sent with `Prefer: count=none`"),
                ("link" = String, description = "`<...>; rel=\"next\"` when another page follows"),
                ("etag" = String, description = "A weak entity tag of this page, for `If-None-Match`"),
                ("preference-applied" = String, description = "`count=none` or `count=exact`, \
                    when the request stated a `count` preference"),
                ("vary" = String, description = "`Prefer`: the count depends on it"),
            )),
        (status = 304, description = "`If-None-Match` names this page as it still is"),
        (status = 400, description = "Malformed If-None-Match", body = ErrorBody),
        (status = 404, description = "`list_id` names a list the caller is not a member of", body = ErrorBody),
        (status = 422, description = "Invalid parameter or cursor", body = ErrorBody),
        AuthenticatedErrors,
    )
)]
pub async fn list_tasks(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    request: ListRequest,
    conditions: HeaderMap,
) -> Result<Response, ApiError> {
    let mut query = request.query.clone();
    if let Some(raw) = &request.cursor {
        let keyset = cursor::decode(&state.cursor_key, &user, query.sort, &query.filter, raw)
            .map_err(|error| ApiError::invalid_field("cursor", error.to_string()))?;
        query.after = Some(keyset);
    }
    let page_size = query.limit as usize;
    // One task more than the page, to know whether another page follows.
    query.limit += 1;
    let (count, stated) = prefer::count(&conditions);
    let counted = async {
        match count {
            Count::Exact => state.tasks.count(&user, &query.filter).await.map(Some),
            Count::None => Ok(None),
        }
    };
    let (mut tasks, total) = tokio::try_join!(state.tasks.list(&user, &query), counted)?;
    let mut response = respond::json(StatusCode::OK, Vec::new());
    let headers = response.headers_mut();
    headers.insert(header::VARY, HeaderValue::from_static("prefer"));
    if let Some(total) = total {
        headers.insert("x-total-count", HeaderValue::from(total));
    }
    if stated {
        headers.insert(prefer::PREFERENCE_APPLIED, prefer::applied(count));
    }
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
    let body = serde_json::to_vec(&tasks).map_err(|error| ApiError::Internal(error.into()))?;
    // Without a count the page is another representation: its tag differs (no total is -1).
    let etag = list_etag(&user, &body, total.unwrap_or(-1));
    if none_match(&conditions, &etag)? {
        return Ok(respond::not_modified(etag));
    }
    headers.insert(header::ETAG, etag);
    *response.body_mut() = body.into();
    Ok(response)
}

/// Returns one of the caller's tasks.
#[utoipa::path(
    get,
    path = "/api/tasks/{task_id}",
    tag = "tasks",
    params(TaskIdParam),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The task", body = Task,
            headers(("etag" = String, description = "The task's strong entity tag"))),
        (status = 304, description = "`If-None-Match` names the task's current version"),
        (status = 400, description = "Malformed If-None-Match", body = ErrorBody),
        TaskNotFound, InvalidTaskId, AuthenticatedErrors,
    )
)]
pub async fn get_task(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    TaskIdParam(id): TaskIdParam,
    conditions: HeaderMap,
) -> Result<Response, ApiError> {
    let task = state.tasks.get(&user, id).await?;
    let etag = task_etag(task.id, task.version);
    if none_match(&conditions, &etag)? {
        return Ok(respond::not_modified(etag));
    }
    respond::task(StatusCode::OK, &task, true)
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
        (status = 200, description = "The updated task. No `ETag`: the stored task differs \
            from the body sent, so the client takes `version` from the body", body = Task),
        (status = 422, description = "Invalid task id or body, an assignee who is not a \
            member of the list, a parent that would make a cycle or a fifth level, or a \
            recurrence without `due_at`", body = ErrorBody),
        MalformedIfMatch, ReadOnly, TaskNotFound, PreconditionFailed, UidTaken, PayloadTooLarge,
        UnsupportedMediaType, AuthenticatedErrors,
    )
)]
pub async fn update_task(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    TaskIdParam(id): TaskIdParam,
    condition: IfMatch,
    ValidJson(changes): ValidJson<UpdateTask>,
) -> Result<Response, ApiError> {
    let expect = condition.versions_for(id);
    let task = state.tasks.update(&user, id, changes, &expect).await?;
    respond::task(StatusCode::OK, &task, false)
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
        (status = 200, description = "The updated task", body = Task,
            headers(("etag" = String, description = "The task's strong entity tag"))),
        (status = 415, description = "Body is not a JSON Merge Patch (`application/merge-patch+json` \
            or `application/json`)", body = ErrorBody),
        (status = 422, description = "Invalid task id or patch, an assignee who is not a \
            member of the list, a parent that would make a cycle or a fifth level, or a \
            recurrence without `due_at`", body = ErrorBody),
        MalformedIfMatch, ReadOnly, TaskNotFound, PreconditionFailed, UidTaken, PayloadTooLarge,
        AuthenticatedErrors,
    )
)]
pub async fn patch_task(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    TaskIdParam(id): TaskIdParam,
    condition: IfMatch,
    MergePatch(patch): MergePatch<UpdateTask>,
) -> Result<Response, ApiError> {
    let expect = condition.versions_for(id);
    // For an object of scalars and arrays, a merge patch is exactly a partial update.
    let task = state.tasks.update(&user, id, patch, &expect).await?;
    respond::task(StatusCode::OK, &task, true)
}

/// Moves a task in the manual order (`sort=position`): right after the task `after`, right
/// before the task `before`, to the top (`{"after": null}`) or to the bottom
/// (`{"before": null}`); with `list_id`, into that list (write access to both lists), next
/// to a task of it. Only the moved task changes; next to itself, nothing does.
#[utoipa::path(
    post,
    path = "/api/tasks/{task_id}/move",
    tag = "tasks",
    params(TaskIdParam, IdempotencyKeyHeader),
    request_body = MoveTaskSchema,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The moved task, with its new position (or, with \
            `Idempotent-Replayed: true`, the original response to the same request)", body = Task,
            headers(
                ("etag" = String, description = "The task's strong entity tag"),
                ("idempotent-replayed" = bool, description = "`true` on a replay"),
            )),
        (status = 400, description = "Malformed If-Match or Idempotency-Key", body = ErrorBody),
        (status = 403, description = "A viewer of the task's list", body = ErrorBody),
        (status = 404, description = "The task or its new neighbour is not the caller's", body = ErrorBody),
        (status = 422, description = "Both or neither of after and before, or a key used with \
            a different request", body = ErrorBody),
        KeyInFlightOrUidTaken, PreconditionFailed, UnsupportedMediaType, AuthenticatedErrors,
    )
)]
pub async fn move_task(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    TaskIdParam(id): TaskIdParam,
    condition: IfMatch,
    IdempotentJson { value: to, key }: IdempotentJson<Move>,
) -> Result<Response, ApiError> {
    let mut expect = condition.versions_for(id);
    if let Some(list) = to.list {
        // Into another list: to its end (the checks and the condition of any update), then to
        // its place there. The neighbour is checked first, so that a bad one changes nothing.
        let task = state.tasks.get(&user, id).await?;
        if task.list_id != list {
            if let Some(anchor) = to.placement.anchor()
                && state.tasks.get(&user, anchor).await?.list_id != list
            {
                return Err(ApiError::invalid_field(
                    "list_id",
                    "the neighbour must be a task of this list",
                ));
            }
            let changes = UpdateTask {
                list_id: Some(list),
                ..UpdateTask::default()
            };
            state.tasks.update(&user, id, changes, &expect).await?;
            expect = Expect::Any;
        }
    }
    let outcome = state
        .tasks
        .move_task(&user, id, to.placement, &expect, key.as_ref())
        .await?;
    respond::once(Outcome::Moved, outcome)
}

/// Moves one of the caller's tasks to the trash: from then on it is a missing task, except
/// to `GET /api/tasks?deleted=true` and `restore`, until it is purged for good.
#[utoipa::path(
    delete,
    path = "/api/tasks/{task_id}",
    tag = "tasks",
    params(TaskIdParam),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Moved to the trash"),
        MalformedIfMatch, ReadOnly, TaskNotFound, PreconditionFailed, InvalidTaskId,
        AuthenticatedErrors,
    )
)]
pub async fn delete_task(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    TaskIdParam(id): TaskIdParam,
    condition: IfMatch,
) -> Result<StatusCode, ApiError> {
    state
        .tasks
        .delete(&user, id, &condition.versions_for(id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Brings a task back from the trash, where it is kept for `TRASH_RETENTION_DAYS`; its
/// `version` grows by one. A task that is not in the trash is returned as it is.
#[utoipa::path(
    post,
    path = "/api/tasks/{task_id}/restore",
    tag = "tasks",
    params(TaskIdParam),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The restored task", body = Task,
            headers(("etag" = String, description = "The task's strong entity tag"))),
        (status = 404, description = "No such task for this user, in the trash or out of it", body = ErrorBody),
        ReadOnly, InvalidTaskId, AuthenticatedErrors,
    )
)]
pub async fn restore_task(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    TaskIdParam(id): TaskIdParam,
) -> Result<Response, ApiError> {
    let task = state.tasks.restore(&user, id).await?;
    respond::task(StatusCode::OK, &task, true)
}

/// The `Prefer` request header of a list, for the OpenAPI document.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct PreferHeader {
    /// `count=none` to skip the count of matches (no `X-Total-Count`), which is most of a
    /// filtered list's cost; `count=exact` (the default) to have it. Other preferences are
    /// ignored (RFC 7240).
    #[param(rename = "Prefer", example = "count=none")]
    prefer: Option<String>,
}

/// The `Idempotency-Key` request header, for the OpenAPI document.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct IdempotencyKeyHeader {
    /// 1–255 printable ASCII characters naming this request: a repeat within 24 hours gets
    /// the original response (`Idempotent-Replayed: true`) and changes nothing.
    #[param(
        rename = "Idempotency-Key",
        min_length = 1,
        max_length = 255,
        pattern = "^[ -~]{1,255}$"
    )]
    idempotency_key: Option<String>,
}
