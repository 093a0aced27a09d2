//! `GET /api/jobs/{id}/transcript`: what a job heard (or read) and what it made of it,
//! phrase by phrase with their times, from its segments' results. The job's owner and
//! admins only; anyone else gets 404, as for the job itself.

use super::auth::Caller;
use super::error::{ApiError, ApiPath, ErrorBody};
use super::jobs::visible;
use super::state::ApiState;
use crate::job::transcript::{self, TranscriptLine};
use crate::job::{JobStatus, SegmentStatus, output_files};
use crate::queue::admin;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// A job's transcript.
#[derive(Debug, Serialize, ToSchema)]
pub struct Transcript {
    pub job_id: Uuid,
    pub status: JobStatus,
    /// Whether every segment has recorded its result: until then the lines are those of
    /// the segments done so far.
    pub complete: bool,
    pub lines: Vec<TranscriptLine>,
}

/// A job's transcript: every phrase (or cue) its segments recorded, in order, with the
/// recognized text and its translation.
#[utoipa::path(
    get,
    operation_id = "getJobTranscript",
    path = "/api/jobs/{id}/transcript",
    tag = "jobs",
    params(("id" = Uuid, Path, description = "The job id")),
    responses(
        (status = 200, description = "The transcript", body = Transcript),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such job of the caller's", body = ErrorBody),
        (status = 410, description = "The job's output, which kept the transcript, expired or was deleted", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<Transcript>, ApiError> {
    let client = state.pool.get().await?;
    visible(&client, &caller, id, false).await?;
    let job = admin::job(&client, id)
        .await?
        .ok_or(ApiError::NotFound("job"))?;
    let segments = admin::segments(&client, id).await?;
    let planned = job.segments_total > 0 || job.status == JobStatus::Completed;
    // A completed job's segment rows are pruned after worker.segment_retention_seconds;
    // its output keeps the transcript as a file.
    let lines = match job.output_media_id {
        Some(output) if segments.is_empty() && job.status == JobStatus::Completed => {
            stored(&state, &client, output).await?
        }
        _ => transcript::lines(&segments),
    };
    Ok(axum::Json(Transcript {
        job_id: id,
        status: job.status,
        complete: planned
            && segments
                .iter()
                .all(|s| s.status == SegmentStatus::Completed),
        lines,
    }))
}

/// The lines of the transcript file of output `media` (none if it has no such file).
async fn stored<C: crate::db::Session>(
    state: &ApiState,
    client: &C,
    media: Uuid,
) -> Result<Vec<TranscriptLine>, ApiError> {
    let Some(row) = super::media::load(client, media).await? else {
        return Err(ApiError::Gone(
            "the job's output was deleted, and its transcript with it".into(),
        ));
    };
    if let Some(at) = row.expired_at {
        return Err(ApiError::Gone(format!(
            "the job's output expired at {at}, and its transcript with it"
        )));
    }
    let files = output_files(&row.metadata, &row.s3_key);
    let Some((_, file)) = files.iter().find(|(role, _)| role == transcript::ROLE) else {
        return Ok(Vec::new());
    };
    let bytes = state.storage.get_bytes(&file.key).await?;
    #[derive(serde::Deserialize)]
    struct File {
        lines: Vec<TranscriptLine>,
    }
    let parsed: File = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::Internal(format!("the transcript file {}: {e}", file.key)))?;
    Ok(parsed.lines)
}
