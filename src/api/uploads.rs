//! Uploads and media files. An upload is two calls around a PUT the client makes straight
//! to storage: `POST /api/uploads` records the file (`media_files`, pending) and answers
//! with a URL to PUT the bytes to (presigned S3, or the local store's signed route);
//! `POST /api/uploads/{id}/complete` checks the object is there and records its size and
//! duration. Jobs take only completed uploads as input: their price depends on it.

use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiPath, ErrorBody, check_text};
use super::media::{Link, Media, load};
use super::state::ApiState;
use super::{inspect, projects};
use crate::job::MediaType;
use crate::storage::{self};
use crate::{db, sql};
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

/// A file about to be uploaded.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUpload {
    /// The file's name; characters other than letters, digits, `.`, `-` and `_` become `_`.
    #[schema(min_length = 1)]
    pub file_name: String,
    pub media_type: MediaType,
    /// The file's exact size; at most `api.max_upload_bytes`.
    #[schema(minimum = 1)]
    pub size_bytes: i64,
    pub project_id: Option<Uuid>,
    /// Guessed from the file name when absent.
    pub mimetype: Option<String>,
    /// The SHA-256 of the file's bytes, in hex: when given, the upload link takes those
    /// bytes only (S3 checks the `x-amz-checksum-sha256` header the link lists).
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    pub sha256: Option<String>,
}

/// The recorded upload and where to PUT its bytes.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadCreated {
    pub media: Media,
    pub upload: Link,
}

/// The file name as it goes into the object key: only characters every store and URL
/// take as they are, at most 100 of them.
fn safe_file_name(name: &str) -> Result<String, ApiError> {
    let name = name.rsplit(['/', '\\']).next().unwrap_or_default().trim();
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let safe = safe.trim_start_matches('.');
    // Keep the extension when shortening: it tells the format.
    let safe = if safe.len() > 100 {
        let ext = safe.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
        let ext = &ext[..ext.len().min(10)];
        format!("{}.{ext}", &safe[..100 - ext.len() - 1])
    } else {
        safe.to_string()
    };
    if safe.is_empty() || safe.chars().all(|c| c == '_') {
        return Err(ApiError::Invalid(
            "file_name must contain letters or digits".into(),
        ));
    }
    Ok(safe)
}

/// The media type of a file name's extension.
pub(super) fn guess_mimetype(file_name: &str) -> &'static str {
    let ext = file_name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "mp4" | "m4v" => "video/mp4",
        "mov" => "video/quicktime",
        "mkv" => "video/x-matroska",
        "webm" => "video/webm",
        "avi" => "video/x-msvideo",
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "m4a" => "audio/mp4",
        "ogg" | "oga" | "opus" => "audio/ogg",
        "flac" => "audio/flac",
        "srt" => "application/x-subrip",
        "vtt" => "text/vtt",
        _ => "application/octet-stream",
    }
}

/// Start an upload: records the file and returns where to PUT its bytes.
#[utoipa::path(
    post,
    operation_id = "createUpload",
    path = "/api/uploads",
    tag = "uploads",
    request_body = NewUpload,
    responses(
        (status = 201, description = "Recorded; PUT the file's bytes to `upload.url`", body = UploadCreated),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such project of the caller's", body = ErrorBody),
        (status = 413, description = "size_bytes exceeds api.max_upload_bytes", body = ErrorBody),
        (status = 415, description = "The body is not JSON (Content-Type: application/json)", body = ErrorBody),
        (status = 422, description = "Invalid values", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewUpload>,
) -> Result<(StatusCode, axum::Json<UploadCreated>), ApiError> {
    let max = state.config.api.max_upload_bytes as i64;
    if body.size_bytes <= 0 {
        return Err(ApiError::Invalid("size_bytes must be positive".into()));
    }
    if body.size_bytes > max {
        return Err(ApiError::TooLarge(format!(
            "the file is larger than the {max} bytes an upload may have"
        )));
    }
    check_text("file_name", &body.file_name)?;
    let file_name = safe_file_name(&body.file_name)?;
    let mimetype = match body.mimetype {
        Some(m) => {
            let valid = m.len() <= 255
                && m.split_once('/')
                    .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())
                && m.bytes().all(|b| b.is_ascii_graphic());
            if !valid {
                return Err(ApiError::Invalid(
                    "mimetype must be a media type such as video/mp4".into(),
                ));
            }
            m
        }
        None => guess_mimetype(&file_name).to_string(),
    };
    let sha256 = match &body.sha256 {
        None => None,
        Some(hex_digest) => {
            let mut digest = [0u8; 32];
            hex::decode_to_slice(hex_digest, &mut digest).map_err(|_| {
                ApiError::Invalid("sha256 must be the 64 hex digits of a SHA-256 digest".into())
            })?;
            Some(digest)
        }
    };
    let client = state.pool.get().await?;
    projects::check_owner(&client, &caller, body.project_id).await?;
    let id = Uuid::now_v7();
    let key = storage::media_key(caller.user_id, id, &file_name);
    // Sign first: if the store cannot, nothing is recorded.
    let upload = state
        .storage
        .upload_url_exact(&key, body.size_bytes as u64, sha256.as_ref())
        .await
        .map_err(|e| ApiError::Internal(format!("cannot sign an upload link: {e}")))?;
    let mut metadata = json!({
        "file_name": file_name,
        "declared_size": body.size_bytes,
        "upload": "pending",
    });
    if let Some(digest) = &sha256 {
        metadata["declared_sha256"] = json!(hex::encode(digest));
    }
    let no_duration: Option<f64> = None;
    let no_size: Option<i64> = None;
    let no_origin: Option<Uuid> = None;
    db::execute(
        &client,
        sql::INSERT_MEDIA,
        &[
            &id,
            &body.project_id,
            &caller.user_id,
            &key,
            &body.media_type.as_str(),
            &no_duration,
            &no_size,
            &mimetype,
            &no_origin,
            &metadata,
        ],
    )
    .await?;
    let row = load(&client, id)
        .await?
        .ok_or_else(|| ApiError::Internal("the media row just inserted is gone".into()))?;
    Ok((
        StatusCode::CREATED,
        axum::Json(UploadCreated {
            media: row.view(&state).await,
            upload: upload.into(),
        }),
    ))
}

