//! Reading and steering jobs: one job with its segments summary and output link, a page of
//! jobs, cancel and retry (the queue's own semantics, see [`crate::queue::admin`]).
//! Creating one is [`super::create`].

use super::auth::Caller;
use super::error::{ApiError, ApiPath, ApiQuery, ErrorBody};
use super::media::{self, Link, MediaFile};
use super::state::ApiState;
use crate::db::Session;
use crate::job::{JobStatus, JobView, SegmentStatus};
use crate::queue::admin;
use crate::{db, sql};
use axum::extract::State;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_postgres::Row;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// A job's segments counted by status.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct SegmentCounts {
    /// Segments the plan created (0 until the job is planned).
    pub total: i64,
    pub pending: i64,
    pub running: i64,
    pub completed: i64,
    pub failed: i64,
    pub cancelled: i64,
}

/// A job's output file, once it is completed.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobOutput {
    pub media_id: Uuid,
    /// When the retention policy deleted its files (`storage.output_retention_days`):
    /// then it has no links, and downloading it answers 410.
    pub expired_at: Option<DateTime<Utc>>,
    pub mimetype: Option<String>,
    pub size_bytes: Option<i64>,
    pub duration_seconds: Option<f64>,
    /// Where to download it (a presigned S3 URL or the local store's signed route).
    pub download: Option<Link>,
    /// Every file the job wrote, the main one (the one `download` fetches) first, each
    /// with its own link: a `subtitles` job's SRT and WebVTT, a dub's video or audio and
    /// its subtitles.
    pub files: Vec<MediaFile>,
}

/// A job as the API reports it.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobResponse {
    pub id: Uuid,
    pub user_id: Option<Uuid>,
    pub project_id: Option<Uuid>,
    #[schema(value_type = crate::job::JobType)]
    pub job_type: String,
    pub status: JobStatus,
    /// 0 to 100.
    pub progress: i32,
    /// What the job was created with.
    #[schema(value_type = crate::job::options_schema::JobOptions)]
    pub options: Value,
    /// Why the job (or its last attempt) failed.
    pub error: Option<String>,
    pub input_media_id: Option<Uuid>,
    /// Credits reserved for the current run (refunded if it fails or is cancelled).
    pub cost_credits: i64,
    /// 1, and one more per retry.
    pub run: i32,
    pub created_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub cancel_requested_at: Option<DateTime<Utc>>,
    pub segments: SegmentCounts,
    /// Present when the job completed with an output file.
    pub output: Option<JobOutput>,
    /// For a failed or cancelled job: true if a retry resumes from its completed segments,
    /// false if it plans the job again from its input (its intermediate files are deleted
    /// `storage.failed_job_retention_seconds` after it ended). Absent otherwise.
    pub resumable: Option<bool>,
}

/// The job `id` as the API reports it, or `None` if there is no such job. Visibility is
/// the caller's to check (see [`visible`]).
pub async fn view<C: Session>(
    state: &ApiState,
    client: &C,
    id: Uuid,
) -> Result<Option<JobResponse>, ApiError> {
    // Both queries are sent at once on the one connection (tokio-postgres pipelines them):
    // one round trip instead of two.
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&id];
    let (job, counts) = tokio::try_join!(
        admin::job(client, id),
        db::query(client, sql::SEGMENT_COUNTS, &params)
    )?;
    let Some(job) = job else {
        return Ok(None);
    };
    let counts: Vec<(Option<SegmentStatus>, i64)> = counts
        .iter()
        .map(|r| (r.get("status"), r.get("count")))
        .collect();
    Ok(Some(response(state, client, job, &counts).await?))
}

