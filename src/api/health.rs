//! Probes for load balancers and orchestrators: `/healthz` (the process answers) and
//! `/readyz` (it can do its work: the database is reachable and its schema current).

use super::error::{ApiError, ErrorBody};
use super::state::ApiState;
use crate::{db, migrate, sql};
use axum::extract::State;
use serde::Serialize;
use std::time::Duration;
use utoipa::ToSchema;

/// How long readiness waits for the database before saying no.
const READY_TIMEOUT: Duration = Duration::from_secs(3);

/// A probe's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` or `ready`.
    pub status: String,
}

/// Liveness: the process is up and serving.
#[utoipa::path(
    get,
    operation_id = "healthz",
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "Alive", body = Health)),
    security(())
)]
pub async fn healthz() -> axum::Json<Health> {
    axum::Json(Health {
        status: "ok".into(),
    })
}

/// Readiness: the database answers and has every migration this build knows.
#[utoipa::path(
    get,
    operation_id = "readyz",
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "Database unreachable or migrations pending", body = ErrorBody),
    ),
    security(())
)]
pub async fn readyz(State(state): State<ApiState>) -> Result<axum::Json<Health>, ApiError> {
    let check = async {
        let client = state.pool.get().await?;
        db::query_opt(&client, sql::PING, &[]).await?;
        if !migrate::is_current(&client).await? {
            return Err(ApiError::Unavailable(
                "the database schema is behind this build: run `octavia migrate`".into(),
            ));
        }
        Ok(())
    };
    tokio::time::timeout(READY_TIMEOUT, check)
        .await
        .map_err(|_| ApiError::Unavailable("the database did not answer in time".into()))??;
    Ok(axum::Json(Health {
        status: "ready".into(),
    }))
}
