//! The HTTP boundary's one error type, [`ApiError`], and the extractors that turn malformed
//! requests into it: every failure a client can see is `{"error": {"code", "message"}}`
//! with the status that says whose fault it is. Server-side failures are logged with
//! their detail and answered with a generic message: no internal text, no stack trace.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// Everything a request can fail with, each mapped to its status code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request cannot be read (syntax, a path or query parameter of the wrong
    /// shape, a header that is not what it must be).
    #[error("{0}")]
    BadRequest(String),
    /// 401: no bearer token, or one that is not (or no longer) valid; or a webhook whose
    /// signature does not verify.
    #[error("{0}")]
    Unauthorized(String),
    /// 402: the job's price exceeds the balance.
    #[error("not enough credits: the price is {price}, the balance is {balance}")]
    InsufficientCredits { price: i64, balance: i64 },
    /// 403: a signed storage link that is altered or expired.
    #[error("{0}")]
    Forbidden(String),
    /// 404: absent, or not the caller's (the two are never told apart).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 409: the resource is not in a state that allows this.
    #[error("{0}")]
    Conflict(String),
    /// 409: an Idempotency-Key reused with a different request.
    #[error(
        "this Idempotency-Key was already used with a different request; use a new key for a new job"
    )]
    IdempotencyKeyReused,
    /// 410: a media file whose objects the retention policy deleted.
    #[error("{0}")]
    Gone(String),
    /// 413: a body or a declared upload larger than allowed.
    #[error("{0}")]
    TooLarge(String),
    /// 415: a body that is not JSON where JSON is expected.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: well-formed, but a value is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// 429: a request limit is reached (failed sign-ins, job creations); answered with
    /// `Retry-After`, the seconds until the limit's window ends.
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after_seconds: u64,
    },
    /// 503: the database or the object store cannot be reached right now; retrying later
    /// may succeed. The detail is logged, not shown.
    #[error("{0}")]
    Unavailable(String),
    /// 500: a bug or a misconfiguration. The detail is logged, not shown.
    #[error("internal error")]
    Internal(String),
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong: a stable machine-readable `code` and a message for people.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// One of: bad_request, unauthorized, insufficient_credits, forbidden, not_found,
    /// conflict, idempotency_key_reused, gone, method_not_allowed, timeout, too_large,
    /// unsupported_media_type, invalid, too_many_requests, internal, unavailable.
    pub code: String,
    pub message: String,
    /// With insufficient_credits: what the job costs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<i64>,
    /// With insufficient_credits: the caller's balance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balance: Option<i64>,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::InsufficientCredits { .. } => StatusCode::PAYMENT_REQUIRED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) | ApiError::IdempotencyKeyReused => StatusCode::CONFLICT,
            ApiError::Gone(_) => StatusCode::GONE,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InsufficientCredits { .. } => "insufficient_credits",
            ApiError::IdempotencyKeyReused => "idempotency_key_reused",
            other => code_of(other.status()),
        }
    }

    /// The error a framework rejection (path, query, body) stands for, by its status.
    pub fn from_rejection(status: StatusCode, text: String) -> ApiError {
        match status {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge(text),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(text),
            StatusCode::UNPROCESSABLE_ENTITY => ApiError::Invalid(text),
            _ => ApiError::BadRequest(text),
        }
    }
}

/// The `code` of an error response of `status`, for errors that did not come from an
/// [`ApiError`] (axum's 405, tower-http's 408 and 413), which the router rewrites as JSON.
pub fn code_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::PAYMENT_REQUIRED => "insufficient_credits",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        StatusCode::CONFLICT => "conflict",
        StatusCode::GONE => "gone",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid",
        StatusCode::TOO_MANY_REQUESTS => "too_many_requests",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        s if s.is_client_error() => "bad_request",
        _ => "internal",
    }
}

