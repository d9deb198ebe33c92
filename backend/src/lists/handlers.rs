//! The list handlers: extract (which validates and authenticates), call the store with the
//! caller's id, shape the response.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::Error as _;
use utoipa::ToSchema;

use crate::domain::list::{
    AcceptInvitation, ChangeRole, CreateInvitation, CreateList, Export, Invitation, Member,
    NewInvitation, Transfer, UpdateList,
};
use crate::domain::{List, ListId, Once, UserId};
use crate::http::conditional::none_match;
use crate::http::etag::list_etag;
use crate::http::extract::{AuthUser, ListIdParam, MergePatch, ValidJson};
use crate::http::idempotency::IdempotentJson;
use crate::http::responses::{
    AuthenticatedErrors, KeyInFlight, PayloadTooLarge, UnsupportedMediaType,
};
use crate::http::{ApiError, AppState, ErrorBody};

/// Whether `GET /api/lists` asks for the trash (`deleted=true`).
fn trash_asked(query: &str) -> Result<bool, ApiError> {
    let mut asked = None;
    for (key, value) in crate::http::extract::query_pairs(query)? {
        if key != "deleted" {
            continue;
        }
        if asked.is_some() {
            return Err(ApiError::invalid_field("deleted", "must not be repeated"));
        }
        asked = Some(match value.as_str() {
            "true" => true,
            "false" => false,
            _ => return Err(ApiError::invalid_field("deleted", "must be true or false")),
        });
    }
    Ok(asked.unwrap_or(false))
}

/// The query of `GET /api/lists`, for the OpenAPI document.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ListsParams {
    /// `true`: the lists the caller owns that are in the trash, which they can restore,
    /// instead of their live lists.
    deleted: Option<bool>,
}

/// The caller's lists, in their own order: their Inbox, the lists they made, and the lists
/// shared with them; or (`deleted=true`) the lists they own in the trash.
#[utoipa::path(
    get,
    path = "/api/lists",
    tag = "lists",
    params(ListsParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's lists, in their order", body = Vec<List>,
            headers(
                ("etag" = String, description = "A weak entity tag of the lists, for `If-None-Match`"),
            )),
        (status = 304, description = "`If-None-Match` names the lists as they still are"),
        (status = 400, description = "Malformed If-None-Match", body = ErrorBody),
        (status = 422, description = "Invalid `deleted`", body = ErrorBody),
        AuthenticatedErrors,
    )
)]
pub async fn list_lists(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    conditions: HeaderMap,
    uri: axum::http::Uri,
) -> Result<Response, ApiError> {
    let lists = match trash_asked(uri.query().unwrap_or_default())? {
        true => state.lists.trashed_lists(&user).await?,
        false => state.lists.lists_of(&user).await?,
    };
    let count = i64::try_from(lists.len()).unwrap_or(i64::MAX);
    let body = serde_json::to_vec(&lists).map_err(|error| ApiError::Internal(error.into()))?;
    // A digest of the caller and of the lists as they see them (their role and order too).
    let etag = list_etag(&user, &body, count);
    if none_match(&conditions, &etag)? {
        return Ok(crate::tasks::respond::not_modified(etag));
    }
    let mut response = crate::tasks::respond::json(StatusCode::OK, body);
    response.headers_mut().insert(header::ETAG, etag);
    Ok(response)
}

