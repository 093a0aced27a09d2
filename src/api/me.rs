//! `GET /api/me`: the signed-in user's account, balance and recent credit movements.

use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::state::ApiState;
use crate::{db, sql};
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// Ledger rows shown.
const RECENT: i64 = 20;

/// One change of the balance.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreditEntry {
    /// Positive for grants, purchases and refunds; negative for reservations.
    pub delta: Option<i64>,
    /// job_reserve, job_refund, grant or purchase.
    pub reason: Option<String>,
    pub job_id: Option<Uuid>,
    pub created_at: Option<DateTime<Utc>>,
}

/// The signed-in user.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub id: Uuid,
    pub email: String,
    pub role: String,
    /// The credit balance.
    pub credits: i64,
    pub created_at: Option<DateTime<Utc>>,
    /// The newest ledger rows, newest first.
    pub credits_history: Vec<CreditEntry>,
}

/// The signed-in user's account.
#[utoipa::path(
    get,
    operation_id = "getMe",
    path = "/api/me",
    tag = "account",
    responses(
        (status = 200, description = "The account", body = Me),
        (status = 401, description = "No valid token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn me(State(state): State<ApiState>, caller: Caller) -> Result<axum::Json<Me>, ApiError> {
    let client = state.pool.get().await?;
    let user = db::query_opt(&client, sql::USER_BY_ID, &[&caller.user_id])
        .await?
        .ok_or_else(|| ApiError::Unauthorized("the signed-in user no longer exists".into()))?;
    let history = db::query(&client, sql::RECENT_CREDITS, &[&caller.user_id, &RECENT])
        .await?
        .iter()
        .map(|r| CreditEntry {
            delta: r.get("delta"),
            reason: r.get("reason"),
            job_id: r.get("job_id"),
            created_at: r.get("created_at"),
        })
        .collect();
    Ok(axum::Json(Me {
        id: user.get("id"),
        email: user.get("email"),
        role: user.get("role"),
        credits: user.get("credits"),
        created_at: user.get("created_at"),
        credits_history: history,
    }))
}