/// The answer about `job`, whose segments are counted by status in `counts`.
pub async fn response<C: Session>(
    state: &ApiState,
    client: &C,
    job: JobView,
    counts: &[(Option<SegmentStatus>, i64)],
) -> Result<JobResponse, ApiError> {
    let mut segments = SegmentCounts {
        total: job.segments_total.into(),
        ..SegmentCounts::default()
    };
    for (status, n) in counts {
        let n = *n;
        match status {
            Some(SegmentStatus::Pending) => segments.pending = n,
            Some(SegmentStatus::Running) => segments.running = n,
            Some(SegmentStatus::Completed) => segments.completed = n,
            Some(SegmentStatus::Failed) => segments.failed = n,
            Some(SegmentStatus::Cancelled) => segments.cancelled = n,
            None => {}
        }
    }
    // A completed job's segment rows are pruned after worker.segment_retention_seconds;
    // its counter still says how many completed.
    segments.completed = segments.completed.max(job.segments_done.into());
    let output = match job.output_media_id {
        Some(media_id) if job.status == JobStatus::Completed => {
            match media::load(client, media_id).await? {
                Some(media) => {
                    let files = media.files(state).await;
                    Some(JobOutput {
                        media_id,
                        expired_at: media.expired_at,
                        mimetype: media.mimetype.clone(),
                        size_bytes: media.size_bytes,
                        duration_seconds: media.duration_seconds,
                        download: files.first().and_then(|f| f.download.clone()),
                        files,
                    })
                }
                None => None,
            }
        }
        _ => None,
    };
    let resumable = job.resumable();
    Ok(JobResponse {
        resumable,
        id: job.id,
        user_id: job.user_id,
        project_id: job.project_id,
        job_type: job.job_type,
        status: job.status,
        progress: job.progress,
        options: job.metadata.get("options").cloned().unwrap_or(Value::Null),
        error: job.last_error,
        input_media_id: job.input_media_id,
        cost_credits: job.cost_credits,
        run: job.run,
        created_at: job.created_at,
        started_at: job.started_at,
        finished_at: job.finished_at,
        cancel_requested_at: job.cancel_requested_at,
        segments,
        output,
    })
}

/// Checks the caller may see job `id`: 404 if it does not exist or is someone else's
/// (unless the caller is an admin). `write` asks for the owner: admins read everyone's
/// jobs but change only their own (operators have the CLI).
pub async fn visible<C: Session>(
    client: &C,
    caller: &Caller,
    id: Uuid,
    write: bool,
) -> Result<(), ApiError> {
    let owner: Option<Uuid> = db::query_opt(client, sql::JOB_OWNER, &[&id])
        .await?
        .ok_or(ApiError::NotFound("job"))?
        .get("user_id");
    let allowed = if write {
        owner == Some(caller.user_id)
    } else {
        caller.can_read(owner)
    };
    if !allowed {
        return Err(ApiError::NotFound("job"));
    }
    Ok(())
}

/// A job, its segments summary and, once completed, a link to its output.
#[utoipa::path(
    get,
    operation_id = "getJob",
    path = "/api/jobs/{id}",
    tag = "jobs",
    params(("id" = Uuid, Path, description = "The job id")),
    responses(
        (status = 200, description = "The job", body = JobResponse),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such job of the caller's", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<JobResponse>, ApiError> {
    let client = state.pool.get().await?;
    visible(&client, &caller, id, false).await?;
    let view = view(&state, &client, id)
        .await?
        .ok_or(ApiError::NotFound("job"))?;
    Ok(axum::Json(view))
}

/// The filters and cursor of `GET /api/jobs`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only jobs of this status.
    #[param(value_type = Option<JobStatus>)]
    pub status: Option<String>,
    /// Only jobs of this project.
    pub project_id: Option<Uuid>,
    /// Page size, 1 to 100 (default 20).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A job in a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobSummary {
    pub id: Uuid,
    pub user_id: Option<Uuid>,
    pub project_id: Option<Uuid>,
    pub job_type: String,
    pub status: JobStatus,
    pub progress: i32,
    pub cost_credits: i64,
    pub input_media_id: Option<Uuid>,
    pub output_media_id: Option<Uuid>,
    pub error: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A page of jobs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobPage {
    pub jobs: Vec<JobSummary>,
    /// Pass as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

fn summary(r: &Row) -> JobSummary {
    JobSummary {
        id: r.get("id"),
        user_id: r.get("user_id"),
        project_id: r.get("project_id"),
        job_type: r.get("job_type"),
        status: r.get("status"),
        progress: r.get::<_, Option<i32>>("progress").unwrap_or(0),
        cost_credits: r.get::<_, Option<i64>>("cost_credits").unwrap_or(0),
        input_media_id: r.get("input_media_id"),
        output_media_id: r.get("output_media_id"),
        error: r.get("last_error"),
        created_at: r.get("created_at"),
        finished_at: r.get("finished_at"),
    }
}

/// A cursor is the (created_at, id) of the last job of a page, opaque to clients.
fn encode_cursor(created_at: DateTime<Utc>, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}.{id}", created_at.timestamp_micros()))
}