/// Creates a list owned by the caller, at the end of their order.
#[utoipa::path(
    post,
    path = "/api/lists",
    tag = "lists",
    request_body = CreateList,
    params(crate::tasks::handlers::IdempotencyKeyHeader),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The new list (or, with `Idempotent-Replayed: true`, the \
            original response to the same request sent earlier with the same key)", body = List,
            headers(
                ("location" = String, description = "The new list's URL"),
                ("idempotent-replayed" = bool, description = "`true` on a replay"),
            )),
        (status = 400, description = "Invalid Idempotency-Key", body = ErrorBody),
        (status = 422, description = "Invalid body, 1,000 lists already, or a key used with a \
            different request", body = ErrorBody),
        KeyInFlight, PayloadTooLarge, UnsupportedMediaType, AuthenticatedErrors,
    )
)]
pub async fn create_list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    body: IdempotentJson<CreateList>,
) -> Result<Response, ApiError> {
    match state
        .lists
        .create_list(&user, body.value, body.key.as_ref())
        .await?
    {
        Once::Done(list) => {
            let location = format!("/api/lists/{}", list.id);
            Ok((
                StatusCode::CREATED,
                [(header::LOCATION, location)],
                Json(list),
            )
                .into_response())
        }
        Once::Replayed(replay) => Ok(crate::tasks::respond::replayed(replay)),
    }
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoveList {
    #[serde(default, deserialize_with = "neighbour")]
    after: Option<Option<ListId>>,
    #[serde(default, deserialize_with = "neighbour")]
    before: Option<Option<ListId>>,
}

/// How the OpenAPI document describes a move of a list: one of two shapes.
#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(untagged)]
#[schema(as = MoveList)]
pub enum MoveListSchema {
    /// Right after the list `after`; `null` for the top of the caller's order.
    #[serde(deny_unknown_fields)]
    After {
        #[schema(required = true, minimum = 1)]
        after: Option<i64>,
    },
    /// Right before the list `before`; `null` for the bottom.
    #[serde(deny_unknown_fields)]
    Before {
        #[schema(required = true, minimum = 1)]
        before: Option<i64>,
    },
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
    request_body = MoveListSchema,
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

/// The `{user_id}` of a member route: the last segment of
/// `/api/lists/{list_id}/members/{user_id}`, percent-decoded.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(names("user_id"), parameter_in = Path)]
pub struct MemberParam(#[param(value_type = String)] pub UserId);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for MemberParam {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let raw = parts.uri.path().split('/').nth(5).unwrap_or_default();
        let decoded = percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .map_err(|_| ApiError::invalid_field("user_id", "must be UTF-8"))?;
        UserId::parse(decoded.into_owned())
            .map(MemberParam)
            .map_err(|error| ApiError::invalid_field("user_id", error.to_string()))
    }
}

/// The `{invitation_id}` of `DELETE /api/lists/{list_id}/invitations/{invitation_id}`.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(names("invitation_id"), parameter_in = Path)]
pub struct InvitationParam(#[param(value_type = i64, minimum = 1)] pub i64);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for InvitationParam {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let raw = parts.uri.path().split('/').nth(5).unwrap_or_default();
        raw.parse::<crate::domain::TaskId>()
            .map(|id| InvitationParam(id.get()))
            .map_err(|error| ApiError::invalid_field("invitation_id", error.to_string()))
    }
}

/// The members of a list (any member may see them).
#[utoipa::path(
    get,
    path = "/api/lists/{list_id}/members",
    tag = "sharing",
    params(ListIdParam),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every member with their role", body = Vec<Member>),
        (status = 404, description = "No such list, or not the caller's", body = ErrorBody),
        (status = 422, description = "Invalid list id", body = ErrorBody),
        AuthenticatedErrors,
    )
)]
pub async fn list_members(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ListIdParam(id): ListIdParam,
) -> Result<Json<Vec<Member>>, ApiError> {
    Ok(Json(state.lists.members(&user, id).await?))
}

/// Gives a member a new role (the owner only; the owner's own role changes by transfer).
#[utoipa::path(
    patch,
    path = "/api/lists/{list_id}/members/{user_id}",
    tag = "sharing",
    params(ListIdParam, MemberParam),
    request_body(content = ChangeRole, content_type = "application/merge-patch+json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The member with their new role", body = Member),
        (status = 403, description = "Not the list's owner", body = ErrorBody),
        (status = 404, description = "No such list or member", body = ErrorBody),
        (status = 409, description = "The owner's own role", body = ErrorBody),
        (status = 422, description = "Invalid id or body", body = ErrorBody),
        PayloadTooLarge, UnsupportedMediaType, AuthenticatedErrors,
    )
)]
pub async fn patch_member(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ListIdParam(id): ListIdParam,
    MemberParam(member): MemberParam,
    MergePatch(body): MergePatch<ChangeRole>,
) -> Result<Json<Member>, ApiError> {
    Ok(Json(
        state
            .lists
            .set_role(&user, id, &member, body.role.into())
            .await?,
    ))
}

/// Removes a member (the owner removes anyone else) or leaves the list (anyone but the
/// owner, who transfers it first). The member's devices drop the list and its tasks.
#[utoipa::path(
    delete,
    path = "/api/lists/{list_id}/members/{user_id}",
    tag = "sharing",
    params(ListIdParam, MemberParam),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "No longer a member"),
        (status = 403, description = "Neither the owner nor the member", body = ErrorBody),
        (status = 404, description = "No such list or member", body = ErrorBody),
        (status = 409, description = "The owner leaving without a transfer", body = ErrorBody),
        (status = 422, description = "Invalid id", body = ErrorBody),
        AuthenticatedErrors,
    )
)]
pub async fn delete_member(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ListIdParam(id): ListIdParam,
    MemberParam(member): MemberParam,
) -> Result<StatusCode, ApiError> {
    state.lists.remove(&user, id, &member).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Hands the list to another member (the owner only); the old owner becomes an editor.
#[utoipa::path(
    post,
    path = "/api/lists/{list_id}/transfer",
    tag = "sharing",
    params(ListIdParam),
    request_body = Transfer,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The list, as the old owner now sees it", body = List),
        (status = 403, description = "Not the list's owner", body = ErrorBody),
        (status = 404, description = "No such list, or not the caller's", body = ErrorBody),
        (status = 422, description = "Invalid id or body, or not a member", body = ErrorBody),
        PayloadTooLarge, UnsupportedMediaType, AuthenticatedErrors,
    )
)]
pub async fn transfer_list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ListIdParam(id): ListIdParam,
    ValidJson(body): ValidJson<Transfer>,
) -> Result<Json<List>, ApiError> {
    Ok(Json(state.lists.transfer(&user, id, &body.user_id).await?))
}

