//! Media files (`media_files`) as the API reads and reports them: uploads and jobs'
//! outputs, with the signed links that download them, and `GET /api/media/{id}`.

use super::auth::Caller;
use super::error::{ApiError, ApiPath, ApiQuery, ErrorBody};
use super::state::ApiState;
use crate::db::Session;
use crate::job::output_files;
use crate::storage::SignedUrl;
use crate::{db, retention, sql};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// A URL usable without credentials until `expires_at`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Link {
    pub url: String,
    /// `PUT` (send the file's bytes as the body) or `GET`.
    pub method: String,
    pub expires_at: DateTime<Utc>,
    /// Headers to send as they are: an upload link pins the file's `Content-Length` (and
    /// its `x-amz-checksum-sha256` when `sha256` was declared), and other bytes are refused.
    pub headers: BTreeMap<String, String>,
}

impl From<SignedUrl> for Link {
    fn from(s: SignedUrl) -> Self {
        Link {
            url: s.url,
            method: s.method.to_string(),
            expires_at: s.expires_at,
            headers: s.headers.into_iter().collect(),
        }
    }
}

/// A media file: an upload, or a job's output.
#[derive(Debug, Serialize, ToSchema)]
pub struct Media {
    pub id: Uuid,
    pub project_id: Option<Uuid>,
    #[schema(value_type = Option<crate::job::MediaType>)]
    pub media_type: Option<String>,
    pub file_name: Option<String>,
    pub status: MediaStatus,
    pub size_bytes: Option<i64>,
    pub duration_seconds: Option<f64>,
    pub mimetype: Option<String>,
    /// For a job's output: the input it was made from.
    pub derived_from: Option<Uuid>,
    pub created_at: Option<DateTime<Utc>>,
    /// When its files were deleted by the retention policy.
    pub expired_at: Option<DateTime<Utc>>,
    /// Where to download it (uploaded files only).
    pub download: Option<Link>,
    /// Every file it is made of, the main one (the one `download` fetches) first: for a
    /// job's output, each file the job wrote (such as the dubbed video and its SRT and
    /// WebVTT subtitles); for an upload, the upload itself. Empty until uploaded.
    pub files: Vec<MediaFile>,
}

/// Where a media file is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MediaStatus {
    /// Waiting for its upload to be completed.
    Pending,
    /// Its files are stored and can be downloaded.
    Uploaded,
    /// The retention policy deleted its files (`storage.output_retention_days`,
    /// `storage.upload_retention_days`).
    Expired,
}

/// One stored file of a media: its role in the output, what it is, and where to get it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MediaFile {
    /// `video`, `audio`, `srt` or `vtt` for a job's output; `file` for an upload.
    pub kind: String,
    pub mimetype: Option<String>,
    pub size_bytes: Option<i64>,
    pub duration_seconds: Option<f64>,
    pub download: Option<Link>,
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
    pub expired_at: Option<DateTime<Utc>>,
    /// Deleted by its owner; the row stays only while a job or another file names it.
    pub deleted_at: Option<DateTime<Utc>>,
}

impl MediaRow {
    /// Whether the bytes are in storage: a completed upload, or a file a worker wrote
    /// (which has no `upload` state at all).
    pub fn is_uploaded(&self) -> bool {
        self.metadata.get("upload").is_none_or(|u| u == "complete")
    }

    /// Every file of the row with a download link each; none before the upload completed.
    /// The main file's size, type and duration are the row's own.
    pub async fn files(&self, state: &ApiState) -> Vec<MediaFile> {
        if !self.is_uploaded() || self.expired_at.is_some() {
            return Vec::new();
        }
        let listed = output_files(&self.metadata, &self.s3_key);
        let mut files = Vec::with_capacity(listed.len());
        for (kind, file) in listed {
            let main = file.key == self.s3_key;
            files.push(MediaFile {
                kind,
                mimetype: file.mimetype.or(self.mimetype.clone().filter(|_| main)),
                size_bytes: file.size_bytes.or(self.size_bytes.filter(|_| main)),
                duration_seconds: file
                    .duration_seconds
                    .or(self.duration_seconds.filter(|_| main)),
                download: download_link(state, &file.key).await,
            });
        }
        files
    }

    /// The row as the API reports it, with its files ([`MediaRow::files`]); `download`
    /// is the main file's link.
    pub async fn view(&self, state: &ApiState) -> Media {
        let files = self.files(state).await;
        let download = files.first().and_then(|f| f.download.clone());
        Media {
            id: self.id,
            project_id: self.project_id,
            media_type: self.media_type.clone(),
            file_name: self.metadata["file_name"]
                .as_str()
                .map(str::to_string)
                .or_else(|| self.s3_key.rsplit('/').next().map(str::to_string)),
            status: if self.expired_at.is_some() {
                MediaStatus::Expired
            } else if self.is_uploaded() {
                MediaStatus::Uploaded
            } else {
                MediaStatus::Pending
            },
            size_bytes: self.size_bytes,
            duration_seconds: self.duration_seconds,
            mimetype: self.mimetype.clone(),
            derived_from: self.derived_from,
            created_at: self.created_at,
            expired_at: self.expired_at,
            download,
            files,
        }
    }
}