/// Complete an upload: checks the bytes are in storage and records size and duration.
/// Completing again returns the same.
#[utoipa::path(
    post,
    operation_id = "completeUpload",
    path = "/api/uploads/{id}/complete",
    tag = "uploads",
    params(("id" = Uuid, Path, description = "The upload's media id")),
    responses(
        (status = 200, description = "The completed media file", body = Media),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such upload of the caller's", body = ErrorBody),
        (status = 409, description = "The bytes have not been uploaded yet", body = ErrorBody),
        (status = 410, description = "The upload expired", body = ErrorBody),
        (status = 413, description = "The uploaded file is too large", body = ErrorBody),
        (status = 422, description = "The file is not what it was declared to be", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn complete(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<Media>, ApiError> {
    let client = state.pool.get().await?;
    let media = load(&client, id)
        .await?
        .filter(|m| m.user_id == Some(caller.user_id))
        .ok_or(ApiError::NotFound("upload"))?;
    if let Some(at) = media.expired_at {
        return Err(ApiError::Gone(format!(
            "this upload expired at {at} (storage.pending_upload_retention_days or \
             storage.upload_retention_days); create a new one"
        )));
    }
    if media.is_uploaded() {
        return Ok(axum::Json(media.view(&state).await));
    }
    let info = state.storage.head(&media.s3_key).await?.ok_or_else(|| {
        ApiError::Conflict(
            "the file has not been uploaded yet: PUT it to the upload URL first".into(),
        )
    })?;
    let max = state.config.api.max_upload_bytes;
    if info.size > max {
        return Err(ApiError::TooLarge(format!(
            "the uploaded file has {} bytes, more than the {max} allowed",
            info.size
        )));
    }
    let declared = media.metadata["declared_size"].as_i64();
    if declared.is_some_and(|d| d != info.size as i64) {
        return Err(ApiError::Invalid(format!(
            "the uploaded file has {} bytes but {} were declared; upload it again",
            info.size,
            declared.unwrap_or_default()
        )));
    }
    let (duration_seconds, mimetype, found) = match media.media_type.as_deref() {
        Some("subtitle") => inspect::subtitles(&state, &media, info.size).await?,
        kind => inspect::media(&state, &media, kind).await?,
    };
    let mut found = found;
    found["upload"] = json!("complete");
    // From here the bytes are these: whatever is put to the link later is refused.
    found["sealed"] = json!(storage::Seal::of(&info));
    db::execute(
        &client,
        sql::COMPLETE_MEDIA,
        &[
            &id,
            &(info.size as i64),
            &duration_seconds,
            &mimetype,
            &found,
        ],
    )
    .await?;
    let media = load(&client, id)
        .await?
        .ok_or(ApiError::NotFound("upload"))?;
    Ok(axum::Json(media.view(&state).await))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_become_safe_keys() {
        assert_eq!(safe_file_name("talk.mp4").unwrap(), "talk.mp4");
        assert_eq!(
            safe_file_name("my talk (1).mp4").unwrap(),
            "my_talk__1_.mp4"
        );
        assert_eq!(safe_file_name("../../etc/passwd").unwrap(), "passwd");
        assert_eq!(safe_file_name("C:\\x\\.hidden.srt").unwrap(), "hidden.srt");
        let long = format!("{}.webm", "a".repeat(300));
        let safe = safe_file_name(&long).unwrap();
        assert_eq!(safe.len(), 100);
        assert!(safe.ends_with(".webm"));
        for bad in ["", "..", "///", "???"] {
            assert!(safe_file_name(bad).is_err(), "{bad:?}");
        }
        assert!(
            crate::storage::media_key(Uuid::nil(), Uuid::nil(), &safe_file_name("a b").unwrap())
                .ends_with("/a_b")
        );
    }

    #[test]
    fn mimetypes_from_extensions() {
        assert_eq!(guess_mimetype("x.MP4"), "video/mp4");
        assert_eq!(guess_mimetype("x.srt"), "application/x-subrip");
        assert_eq!(guess_mimetype("x"), "application/octet-stream");
    }
}
