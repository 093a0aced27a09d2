//! The local store's signed links: `GET` and `PUT /api/storage/{key}?expires=&sig=`. A
//! local directory cannot presign URLs as S3 does, so the API hands out links to these
//! routes, signed with `storage.signing_secret` (see [`crate::storage`]), and serves them:
//! no bearer token, the signature is the authorization, for that method, key and expiry
//! only. With the S3 store these routes do not exist (404).
//!
//! Uploads stream through to the store without being held in memory, and are exempt from
//! the request timeout and body limit of the other routes; `api.max_upload_bytes` bounds
//! them instead.

use super::error::{ApiError, ApiPath, ApiQuery, ErrorBody};
use super::state::ApiState;
use crate::storage::{Method, SignatureError};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;

/// The signature of a link.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LinkQuery {
    /// Unix seconds after which the link is refused.
    pub expires: Option<String>,
    /// Hex HMAC-SHA256 over method, key and expiry.
    pub sig: Option<String>,
}

/// A stored upload.
#[derive(Debug, Serialize, ToSchema)]
pub struct Stored {
    pub key: String,
    pub size_bytes: u64,
}

#[derive(OpenApi)]
#[openapi(paths(download, upload))]
struct StorageDoc;

/// The routes, documented under `/api/storage/{key}` (OpenAPI has no notation for a path
/// parameter spanning several segments; the key's slashes are part of it).
pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::with_openapi(StorageDoc::openapi())
        .route("/api/storage/{*key}", get(download).put(upload))
}

/// Checks a link's signature for `method` on `key`.
fn check(state: &ApiState, method: Method, key: &str, query: &LinkQuery) -> Result<(), ApiError> {
    let invalid = || ApiError::Forbidden(SignatureError::Invalid.to_string());
    let (Some(expires), Some(sig)) = (&query.expires, &query.sig) else {
        return Err(ApiError::Forbidden(
            "the link has no signature (expires and sig)".into(),
        ));
    };
    let expires: u64 = expires.parse().map_err(|_| invalid())?;
    let now = chrono::Utc::now().timestamp().max(0) as u64;
    state
        .storage
        .verify_local_signature(&method, key, expires, sig, now)
        .map_err(|e| match e {
            SignatureError::NotLocal => ApiError::NotFound("route"),
            SignatureError::Expired => ApiError::Forbidden(e.to_string()),
            // No secret: no link was ever handed out, so none can be valid.
            SignatureError::Invalid | SignatureError::NoSecret => invalid(),
        })
}

/// Download an object of the local store through a signed link.
#[utoipa::path(
    get,
    operation_id = "downloadObject",
    path = "/api/storage/{key}",
    tag = "storage",
    params(("key" = String, Path, description = "The object's key, slashes included"), LinkQuery),
    responses(
        (status = 200, description = "The object's bytes", content_type = "application/octet-stream", body = String),
        (status = 400, description = "Malformed parameters", body = ErrorBody),
        (status = 403, description = "Missing, altered or expired signature", body = ErrorBody),
        (status = 404, description = "No such object, or not the local store", body = ErrorBody),
        (status = 410, description = "The file expired: the retention policy deleted it", body = ErrorBody),
    ),
    security(())
)]
pub async fn download(
    State(state): State<ApiState>,
    ApiPath(key): ApiPath<String>,
    ApiQuery(query): ApiQuery<LinkQuery>,
) -> Result<Response, ApiError> {
    check(&state, Method::GET, &key, &query)?;
    let (info, chunks) = match state.storage.get_stream(&key).await {
        Ok(found) => found,
        Err(crate::Error::NotFound { .. }) => return Err(missing(&state, &key).await),
        Err(e) => return Err(e.into()),
    };
    let mut response = Body::from_stream(chunks).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(info.size));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(super::uploads::guess_mimetype(&key)),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private"));
    Ok(response)
}

/// Why the object at `key` is not there: 410 when its media file expired (the link was
/// handed out before the retention policy deleted it), else 404.
async fn missing(state: &ApiState, key: &str) -> ApiError {
    let media = match crate::storage::StoredKey::parse(key) {
        Some(crate::storage::StoredKey::Media { media_id })
        | Some(crate::storage::StoredKey::JobOutput { media_id }) => media_id,
        _ => return ApiError::NotFound("object"),
    };
    let expired = async {
        let client = state.pool.get().await?;
        Ok::<_, ApiError>(
            super::media::load(&client, media)
                .await?
                .and_then(|m| m.expired_at),
        )
    };
    match expired.await {
        Ok(Some(at)) => ApiError::Gone(format!(
            "this file expired at {at}: the retention policy deleted it"
        )),
        Ok(None) => ApiError::NotFound("object"),
        Err(e) => e,
    }
}

