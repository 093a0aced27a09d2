//! Job webhooks: the caller's endpoints (register, list, rotate the secret, delete) and
//! each endpoint's delivery history. The deliveries themselves are the workers'
//! ([`crate::webhooks`]); docs/api.md#webhooks says what a receiver gets and how to verify
//! it.
//!
//! An endpoint's signing secret is shown once, when it is made or rotated. An API key may
//! manage its user's endpoints, as a server that calls the API registers where it wants
//! to be told: webhooks carry no credential, only what the user could read anyway.
//! Endpoints are their user's alone: another's, even for an admin, is "not found".

use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiPath, ErrorBody, check_text};
use super::projects;
use super::state::ApiState;
use crate::webhooks::{self, signature, target};
use crate::{db, sql};
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio_postgres::Row;
use utoipa::ToSchema;
use uuid::Uuid;

/// Deliveries listed per endpoint.
const HISTORY_LIMIT: i64 = 100;

/// How long registration waits for the URL's host name to resolve.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

/// An event an endpoint can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum WebhookEvent {
    /// The job completed; its output is `data.output_media_id`.
    #[serde(rename = "job.completed")]
    Completed,
    /// The job failed; why is `data.error`.
    #[serde(rename = "job.failed")]
    Failed,
    #[serde(rename = "job.cancelled")]
    Cancelled,
    /// A running job's progress crossed a tenth (10 %, 20 % … 90 %).
    #[serde(rename = "job.progress")]
    Progress,
}

impl WebhookEvent {
    fn name(self) -> &'static str {
        match self {
            WebhookEvent::Completed => webhooks::EVENTS[0],
            WebhookEvent::Failed => webhooks::EVENTS[1],
            WebhookEvent::Cancelled => webhooks::EVENTS[2],
            WebhookEvent::Progress => webhooks::EVENTS[3],
        }
    }
}

/// An endpoint to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhookEndpoint {
    /// Where to POST the events: https (http only where the server allows it), to a
    /// public address.
    #[schema(min_length = 1, max_length = 2000)]
    pub url: String,
    /// The events to send, at least one.
    #[schema(min_items = 1)]
    pub events: Vec<WebhookEvent>,
    /// Only the jobs of this project of the caller's; absent: all their jobs.
    #[serde(default)]
    pub project_id: Option<Uuid>,
}

/// An endpoint, as listed: never its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookEndpoint {
    pub id: Uuid,
    pub url: String,
    #[schema(value_type = Vec<WebhookEvent>)]
    pub events: Vec<String>,
    pub project_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    /// The last rotation of its secret, if any.
    pub secret_rotated_at: Option<DateTime<Utc>>,
}

/// An endpoint just registered or whose secret was just rotated. `secret` is shown only
/// here.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookEndpointSecret {
    /// The Standard Webhooks signing secret, `whsec_<base64>`: what a receiver verifies
    /// `webhook-signature` with.
    pub secret: String,
    #[serde(flatten)]
    pub endpoint: WebhookEndpoint,
}

/// The caller's endpoints, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookEndpointList {
    pub endpoints: Vec<WebhookEndpoint>,
}

/// One event's delivery to an endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDelivery {
    /// The `webhook-id` of every attempt: the same across retries.
    pub id: Uuid,
    pub job_id: Uuid,
    #[schema(value_type = WebhookEvent)]
    pub event: String,
    /// `pending` (due at `next_attempt_at`), `delivering` (an attempt is under way),
    /// `delivered`, or `failed` (given up after the server's retry time).
    pub status: String,
    /// Attempts so far.
    pub attempts: i32,
    /// When the event happened.
    pub created_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// While pending: when it is attempted next (while delivering: when another worker
    /// takes over if the attempt never reports).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The HTTP status the last attempt got; absent if it got no answer.
    pub status_code: Option<i32>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// An endpoint's latest deliveries (up to 100), newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDeliveryList {
    pub deliveries: Vec<WebhookDelivery>,
}

fn endpoint(row: &Row) -> WebhookEndpoint {
    WebhookEndpoint {
        id: row.get("id"),
        url: row.get("url"),
        events: row.get("events"),
        project_id: row.get("project_id"),
        created_at: row.get("created_at"),
        secret_rotated_at: row.get("secret_rotated_at"),
    }
}

fn delivery(row: &Row) -> WebhookDelivery {
    WebhookDelivery {
        id: row.get("id"),
        job_id: row.get("job_id"),
        event: row.get("event"),
        status: row.get("status"),
        attempts: row.get("attempts"),
        created_at: row.get("created_at"),
        last_attempt_at: row.get("last_attempt_at"),
        next_attempt_at: row.get("next_attempt_at"),
        status_code: row.get("last_status"),
        last_error: row.get("last_error"),
        delivered_at: row.get("delivered_at"),
    }
}