/// The media row `id`, whoever owns it (visibility is the caller's to check). A file its
/// owner deleted is not found, even while a job's row still names it.
pub async fn load<C: Session>(client: &C, id: Uuid) -> Result<Option<MediaRow>, ApiError> {
    Ok(db::query_opt(client, sql::MEDIA_BY_ID, &[&id])
        .await?
        .map(|r| MediaRow {
            id: r.get("id"),
            user_id: r.get("user_id"),
            project_id: r.get("project_id"),
            s3_key: r.get("s3_key"),
            media_type: r.get("media_type"),
            duration_seconds: r.get("duration_seconds"),
            size_bytes: r.get("size_bytes"),
            mimetype: r.get("mimetype"),
            metadata: r.get::<_, Option<Value>>("metadata").unwrap_or_default(),
            created_at: r.get("created_at"),
            derived_from: r.get("derived_from"),
            expired_at: r.get("expired_at"),
            deleted_at: r.get("deleted_at"),
        })
        .filter(|m| m.deleted_at.is_none()))
}

/// The caller's media file `id`, readable by them (404 otherwise).
async fn readable(state: &ApiState, caller: &Caller, id: Uuid) -> Result<MediaRow, ApiError> {
    let client = state.pool.get().await?;
    load(&client, id)
        .await?
        .filter(|m| caller.can_read(m.user_id))
        .ok_or(ApiError::NotFound("media"))
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

/// A media file: an upload or a job's output, with a download link once it is stored.
#[utoipa::path(
    get,
    operation_id = "getMedia",
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
pub async fn get(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<Media>, ApiError> {
    let media = readable(&state, &caller, id).await?;
    Ok(axum::Json(media.view(&state).await))
}

/// Which file of a media to download.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DownloadQuery {
    /// The file's kind, as `files` lists it (`video`, `audio`, `srt`, `vtt`, or `file`
    /// for an upload); the main file when absent.
    pub kind: Option<String>,
}

/// Download a media file: a redirect to a fresh signed link to its main file, or to the
/// file of `kind`. A link that must not expire in an email or a page is this route's
/// address, not the signed link.
#[utoipa::path(
    get,
    operation_id = "downloadMedia",
    path = "/api/media/{id}/download",
    tag = "uploads",
    params(("id" = Uuid, Path, description = "The media id"), DownloadQuery),
    responses(
        (status = 302, description = "Redirect to a signed link (`Location`)"),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such media file of the caller's, or no file of that kind", body = ErrorBody),
        (status = 409, description = "The upload is not completed", body = ErrorBody),
        (status = 410, description = "Its files were deleted by the retention policy", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn download(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<DownloadQuery>,
) -> Result<Response, ApiError> {
    let media = readable(&state, &caller, id).await?;
    if let Some(at) = media.expired_at {
        return Err(ApiError::Gone(format!(
            "media {id} expired at {at}: its files were deleted by the retention policy"
        )));
    }
    if !media.is_uploaded() {
        return Err(ApiError::Conflict(
            "the upload is not completed: POST /api/uploads/{id}/complete first".into(),
        ));
    }
    let files = output_files(&media.metadata, &media.s3_key);
    let file = match &query.kind {
        None => files.first(),
        Some(kind) => files.iter().find(|(k, _)| k == kind),
    }
    .ok_or(ApiError::NotFound("file of that kind"))?;
    let link = state.storage.download_url(&file.1.key).await?;
    Ok((
        StatusCode::FOUND,
        [
            (header::LOCATION, link.url),
            (header::CACHE_CONTROL, "no-store".into()),
        ],
    )
        .into_response())
}

/// Delete a media file and its stored files: an upload, or a job's output. Refused while
/// a job in progress reads it. The jobs that name it keep their history (their row stays,
/// and this file is then not found).
#[utoipa::path(
    delete,
    operation_id = "deleteMedia",
    path = "/api/media/{id}",
    tag = "uploads",
    params(("id" = Uuid, Path, description = "The media id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such media file of the caller's", body = ErrorBody),
        (status = 409, description = "A job in progress reads it", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn delete(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    let mut client = state.pool.get().await?;
    load(&client, id)
        .await?
        .filter(|m| m.user_id == Some(caller.user_id))
        .ok_or(ApiError::NotFound("media"))?;
    retention::delete::media(&mut client, &state.storage, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