/// Refuses a PUT to `key` unless a media row is waiting for its upload there: once
/// `complete` has priced the bytes, they are sealed. The key names the media
/// (`media/{user}/{media}/{file}`), so the row is found by its primary key.
async fn pending_upload(state: &ApiState, key: &str) -> Result<super::media::MediaRow, ApiError> {
    let refused = |why: &str| {
        ApiError::Conflict(format!(
            "{why}: its bytes can no longer be changed; create a new upload (POST /api/uploads)"
        ))
    };
    let media = key
        .strip_prefix("media/")
        .and_then(|rest| rest.split('/').nth(1))
        .and_then(|id| id.parse::<uuid::Uuid>().ok())
        .ok_or_else(|| refused("this key is not an upload's"))?;
    let client = state.pool.get().await?;
    match super::media::load(&client, media).await? {
        Some(row) if row.s3_key == key && row.expired_at.is_some() => {
            Err(refused("this upload expired before it was completed"))
        }
        Some(row) if row.s3_key == key && !row.is_uploaded() => Ok(row),
        Some(row) if row.s3_key == key => Err(refused("this upload was completed")),
        _ => Err(refused("no upload has this key")),
    }
}

/// Why a streamed upload stopped early.
const BODY_OK: u8 = 0;
const BODY_TOO_LARGE: u8 = 1;
const BODY_BROKEN: u8 = 2;
const BODY_SHORT: u8 = 3;
const BODY_OTHER_BYTES: u8 = 4;

/// Upload an object to the local store through a signed link: the body is the file.
#[utoipa::path(
    put,
    operation_id = "uploadObject",
    path = "/api/storage/{key}",
    tag = "storage",
    params(("key" = String, Path, description = "The object's key, slashes included"), LinkQuery),
    request_body(content = String, content_type = "application/octet-stream", description = "The file's bytes"),
    responses(
        (status = 200, description = "Stored", body = Stored),
        (status = 400, description = "Malformed parameters, or the body broke off", body = ErrorBody),
        (status = 403, description = "Missing, altered or expired signature", body = ErrorBody),
        (status = 404, description = "Not the local store", body = ErrorBody),
        (status = 409, description = "No pending upload has this key: it was completed (its bytes are sealed) or never made", body = ErrorBody),
        (status = 413, description = "Larger than the upload's declared size_bytes", body = ErrorBody),
        (status = 422, description = "Shorter than the declared size_bytes, or not the bytes of the declared sha256", body = ErrorBody),
    ),
    security(())
)]
pub async fn upload(
    State(state): State<ApiState>,
    ApiPath(key): ApiPath<String>,
    ApiQuery(query): ApiQuery<LinkQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<Stored>, ApiError> {
    check(&state, Method::PUT, &key, &query)?;
    let media = pending_upload(&state, &key).await?;
    let max = state.config.api.max_upload_bytes;
    // The bytes POST /api/uploads declared, as an S3 link pins them in its signature.
    let size = media.metadata["declared_size"]
        .as_u64()
        .unwrap_or(max)
        .min(max);
    let digest: Option<[u8; 32]> = media.metadata["declared_sha256"]
        .as_str()
        .and_then(|h| hex::decode(h).ok())
        .and_then(|d| d.try_into().ok());
    let too_large = || {
        ApiError::TooLarge(format!(
            "this upload was declared with {size} bytes (api.max_upload_bytes is {max})"
        ))
    };
    let sent = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if sent.is_some_and(|n| n > size) {
        return Err(too_large());
    }
    // The store sees only an I/O error when the stream fails; this says which it was.
    let why = Arc::new(AtomicU8::new(BODY_OK));
    let flag = why.clone();
    let mut seen = 0u64;
    let mut hasher = Sha256::new();
    let chunks = body
        .into_data_stream()
        .map_err({
            let flag = flag.clone();
            move |e| {
                flag.store(BODY_BROKEN, Ordering::SeqCst);
                std::io::Error::other(e)
            }
        })
        .map(Some)
        // A last item after the body, to refuse one shorter than declared or of other
        // bytes: the store then aborts the upload, and nothing is stored.
        .chain(futures_util::stream::once(async { None }))
        .filter_map(move |chunk: Option<Result<Bytes, std::io::Error>>| {
            let outcome = match chunk {
                Some(Ok(chunk)) => {
                    seen += chunk.len() as u64;
                    hasher.update(&chunk);
                    if seen > size {
                        flag.store(BODY_TOO_LARGE, Ordering::SeqCst);
                        Some(Err(std::io::Error::other("upload too large")))
                    } else {
                        Some(Ok(chunk))
                    }
                }
                Some(Err(e)) => Some(Err(e)),
                None if seen < size => {
                    flag.store(BODY_SHORT, Ordering::SeqCst);
                    Some(Err(std::io::Error::other("upload too short")))
                }
                None if digest.is_some_and(|d| hasher.clone().finalize()[..] != d[..]) => {
                    flag.store(BODY_OTHER_BYTES, Ordering::SeqCst);
                    Some(Err(std::io::Error::other("other bytes")))
                }
                None => None,
            };
            std::future::ready(outcome)
        });
    match state.storage.put_stream(&key, chunks).await {
        Ok(size) => Ok(axum::Json(Stored {
            key,
            size_bytes: size,
        })),
        Err(e) => Err(match why.load(Ordering::SeqCst) {
            BODY_TOO_LARGE => too_large(),
            BODY_SHORT => ApiError::Invalid(format!(
                "the body is shorter than the {size} bytes this upload was declared with"
            )),
            BODY_OTHER_BYTES => ApiError::Invalid(
                "the body's SHA-256 is not the sha256 this upload was declared with".into(),
            ),
            BODY_BROKEN => ApiError::BadRequest("the request body broke off".into()),
            _ => e.into(),
        }),
    }
}
