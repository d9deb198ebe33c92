//! `/api/app-passwords`: the passwords calendar apps sign in to `/dav/` with. Managed with
//! the bearer token of the web app; an app password never opens `/api/`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::domain::calendar::{AppPassword, CreateAppPassword, NewAppPassword};
use crate::http::extract::{AuthUser, ValidJson};
use crate::http::responses::{AuthenticatedErrors, PayloadTooLarge, UnsupportedMediaType};
use crate::http::{ApiError, AppState, ErrorBody};

/// A new app password for a calendar app. The `password` is shown this once (only a hash is
/// kept); pair it with `username` in the app's CalDAV account.
#[utoipa::path(
    post,
    path = "/api/app-passwords",
    tag = "calendars",
    request_body = CreateAppPassword,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The app password with its secret", body = NewAppPassword),
        (status = 409, description = "Already 50 app passwords", body = ErrorBody),
        (status = 422, description = "Invalid body", body = ErrorBody),
        PayloadTooLarge, UnsupportedMediaType, AuthenticatedErrors,
    )
)]
pub async fn create_app_password(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ValidJson(body): ValidJson<CreateAppPassword>,
) -> Result<Response, ApiError> {
    let created = state
        .calendars
        .create_app_password(&user, body.name.as_str())
        .await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// The caller's app passwords, oldest first, with when each was last used; never a secret.
#[utoipa::path(
    get,
    path = "/api/app-passwords",
    tag = "calendars",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's app passwords", body = Vec<AppPassword>),
        AuthenticatedErrors,
    )
)]
pub async fn list_app_passwords(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> Result<Json<Vec<AppPassword>>, ApiError> {
    Ok(Json(state.calendars.app_passwords(&user).await?))
}

/// Revokes an app password: the next request signed with it is refused.
#[utoipa::path(
    delete,
    path = "/api/app-passwords/{app_password_id}",
    tag = "calendars",
    params(AppPasswordParam),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such app password of the caller's", body = ErrorBody),
        (status = 422, description = "Invalid id", body = ErrorBody),
        AuthenticatedErrors,
    )
)]
pub async fn delete_app_password(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    AppPasswordParam(id): AppPasswordParam,
) -> Result<StatusCode, ApiError> {
    state.calendars.revoke_app_password(&user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The `{app_password_id}` of `DELETE /api/app-passwords/{app_password_id}`: a positive
/// integer in canonical form, else 422.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(names("app_password_id"), parameter_in = Path)]
pub struct AppPasswordParam(#[param(value_type = i64, minimum = 1)] pub i64);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for AppPasswordParam {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let raw = parts.uri.path().split('/').nth(3).unwrap_or_default();
        raw.parse::<crate::domain::TaskId>()
            .map(|id| AppPasswordParam(id.get()))
            .map_err(|error| ApiError::invalid_field("app_password_id", error.to_string()))
    }
}