fn decode_cursor(cursor: &str) -> Result<(DateTime<Utc>, Uuid), ApiError> {
    let bad = || ApiError::BadRequest("cursor is not a next_cursor this API returned".into());
    let text = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(text).map_err(|_| bad())?;
    let (micros, id) = text.split_once('.').ok_or_else(bad)?;
    let at = micros
        .parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(bad)?;
    Ok((at, id.parse().map_err(|_| bad())?))
}

/// The caller's jobs (an admin's: everyone's), newest first, a page at a time.
#[utoipa::path(
    get,
    operation_id = "listJobs",
    path = "/api/jobs",
    tag = "jobs",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of jobs", body = JobPage),
        (status = 400, description = "Malformed parameters or cursor", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 422, description = "Unknown status or limit out of range", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<axum::Json<JobPage>, ApiError> {
    let limit = query.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::Invalid("limit must be between 1 and 100".into()));
    }
    let status: Option<JobStatus> = query
        .status
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|_| ApiError::Invalid(format!("status must be one of {}", JobStatus::names())))?;
    let (after_at, after_id) = match &query.cursor {
        Some(c) => {
            let (at, id) = decode_cursor(c)?;
            (Some(at), Some(id))
        }
        None => (None, None),
    };
    // One more than asked for tells whether there is a next page.
    let fetch = limit + 1;
    let client = state.pool.get().await?;
    let rows = if caller.is_admin() {
        db::query(
            &client,
            sql::LIST_ALL_JOBS,
            &[&status, &query.project_id, &after_at, &after_id, &fetch],
        )
        .await?
    } else {
        db::query(
            &client,
            sql::LIST_USER_JOBS,
            &[
                &caller.user_id,
                &status,
                &query.project_id,
                &after_at,
                &after_id,
                &fetch,
            ],
        )
        .await?
    };
    let mut jobs: Vec<JobSummary> = rows.iter().map(summary).collect();
    let next_cursor = if jobs.len() as i64 > limit {
        jobs.truncate(limit as usize);
        jobs.last()
            .and_then(|j| Some(encode_cursor(j.created_at?, j.id)))
    } else {
        None
    };
    Ok(axum::Json(JobPage { jobs, next_cursor }))
}

/// Cancel a job: no new work of it starts, running work stops at its next heartbeat, and
/// its credits are refunded once nothing of it runs.
#[utoipa::path(
    post,
    operation_id = "cancelJob",
    path = "/api/jobs/{id}/cancel",
    tag = "jobs",
    params(("id" = Uuid, Path, description = "The job id")),
    responses(
        (status = 200, description = "Cancelled, or cancelling (status still running)", body = JobResponse),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such job of the caller's", body = ErrorBody),
        (status = 409, description = "The job already ended", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn cancel(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<JobResponse>, ApiError> {
    let mut client = state.pool.get().await?;
    visible(&client, &caller, id, true).await?;
    admin::cancel(&mut client, id).await?;
    let view = view(&state, &client, id)
        .await?
        .ok_or(ApiError::NotFound("job"))?;
    Ok(axum::Json(view))
}

/// Retry a failed or cancelled job from where it stopped (completed segments are kept).
/// The new run reserves the job's price again.
#[utoipa::path(
    post,
    operation_id = "retryJob",
    path = "/api/jobs/{id}/retry",
    tag = "jobs",
    params(("id" = Uuid, Path, description = "The job id")),
    responses(
        (status = 200, description = "Queued again", body = JobResponse),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 402, description = "The price exceeds the balance", body = ErrorBody),
        (status = 404, description = "No such job of the caller's", body = ErrorBody),
        (status = 409, description = "The job is not failed or cancelled", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn retry(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<JobResponse>, ApiError> {
    let mut client = state.pool.get().await?;
    visible(&client, &caller, id, true).await?;
    admin::retry(&mut client, id).await?;
    let view = view(&state, &client, id)
        .await?
        .ok_or(ApiError::NotFound("job"))?;
    Ok(axum::Json(view))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let at = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        let id = Uuid::now_v7();
        let (a, i) = decode_cursor(&encode_cursor(at, id)).unwrap();
        assert_eq!((a, i), (at, id));
        for bad in ["", "!!", "bm9wZQ", &URL_SAFE_NO_PAD.encode("1.x")] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }
}
