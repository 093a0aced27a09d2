//! Uploads and media files. An upload is two calls around a PUT the client makes straight
//! to storage: `POST /api/uploads` records the file (`media_files`, pending) and answers
//! with a URL to PUT the bytes to (presigned S3, or the local store's signed route);
//! `POST /api/uploads/{id}/complete` checks the object is there and records its size and
//! duration. Jobs take only completed uploads as input: their price depends on it.

use super::ApiState;
use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiPath, ErrorBody, check_text};
use super::{inspect, projects};
use crate::job::MediaType;
use crate::storage::{self, SignedUrl};
use crate::{db, sql};
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

/// A file about to be uploaded.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUpload {
    /// The file's name; characters other than letters, digits, `.`, `-` and `_` become `_`.
    pub file_name: String,
    pub media_type: MediaType,
    /// The file's exact size; at most `api.max_upload_bytes`.
    pub size_bytes: i64,
    pub project_id: Option<Uuid>,
    /// Guessed from the file name when absent.
    pub mimetype: Option<String>,
}

/// A URL usable without credentials until `expires_at`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Link {
    pub url: String,
    /// `PUT` (send the file's bytes as the body) or `GET`.
    pub method: String,
    pub expires_at: DateTime<Utc>,
}

impl From<SignedUrl> for Link {
    fn from(s: SignedUrl) -> Self {
        Link {
            url: s.url,
            method: s.method.to_string(),
            expires_at: s.expires_at,
        }
    }
}

/// A media file: an upload, or a job's output.
#[derive(Debug, Serialize, ToSchema)]
pub struct Media {
    pub id: Uuid,
    pub project_id: Option<Uuid>,
    pub media_type: Option<String>,
    pub file_name: Option<String>,
    /// `pending` until the upload is completed, then `uploaded`.
    pub status: String,
    pub size_bytes: Option<i64>,
    pub duration_seconds: Option<f64>,
    pub mimetype: Option<String>,
    /// For a job's output: the input it was made from.
    pub derived_from: Option<Uuid>,
    pub created_at: Option<DateTime<Utc>>,
    /// Where to download it (uploaded files only).
    pub download: Option<Link>,
}

/// The recorded upload and where to PUT its bytes.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadCreated {
    pub media: Media,
    pub upload: Link,
}

/// A `media_files` row.
#[derive(Debug, Clone)]
pub struct MediaRow {
    pub id: Uuid,
    pub user_id: Option<Uuid>,
    pub project_id: Option<Uuid>,
    pub s3_key: String,
    pub media_type: Option<String>,
    pub duration_seconds: Option<f64>,
    pub size_bytes: Option<i64>,
    pub mimetype: Option<String>,
    pub metadata: Value,
    pub created_at: Option<DateTime<Utc>>,
    pub derived_from: Option<Uuid>,
}

impl MediaRow {
    /// Whether the bytes are in storage: a completed upload, or a file a worker wrote
    /// (which has no `upload` state at all).
    pub fn is_uploaded(&self) -> bool {
        self.metadata.get("upload").is_none_or(|u| u == "complete")
    }

    fn view(&self, download: Option<Link>) -> Media {
        Media {
            id: self.id,
            project_id: self.project_id,
            media_type: self.media_type.clone(),
            file_name: self.metadata["file_name"]
                .as_str()
                .map(str::to_string)
                .or_else(|| self.s3_key.rsplit('/').next().map(str::to_string)),
            status: if self.is_uploaded() {
                "uploaded"
            } else {
                "pending"
            }
            .into(),
            size_bytes: self.size_bytes,
            duration_seconds: self.duration_seconds,
            mimetype: self.mimetype.clone(),
            derived_from: self.derived_from,
            created_at: self.created_at,
            download,
        }
    }
}

pub async fn load<C: GenericClient + Sync>(
    client: &C,
    id: Uuid,
) -> Result<Option<MediaRow>, ApiError> {
    Ok(db::query_opt(client, sql::MEDIA_BY_ID, &[&id])
        .await?
        .map(|r| MediaRow {
            id: r.get(0),
            user_id: r.get(1),
            project_id: r.get(2),
            s3_key: r.get(3),
            media_type: r.get(4),
            duration_seconds: r.get(5),
            size_bytes: r.get(6),
            mimetype: r.get(7),
            metadata: r.get::<_, Option<Value>>(8).unwrap_or_default(),
            created_at: r.get(9),
            derived_from: r.get(10),
        }))
}

/// A download link for a stored media file. A store that cannot sign (a local store
/// without `storage.signing_secret`) is a deployment error: logged, and the link left out
/// so the rest of the answer still arrives.
pub async fn download_link(state: &ApiState, key: &str) -> Option<Link> {
    match state.storage.download_url(key).await {
        Ok(url) => Some(url.into()),
        Err(e) => {
            tracing::error!(error = %e, "cannot sign a download link");
            None
        }
    }
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
    path = "/api/uploads",
    tag = "uploads",
    request_body = NewUpload,
    responses(
        (status = 201, description = "Recorded; PUT the file's bytes to `upload.url`", body = UploadCreated),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such project of the caller's", body = ErrorBody),
        (status = 413, description = "size_bytes exceeds api.max_upload_bytes", body = ErrorBody),
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
    let client = state.pool.get().await?;
    projects::check_owner(&client, &caller, body.project_id).await?;
    let id = Uuid::now_v7();
    let key = storage::media_key(caller.user_id, id, &file_name);
    // Sign first: if the store cannot, nothing is recorded.
    let upload = state
        .storage
        .upload_url(&key)
        .await
        .map_err(|e| ApiError::Internal(format!("cannot sign an upload link: {e}")))?;
    let metadata = json!({
        "file_name": file_name,
        "declared_size": body.size_bytes,
        "upload": "pending",
    });
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
            media: row.view(None),
            upload: upload.into(),
        }),
    ))
}

/// Complete an upload: checks the bytes are in storage and records size and duration.
/// Completing again returns the same.
#[utoipa::path(
    post,
    path = "/api/uploads/{id}/complete",
    tag = "uploads",
    params(("id" = Uuid, Path, description = "The upload's media id")),
    responses(
        (status = 200, description = "The completed media file", body = Media),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such upload of the caller's", body = ErrorBody),
        (status = 409, description = "The bytes have not been uploaded yet", body = ErrorBody),
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
    if media.is_uploaded() {
        let link = download_link(&state, &media.s3_key).await;
        return Ok(axum::Json(media.view(link)));
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
    let link = download_link(&state, &media.s3_key).await;
    Ok(axum::Json(media.view(link)))
}

/// A media file: an upload or a job's output, with a download link once it is stored.
#[utoipa::path(
    get,
    path = "/api/media/{id}",
    tag = "uploads",
    params(("id" = Uuid, Path, description = "The media id")),
    responses(
        (status = 200, description = "The media file", body = Media),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such media file of the caller's", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn media(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<Media>, ApiError> {
    let client = state.pool.get().await?;
    let media = load(&client, id)
        .await?
        .filter(|m| caller.can_read(m.user_id))
        .ok_or(ApiError::NotFound("media"))?;
    let link = if media.is_uploaded() {
        download_link(&state, &media.s3_key).await
    } else {
        None
    };
    Ok(axum::Json(media.view(link)))
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
