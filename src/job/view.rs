//! Jobs and segments as `octavia jobs show`, the API and finalize steps read them.

use super::{JobStatus, SegmentStatus};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

/// A job, every column of it: what `octavia jobs show` prints and the API reports from.
#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    pub id: Uuid,
    pub user_id: Option<Uuid>,
    pub project_id: Option<Uuid>,
    pub job_type: String,
    pub status: JobStatus,
    /// `plan`, `segments`, `finalize` or `done` (`jobs.step`).
    pub step: String,
    pub progress: i32,
    pub segments_done: i32,
    pub segments_total: i32,
    pub run: i32,
    pub attempts: i32,
    pub max_attempts: i32,
    pub priority: i16,
    pub run_at: DateTime<Utc>,
    pub locked_by: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub cancel_requested_at: Option<DateTime<Utc>>,
    pub metadata: Value,
    pub cost_credits: i64,
    pub input_media_id: Option<Uuid>,
    pub output_media_id: Option<Uuid>,
    pub created_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The last run whose intermediate objects were deleted (`jobs.swept_run`).
    pub swept_run: Option<i32>,
}

impl JobView {
    /// For a failed or cancelled job: whether a retry resumes from its completed segments
    /// (true), or plans it again from its input because its intermediate objects were
    /// deleted (false). `None` for a job in any other state.
    pub fn resumable(&self) -> Option<bool> {
        matches!(self.status, JobStatus::Failed | JobStatus::Cancelled)
            .then_some(self.swept_run != Some(self.run))
    }

    /// From a row with the columns of `sql/job_by_id.sql`.
    pub fn from_row(r: &Row) -> JobView {
        JobView {
            id: r.get("id"),
            user_id: r.get("user_id"),
            project_id: r.get("project_id"),
            job_type: r.get("job_type"),
            status: r.get("status"),
            step: r.get("step"),
            progress: r.get::<_, Option<i32>>("progress").unwrap_or(0),
            segments_done: r.get("segments_done"),
            segments_total: r.get("segments_total"),
            run: r.get("run"),
            attempts: r.get("attempts"),
            max_attempts: r.get("max_attempts"),
            priority: r.get("priority"),
            run_at: r.get("run_at"),
            locked_by: r.get("locked_by"),
            lease_expires_at: r.get("lease_expires_at"),
            last_error: r.get("last_error"),
            cancel_requested_at: r.get("cancel_requested_at"),
            metadata: r.get::<_, Option<Value>>("metadata").unwrap_or_default(),
            cost_credits: r.get::<_, Option<i64>>("cost_credits").unwrap_or(0),
            input_media_id: r.get("input_media_id"),
            output_media_id: r.get("output_media_id"),
            created_at: r.get("created_at"),
            started_at: r.get("started_at"),
            finished_at: r.get("finished_at"),
            swept_run: r.get("swept_run"),
        }
    }
}

/// A segment, with its input and result: what `octavia jobs show` prints and what
/// finalize reads its segments' results from.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentView {
    pub id: Uuid,
    pub index: i32,
    pub status: SegmentStatus,
    pub attempts: i32,
    pub max_attempts: i32,
    pub start_ms: Option<i32>,
    pub end_ms: Option<i32>,
    pub locked_by: Option<String>,
    pub last_error: Option<String>,
    pub input: Option<Value>,
    pub result: Option<Value>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl SegmentView {
    /// From a row with the columns of `sql/segments_of_job.sql`.
    pub fn from_row(r: &Row) -> SegmentView {
        SegmentView {
            id: r.get("id"),
            index: r.get("segment_index"),
            // The column's default; Octavia never writes a NULL status.
            status: r
                .get::<_, Option<SegmentStatus>>("status")
                .unwrap_or(SegmentStatus::Pending),
            attempts: r.get("attempts"),
            max_attempts: r.get("max_attempts"),
            start_ms: r.get("start_ms"),
            end_ms: r.get("end_ms"),
            locked_by: r.get("locked_by"),
            last_error: r.get("last_error"),
            input: r.get("input"),
            result: r.get("result"),
            finished_at: r.get("finished_at"),
        }
    }
}