/// Invites someone to a list (the owner only; an Inbox cannot be shared). The `token` is
/// shown this once: pass it on, the invitee sends it to `POST /api/invitations/accept`.
#[utoipa::path(
    post,
    path = "/api/lists/{list_id}/invitations",
    tag = "sharing",
    params(ListIdParam),
    request_body = CreateInvitation,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The invitation with its secret token", body = NewInvitation),
        (status = 403, description = "Not the list's owner", body = ErrorBody),
        (status = 404, description = "No such list, or not the caller's", body = ErrorBody),
        (status = 409, description = "An Inbox", body = ErrorBody),
        (status = 422, description = "Invalid id or body", body = ErrorBody),
        PayloadTooLarge, UnsupportedMediaType, AuthenticatedErrors,
    )
)]
pub async fn create_invitation(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ListIdParam(id): ListIdParam,
    ValidJson(body): ValidJson<CreateInvitation>,
) -> Result<Response, ApiError> {
    let invitation = state.lists.invite(&user, id, body).await?;
    Ok((StatusCode::CREATED, Json(invitation)).into_response())
}

/// The invitations of a list (the owner only), without their tokens.
#[utoipa::path(
    get,
    path = "/api/lists/{list_id}/invitations",
    tag = "sharing",
    params(ListIdParam),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every invitation, used, expired and revoked too", body = Vec<Invitation>),
        (status = 403, description = "Not the list's owner", body = ErrorBody),
        (status = 404, description = "No such list, or not the caller's", body = ErrorBody),
        (status = 422, description = "Invalid list id", body = ErrorBody),
        AuthenticatedErrors,
    )
)]
pub async fn list_invitations(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ListIdParam(id): ListIdParam,
) -> Result<Json<Vec<Invitation>>, ApiError> {
    Ok(Json(state.lists.invitations(&user, id).await?))
}

/// Revokes an invitation (the owner only): its token can no longer be used.
#[utoipa::path(
    delete,
    path = "/api/lists/{list_id}/invitations/{invitation_id}",
    tag = "sharing",
    params(ListIdParam, InvitationParam),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "Not the list's owner", body = ErrorBody),
        (status = 404, description = "No such list or invitation", body = ErrorBody),
        (status = 422, description = "Invalid id", body = ErrorBody),
        AuthenticatedErrors,
    )
)]
pub async fn delete_invitation(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ListIdParam(id): ListIdParam,
    InvitationParam(invitation): InvitationParam,
) -> Result<StatusCode, ApiError> {
    state.lists.revoke(&user, id, invitation).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Accepts an invitation: the caller becomes a member of its list, with its role. Accepting
/// again changes nothing. An unknown, expired, used-up or revoked token, or one of a deleted
/// list, is the same 404.
#[utoipa::path(
    post,
    path = "/api/invitations/accept",
    tag = "sharing",
    request_body = AcceptInvitation,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The list, the caller now a member", body = List),
        (status = 404, description = "No invitation with this token can be used", body = ErrorBody),
        (status = 409, description = "The owner's own invitation", body = ErrorBody),
        (status = 422, description = "Invalid body, or the list or the caller is full", body = ErrorBody),
        PayloadTooLarge, UnsupportedMediaType, AuthenticatedErrors,
    )
)]
pub async fn accept_invitation(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ValidJson(body): ValidJson<AcceptInvitation>,
) -> Result<Json<List>, ApiError> {
    Ok(Json(state.lists.accept(&user, &body.token).await?))
}

/// Everything of the caller's, as one JSON document: the lists they own with their members
/// and tasks (in the trash too), the lists of others they belong to, and the tasks they
/// created elsewhere.
#[utoipa::path(
    get,
    path = "/api/me/export",
    tag = "sharing",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's data", body = Export),
        AuthenticatedErrors,
    )
)]
pub async fn export_me(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> Result<Json<Export>, ApiError> {
    Ok(Json(state.lists.export(&user).await?))
}

/// Deletes the caller's data: their lists and the tasks in them (members lose them through
/// the feed), their memberships, invitations, idempotency records and change history. Tasks
/// they created in other people's lists stay there, unassigned from them.
#[utoipa::path(
    delete,
    path = "/api/me",
    tag = "sharing",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        AuthenticatedErrors,
    )
)]
pub async fn delete_me(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> Result<StatusCode, ApiError> {
    state.lists.erase(&user).await?;
    Ok(StatusCode::NO_CONTENT)
}