/// Register a webhook endpoint.
#[utoipa::path(
    post,
    operation_id = "createWebhookEndpoint",
    path = "/api/webhooks/endpoints",
    tag = "webhooks",
    request_body = NewWebhookEndpoint,
    responses(
        (status = 201, description = "Registered; the signing secret is in the body, once", body = WebhookEndpointSecret),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such project of the caller's", body = ErrorBody),
        (status = 415, description = "The body is not JSON (Content-Type: application/json)", body = ErrorBody),
        (status = 422, description = "Not an https URL to a public address, no events, or too many endpoints", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewWebhookEndpoint>,
) -> Result<(StatusCode, axum::Json<WebhookEndpointSecret>), ApiError> {
    check_text("url", &body.url)?;
    let policy = target::Policy::from_config(&state.config.webhooks);
    let url = target::check_url(body.url.trim(), policy).map_err(ApiError::Invalid)?;
    let mut events: Vec<&str> = body.events.iter().map(|e| e.name()).collect();
    events.sort_unstable();
    events.dedup();
    if events.is_empty() {
        return Err(ApiError::Invalid(
            "events must name at least one event".into(),
        ));
    }
    // Resolved before a connection is taken: a slow name server holds none.
    target::check_resolved(&url, policy, RESOLVE_TIMEOUT)
        .await
        .map_err(ApiError::Invalid)?;
    let client = state.pool.get().await?;
    projects::check_owner(&client, &caller, body.project_id).await?;
    let key = signature::new_key();
    let row = db::query_opt(
        &client,
        sql::WEBHOOK_INSERT_ENDPOINT,
        &[
            &caller.user_id,
            &body.project_id,
            &url.as_str(),
            &events,
            &key,
            &webhooks::MAX_ENDPOINTS_PER_USER,
        ],
    )
    .await?
    .ok_or_else(|| {
        ApiError::Invalid(format!(
            "a user has at most {} webhook endpoints: delete one first",
            webhooks::MAX_ENDPOINTS_PER_USER
        ))
    })?;
    Ok((
        StatusCode::CREATED,
        axum::Json(WebhookEndpointSecret {
            secret: signature::encode_secret(&key),
            endpoint: endpoint(&row),
        }),
    ))
}

/// List the caller's webhook endpoints.
#[utoipa::path(
    get,
    operation_id = "listWebhookEndpoints",
    path = "/api/webhooks/endpoints",
    tag = "webhooks",
    responses(
        (status = 200, description = "The caller's endpoints", body = WebhookEndpointList),
        (status = 401, description = "No valid token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<axum::Json<WebhookEndpointList>, ApiError> {
    let client = state.pool.get().await?;
    let rows = db::query(&client, sql::WEBHOOK_ENDPOINTS_OF_USER, &[&caller.user_id]).await?;
    Ok(axum::Json(WebhookEndpointList {
        endpoints: rows.iter().map(endpoint).collect(),
    }))
}

/// Rotate a webhook endpoint's signing secret. For `webhooks.rotation_overlap_seconds`
/// (a day by default) deliveries are signed with the old secret too.
#[utoipa::path(
    post,
    operation_id = "rotateWebhookSecret",
    path = "/api/webhooks/endpoints/{id}/rotate",
    tag = "webhooks",
    params(("id" = Uuid, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "Rotated; the new secret is in the body, once", body = WebhookEndpointSecret),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such endpoint of the caller's", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn rotate(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<WebhookEndpointSecret>, ApiError> {
    let key = signature::new_key();
    let overlap = state.config.webhooks.rotation_overlap_seconds as f64;
    let client = state.pool.get().await?;
    let row = db::query_opt(
        &client,
        sql::WEBHOOK_ROTATE_SECRET,
        &[&id, &caller.user_id, &key, &overlap],
    )
    .await?
    .ok_or(ApiError::NotFound("webhook endpoint"))?;
    Ok(axum::Json(WebhookEndpointSecret {
        secret: signature::encode_secret(&key),
        endpoint: endpoint(&row),
    }))
}

/// Delete a webhook endpoint: nothing more is sent to it, retries included.
#[utoipa::path(
    delete,
    operation_id = "deleteWebhookEndpoint",
    path = "/api/webhooks/endpoints/{id}",
    tag = "webhooks",
    params(("id" = Uuid, Path, description = "The endpoint's id")),
    responses(
        (status = 204, description = "Deleted, with its delivery history"),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such endpoint of the caller's", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn delete(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    let client = state.pool.get().await?;
    db::query_opt(
        &client,
        sql::WEBHOOK_DELETE_ENDPOINT,
        &[&id, &caller.user_id],
    )
    .await?
    .ok_or(ApiError::NotFound("webhook endpoint"))?;
    Ok(StatusCode::NO_CONTENT)
}

/// A webhook endpoint's latest deliveries: status, attempts, next attempt, last answer.
#[utoipa::path(
    get,
    operation_id = "listWebhookDeliveries",
    path = "/api/webhooks/endpoints/{id}/deliveries",
    tag = "webhooks",
    params(("id" = Uuid, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "Its latest 100 deliveries, newest first", body = WebhookDeliveryList),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such endpoint of the caller's", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn deliveries(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<WebhookDeliveryList>, ApiError> {
    let client = state.pool.get().await?;
    db::query_opt(
        &client,
        sql::WEBHOOK_ENDPOINT_OF_USER,
        &[&id, &caller.user_id],
    )
    .await?
    .ok_or(ApiError::NotFound("webhook endpoint"))?;
    let rows = db::query(
        &client,
        sql::WEBHOOK_DELIVERIES_OF_ENDPOINT,
        &[&id, &HISTORY_LIMIT],
    )
    .await?;
    Ok(axum::Json(WebhookDeliveryList {
        deliveries: rows.iter().map(delivery).collect(),
    }))
}
