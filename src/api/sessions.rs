//! Sessions: signing in with email and password for a bearer token, and signing out.

use super::auth::{self, Caller};
use super::error::{ApiError, ApiJson, ErrorBody};
use super::limits;
use super::state::ApiState;
use crate::{db, sql, users};
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::LazyLock;
use utoipa::ToSchema;
use uuid::Uuid;

/// Sign-in credentials.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSession {
    pub email: String,
    pub password: String,
}

/// An open session. The token is shown only here: the server keeps its hash.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionCreated {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    pub session_id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub user: SessionUser,
}

/// Who signed in.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionUser {
    pub id: Uuid,
    pub email: String,
    pub role: String,
}

/// A hash no password matches, checked when the email is unknown so that answering takes
/// as long as for a wrong password: response times do not tell which emails exist.
static DECOY_HASH: LazyLock<String> = LazyLock::new(|| {
    users::hash_password("decoy password, never a real one")
        .expect("argon2 hashes a constant password")
});

/// The client's address as the connection shows it (`None` when the server was not
/// started with connect info, as in `router` served without [`super::serve`]).
pub struct ClientIp(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip().to_string()),
        ))
    }
}

/// Longest user agent recorded.
const MAX_USER_AGENT: usize = 512;

/// Sign in: exchanges an email and password for a bearer token.
#[utoipa::path(
    post,
    operation_id = "createSession",
    path = "/api/sessions",
    tag = "sessions",
    request_body = NewSession,
    responses(
        (status = 201, description = "Signed in", body = SessionCreated),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Wrong email or password", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Missing or mistyped fields", body = ErrorBody),
        (status = 429, description = "Too many failed sign-ins to this email or from this address \
            (api.sign_in_failures_per_account, api.sign_in_failures_per_ip): every attempt, even \
            with the right password, until the window ends", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until the window ends"))),
    ),
    security(())
)]
pub async fn create(
    State(state): State<ApiState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<NewSession>,
) -> Result<impl IntoResponse, ApiError> {
    let client = state.pool.get().await?;
    // Counted before anything is looked up or verified, the same for an unknown email as
    // for a known one: a throttled attempt costs no argon2 and tells nothing.
    let attempt =
        limits::SignIn::attempt(&client, &state.config.api, &body.email, ip.as_deref()).await?;
    let user = users::by_email(&client, &body.email).await?;
    let hash = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| DECOY_HASH.clone());
    // argon2 costs tens of milliseconds of CPU by design: off the async threads.
    let password = body.password;
    let matches = tokio::task::spawn_blocking(move || users::verify_password(&hash, &password))
        .await
        .map_err(|e| ApiError::Internal(format!("password check: {e}")))?;
    let user = match user {
        Some(user) if matches => user,
        _ => {
            return Err(ApiError::Unauthorized(
                "the email or the password is wrong".into(),
            ));
        }
    };
    attempt.succeeded(&client).await?;
    let token = auth::new_token();
    let user_agent: Option<String> = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(MAX_USER_AGENT).collect());
    let ttl = state.config.api.session_ttl_seconds as f64;
    let row = db::query_opt(
        &client,
        sql::INSERT_SESSION,
        &[&user.id, &user_agent, &ip, &auth::token_hash(&token), &ttl],
    )
    .await?
    .ok_or_else(|| ApiError::Internal("INSERT … RETURNING returned no row".into()))?;
    tracing::info!(user.id = %user.id, "signed in");
    Ok((
        StatusCode::CREATED,
        axum::Json(SessionCreated {
            token,
            session_id: row.get("id"),
            expires_at: row.get("expires_at"),
            user: SessionUser {
                id: user.id,
                email: user.email,
                role: user.role,
            },
        }),
    ))
}

/// Sign out: the token of this request stops working.
#[utoipa::path(
    delete,
    operation_id = "deleteSession",
    path = "/api/sessions/current",
    tag = "sessions",
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Authenticated by an API key, which DELETE /api/keys/{id} revokes", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn delete_current(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<StatusCode, ApiError> {
    let session = caller.session("signing out")?;
    let client = state.pool.get().await?;
    db::execute(&client, sql::DELETE_SESSION, &[&session]).await?;
    Ok(StatusCode::NO_CONTENT)
}
