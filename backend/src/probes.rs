//! Liveness and readiness probes for load balancers and orchestrators.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::http::{ApiError, AppState, ErrorBody};

/// The body of the probe endpoints.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProbeStatus {
    #[schema(example = "ok")]
    status: String,
}

/// Liveness: the process is up. Touches nothing else.
#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    responses((status = 200, description = "The process is up", body = ProbeStatus))
)]
pub async fn health() -> Json<ProbeStatus> {
    Json(ProbeStatus {
        status: "ok".into(),
    })
}

/// Readiness: the service is not shutting down and the database answers.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "operations",
    responses(
        (status = 200, description = "Ready to serve", body = ProbeStatus),
        (status = 503, description = "Shutting down, or the database does not answer", body = ErrorBody),
    )
)]
pub async fn ready(State(state): State<AppState>) -> Result<Json<ProbeStatus>, ApiError> {
    if state.shutdown.is_raised() {
        return Err(ApiError::Unavailable);
    }
    state.pool.ping().await.map_err(|error| {
        tracing::warn!(%error, "readiness check failed");
        ApiError::Unavailable
    })?;
    Ok(Json(ProbeStatus {
        status: "ready".into(),
    }))
}