/// A JSON error response, for the few places that build one without an [`ApiError`].
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            code: code.to_string(),
            message: message.to_string(),
            price: None,
            balance: None,
        },
    };
    (status, axum::Json(body)).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                "internal error; the request id identifies it in the server's logs".to_string()
            }
            ApiError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "dependency unavailable");
                "a service the API depends on is unavailable; retry later".to_string()
            }
            other => other.to_string(),
        };
        let retry_after = match &self {
            ApiError::TooManyRequests {
                retry_after_seconds,
                ..
            } => Some(*retry_after_seconds),
            _ => None,
        };
        let (price, balance) = match self {
            ApiError::InsufficientCredits { price, balance } => (Some(price), Some(balance)),
            _ => (None, None),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code().to_string(),
                message,
                price,
                balance,
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<crate::Error> for ApiError {
    fn from(e: crate::Error) -> Self {
        use crate::Error as E;
        match e {
            E::NotFound { what, .. } => ApiError::NotFound(what),
            E::Invalid(m) => ApiError::Invalid(m),
            E::InsufficientCredits { price, balance } => {
                ApiError::InsufficientCredits { price, balance }
            }
            E::Conflict(m) => ApiError::Conflict(m),
            E::Db(ref db) if is_connection_error(db) => ApiError::Unavailable(e.to_string()),
            // Class 22, data exception: a value the database cannot take (a NUL in text,
            // a number out of range). Handlers check what they can first; this keeps
            // whatever slips through a client error rather than a 500.
            E::Db(ref db) if db.code().is_some_and(|c| c.code().starts_with("22")) => {
                tracing::warn!(error = %e, "a value was refused by the database");
                ApiError::Invalid("a value in the request is not acceptable".into())
            }
            // The pool fails only to hand out a connection: none could be made in time.
            E::Pool(_) => ApiError::Unavailable(e.to_string()),
            E::Storage(_) => ApiError::Unavailable(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> Self {
        crate::Error::from(e).into()
    }
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        crate::Error::from(e).into()
    }
}

/// Whether a database error means the server is unreachable or going away (the client
/// should retry later) rather than a statement that failed.
fn is_connection_error(e: &tokio_postgres::Error) -> bool {
    match e.code() {
        // No SQLSTATE: the connection broke or was closed under the query.
        None => true,
        Some(state) => {
            let code = state.code();
            // 08: connection exception; 57P01-03: shutdown, crash, cannot connect now;
            // 53300: too many connections.
            code.starts_with("08") || code.starts_with("57P") || code == "53300"
        }
    }
}

/// Refuses text PostgreSQL cannot store (NUL characters), naming the field.
pub fn check_text(field: &str, value: &str) -> Result<(), ApiError> {
    if value.contains('\0') {
        return Err(ApiError::Invalid(format!(
            "{field} must not contain NUL characters"
        )));
    }
    Ok(())
}

/// [`check_text`] for every string (and key) inside a JSON value, which jsonb refuses
/// likewise.
pub fn check_json(field: &str, value: &serde_json::Value) -> Result<(), ApiError> {
    match value {
        serde_json::Value::String(s) => check_text(field, s),
        serde_json::Value::Array(items) => items.iter().try_for_each(|v| check_json(field, v)),
        serde_json::Value::Object(map) => map.iter().try_for_each(|(k, v)| {
            check_text(field, k)?;
            check_json(field, v)
        }),
        _ => Ok(()),
    }
}

/// `axum::Json`, with rejections as [`ApiError`]s: 400 for JSON that does not parse, 422
/// for JSON of the wrong shape or with bad values, 413 beyond the body limit, 415 without
/// a JSON content type.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    axum::Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(ApiError::from_rejection(
                rejection.status(),
                rejection.body_text(),
            )),
        }
    }
}

/// `axum::extract::Path` with rejections as [`ApiError`]s (400).
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    axum::extract::Path<T>: FromRequestParts<S, Rejection = PathRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(ApiPath(value)),
            Err(rejection) => Err(ApiError::BadRequest(rejection.body_text())),
        }
    }
}

/// `axum::extract::Query` with rejections as [`ApiError`]s (400).
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    axum::extract::Query<T>: FromRequestParts<S, Rejection = QueryRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(ApiError::BadRequest(rejection.body_text())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_errors_map_to_statuses() {
        let cases: Vec<(crate::Error, StatusCode)> = vec![
            (
                crate::Error::NotFound {
                    what: "job",
                    id: "x".into(),
                },
                StatusCode::NOT_FOUND,
            ),
            (
                crate::Error::Invalid("no".into()),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                crate::Error::InsufficientCredits {
                    price: 5,
                    balance: 1,
                },
                StatusCode::PAYMENT_REQUIRED,
            ),
            (crate::Error::Conflict("no".into()), StatusCode::CONFLICT),
            (
                crate::Error::Io(std::io::Error::other("disk")),
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
        ];
        for (e, status) in cases {
            assert_eq!(ApiError::from(e).status(), status);
        }
    }

    #[tokio::test]
    async fn a_429_says_when_to_retry() {
        let response = ApiError::TooManyRequests {
            message: "slow down".into(),
            retry_after_seconds: 42,
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "42");
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": {"code": "too_many_requests", "message": "slow down"}})
        );
    }

    #[tokio::test]
    async fn internal_details_stay_out_of_the_response() {
        let response = ApiError::Internal("password=hunter2 at src/x.rs:3".into()).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("\"code\":\"internal\""), "{text}");
    }
}
