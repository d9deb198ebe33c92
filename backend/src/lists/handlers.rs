//! The list handlers: extract (which validates and authenticates), call the store with the
//! caller's id, shape the response.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::Error as _;
use utoipa::ToSchema;

use crate::domain::list::{CreateList, UpdateList};
use crate::domain::{List, ListId};
use crate::http::extract::{AuthUser, ListIdParam, MergePatch, ValidJson};
use crate::http::responses::{AuthenticatedErrors, PayloadTooLarge, UnsupportedMediaType};
use crate::http::{ApiError, AppState, ErrorBody};

/// The caller's lists, in their own order: their Inbox, the lists they made, and the lists
/// shared with them.
#[utoipa::path(
    get,
    path = "/api/lists",
    tag = "lists",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's lists, in their order", body = Vec<List>),
        AuthenticatedErrors,
    )
)]
pub async fn list_lists(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> Result<Json<Vec<List>>, ApiError> {
    Ok(Json(state.lists.lists_of(&user).await?))
}

/// Creates a list owned by the caller, at the end of their order.
#[utoipa::path(
    post,
    path = "/api/lists",
    tag = "lists",
    request_body = CreateList,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The new list", body = List,
            headers(("location" = String, description = "The new list's URL"))),
        (status = 422, description = "Invalid body, or 1,000 lists already", body = ErrorBody),
        PayloadTooLarge, UnsupportedMediaType, AuthenticatedErrors,
    )
)]
pub async fn create_list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ValidJson(body): ValidJson<CreateList>,
) -> Result<Response, ApiError> {
    let list = state.lists.create_list(&user, body).await?;
    let location = format!("/api/lists/{}", list.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(list),
    )
        .into_response())
}

/// One of the caller's lists.
#[utoipa::path(
    get,
    path = "/api/lists/{list_id}",
    tag = "lists",
    params(ListIdParam),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The list as the caller sees it", body = List),
        (status = 404, description = "No such list, or not the caller's", body = ErrorBody),
        (status = 422, description = "Invalid list id", body = ErrorBody),
        AuthenticatedErrors,
    )
)]
pub async fn get_list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ListIdParam(id): ListIdParam,
) -> Result<Json<List>, ApiError> {
    Ok(Json(state.lists.get_list(&user, id).await?))
}

/// Renames or recolours a list (its owner or an editor).
#[utoipa::path(
    patch,
    path = "/api/lists/{list_id}",
    tag = "lists",
    params(ListIdParam),
    request_body(content = UpdateList, content_type = "application/merge-patch+json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The list as it now is", body = List),
        (status = 403, description = "A viewer of the list", body = ErrorBody),
        (status = 404, description = "No such list, or not the caller's", body = ErrorBody),
        (status = 422, description = "Invalid list id or body", body = ErrorBody),
        PayloadTooLarge, UnsupportedMediaType, AuthenticatedErrors,
    )
)]
pub async fn patch_list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ListIdParam(id): ListIdParam,
    MergePatch(body): MergePatch<UpdateList>,
) -> Result<Json<List>, ApiError> {
    Ok(Json(state.lists.update_list(&user, id, body).await?))
}

/// Moves a list to the trash with its tasks (its owner only; an Inbox cannot be deleted).
/// Its members lose it until it is restored.
#[utoipa::path(
    delete,
    path = "/api/lists/{list_id}",
    tag = "lists",
    params(ListIdParam),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "In the trash"),
        (status = 403, description = "Not the list's owner", body = ErrorBody),
        (status = 404, description = "No such list, or not the caller's", body = ErrorBody),
        (status = 409, description = "An Inbox", body = ErrorBody),
        (status = 422, description = "Invalid list id", body = ErrorBody),
        AuthenticatedErrors,
    )
)]
pub async fn delete_list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ListIdParam(id): ListIdParam,
) -> Result<StatusCode, ApiError> {
    state.lists.delete_list(&user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Brings a list back from the trash with the tasks that went there with it (its owner only).
#[utoipa::path(
    post,
    path = "/api/lists/{list_id}/restore",
    tag = "lists",
    params(ListIdParam),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The list, live again", body = List),
        (status = 403, description = "Not the list's owner", body = ErrorBody),
        (status = 404, description = "No such list, or not the caller's", body = ErrorBody),
        (status = 422, description = "Invalid list id", body = ErrorBody),
        AuthenticatedErrors,
    )
)]
pub async fn restore_list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ListIdParam(id): ListIdParam,
) -> Result<Json<List>, ApiError> {
    Ok(Json(state.lists.restore_list(&user, id).await?))
}

/// Where `POST /api/lists/{list_id}/move` puts a list in the caller's own order: right after
/// one list (`after`; `null` for the top) or right before one (`before`; `null` for the
/// bottom). Nobody else's order changes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveList {
    #[serde(default, deserialize_with = "neighbour")]
    #[schema(value_type = Option<i64>, minimum = 1)]
    after: Option<Option<ListId>>,
    #[serde(default, deserialize_with = "neighbour")]
    #[schema(value_type = Option<i64>, minimum = 1)]
    before: Option<Option<ListId>>,
}

fn neighbour<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<ListId>>, D::Error> {
    let Some(number) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(Some(None));
    };
    number
        .as_i64()
        .and_then(|raw| ListId::try_from(raw).ok())
        .map(|id| Some(Some(id)))
        .ok_or_else(|| D::Error::custom("must be a positive list id or null"))
}

/// Moves a list in the caller's own order of their lists.
#[utoipa::path(
    post,
    path = "/api/lists/{list_id}/move",
    tag = "lists",
    params(ListIdParam),
    request_body = MoveList,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The list at its new place", body = List),
        (status = 404, description = "The list or the neighbour is not the caller's", body = ErrorBody),
        (status = 422, description = "Invalid list id or body", body = ErrorBody),
        PayloadTooLarge, UnsupportedMediaType, AuthenticatedErrors,
    )
)]
pub async fn move_list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ListIdParam(id): ListIdParam,
    ValidJson(body): ValidJson<MoveList>,
) -> Result<Json<List>, ApiError> {
    if body.after.is_some() == body.before.is_some() {
        return Err(ApiError::invalid_field(
            "after",
            "give either `after` or `before`, not both",
        ));
    }
    Ok(Json(
        state
            .lists
            .move_list(&user, id, body.after, body.before)
            .await?,
    ))
}
