//! API keys: long-lived, revocable credentials for servers that call the API. A key is
//! shown once, when it is made; only its hash is kept ([`super::auth`]). It authenticates
//! like a session token (`Authorization: Bearer octk_…`), except that it cannot manage
//! keys or sessions: those routes need a signed-in session, so a leaked key cannot mint
//! others or outlive its revocation.

use super::auth::{self, Caller};
use super::error::{ApiError, ApiJson, ApiPath, ErrorBody, check_text};
use super::state::ApiState;
use crate::{db, sql};
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use utoipa::ToSchema;
use uuid::Uuid;

/// Characters of a key shown in listings: the prefix and the first random ones.
const SHOWN: usize = auth::KEY_PREFIX.len() + 6;

/// A key to make.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    /// What the key is for, 1 to 200 characters.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// When the key stops working; absent: when it is deleted. Must be in the future.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// A key, as listed: never the key itself.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    /// The key's first characters, to tell keys apart.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Last request made with it, to the minute.
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A key just made. `key` is shown only here: the server keeps its hash.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyCreated {
    /// Send as `Authorization: Bearer <key>`.
    pub key: String,
    #[serde(flatten)]
    pub api_key: ApiKey,
}

/// The caller's keys, newest first, expired ones included.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    pub keys: Vec<ApiKey>,
}

fn api_key(row: &Row) -> ApiKey {
    ApiKey {
        id: row.get("id"),
        name: row.get("name"),
        prefix: row.get("prefix"),
        created_at: row.get("created_at"),
        expires_at: row.get("expires_at"),
        last_used_at: row.get("last_used_at"),
    }
}

/// Make an API key.
#[utoipa::path(
    post,
    operation_id = "createApiKey",
    path = "/api/keys",
    tag = "keys",
    request_body = NewApiKey,
    responses(
        (status = 201, description = "Made; the key is in the body, once", body = ApiKeyCreated),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Authenticated by an API key, not a session", body = ErrorBody),
        (status = 415, description = "The body is not JSON (Content-Type: application/json)", body = ErrorBody),
        (status = 422, description = "Invalid name, or an expiry not in the future", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewApiKey>,
) -> Result<(StatusCode, axum::Json<ApiKeyCreated>), ApiError> {
    caller.session("making an API key")?;
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::Invalid(
            "name must have 1 to 200 characters".into(),
        ));
    }
    check_text("name", name)?;
    if body.expires_at.is_some_and(|at| at <= Utc::now()) {
        return Err(ApiError::Invalid("expires_at must be in the future".into()));
    }
    let key = auth::new_key();
    let client = state.pool.get().await?;
    let row = db::query_opt(
        &client,
        sql::INSERT_API_KEY,
        &[
            &caller.user_id,
            &name,
            &&key[..SHOWN],
            &auth::token_hash(&key),
            &body.expires_at,
        ],
    )
    .await?
    .ok_or_else(|| ApiError::Internal("INSERT … RETURNING returned no row".into()))?;
    Ok((
        StatusCode::CREATED,
        axum::Json(ApiKeyCreated {
            key,
            api_key: api_key(&row),
        }),
    ))
}

/// List the caller's API keys.
#[utoipa::path(
    get,
    operation_id = "listApiKeys",
    path = "/api/keys",
    tag = "keys",
    responses(
        (status = 200, description = "The caller's keys", body = ApiKeyList),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Authenticated by an API key, not a session", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<axum::Json<ApiKeyList>, ApiError> {
    caller.session("listing API keys")?;
    let client = state.pool.get().await?;
    let rows = db::query(&client, sql::API_KEYS_OF_USER, &[&caller.user_id]).await?;
    Ok(axum::Json(ApiKeyList {
        keys: rows.iter().map(api_key).collect(),
    }))
}

/// Delete (revoke) an API key: the next request with it gets 401.
#[utoipa::path(
    delete,
    operation_id = "deleteApiKey",
    path = "/api/keys/{id}",
    tag = "keys",
    params(("id" = Uuid, Path, description = "The key's id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Authenticated by an API key, not a session", body = ErrorBody),
        (status = 404, description = "No such key of the caller's", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn delete(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    caller.session("deleting an API key")?;
    let client = state.pool.get().await?;
    db::query_opt(&client, sql::DELETE_API_KEY, &[&id, &caller.user_id])
        .await?
        .ok_or(ApiError::NotFound("API key"))?;
    Ok(StatusCode::NO_CONTENT)
}
