//! What a worker holds: a job-level step or a segment leased to it, with what its handler
//! knows of the job. Read from the rows the claim and completion statements return, by
//! column name.

use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

/// A job-level step: what a job claimed from `jobs` is to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    Plan,
    Finalize,
}

impl Step {
    /// As `jobs.step` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Plan => "plan",
            Step::Finalize => "finalize",
        }
    }
}

/// What a handler knows of its job.
#[derive(Debug, Clone)]
pub struct JobInfo {
    pub id: Uuid,
    /// The job type's name (`jobs.job_type`): the queue runs any type a worker has a
    /// handler for, the product's ([`super::JobType`]) and any other.
    pub job_type: String,
    pub user_id: Option<Uuid>,
    pub project_id: Option<Uuid>,
    pub input_media_id: Option<Uuid>,
    /// The options the job was created with (`metadata.options`).
    pub options: Value,
    /// What the plan step stored (`metadata.plan`), for finalize.
    pub plan: Value,
    pub run: i32,
    pub segments_total: i32,
    pub priority: i16,
    /// The W3C traceparent of the job's creation (`jobs.traceparent`).
    pub traceparent: Option<String>,
}

impl JobInfo {
    /// From a row with the job's columns `id`, `job_type`, `user_id`, `project_id`,
    /// `input_media_id`, `metadata`, `run`, `segments_total` and `priority`, as every
    /// statement that leases a step returns them.
    pub fn from_row(r: &Row) -> JobInfo {
        let metadata: Value = r.get::<_, Option<Value>>("metadata").unwrap_or(Value::Null);
        JobInfo {
            id: r.get("id"),
            job_type: r.get("job_type"),
            user_id: r.get("user_id"),
            project_id: r.get("project_id"),
            input_media_id: r.get("input_media_id"),
            options: metadata.get("options").cloned().unwrap_or_default(),
            plan: metadata.get("plan").cloned().unwrap_or_default(),
            run: r.get("run"),
            segments_total: r.get("segments_total"),
            priority: r.get("priority"),
            traceparent: r.get("traceparent"),
        }
    }
}

/// A job-level step leased to this worker.
#[derive(Debug, Clone)]
pub struct ClaimedStep {
    pub job: JobInfo,
    pub step: Step,
    pub attempt: i32,
    pub max_attempts: i32,
}

/// A segment leased to this worker.
#[derive(Debug, Clone)]
pub struct ClaimedSegment {
    pub id: Uuid,
    pub job_id: Uuid,
    pub job_type: String,
    /// The job's run (see `jobs.run`): with the attempt, names this attempt uniquely for
    /// the job's whole life, since a retry starts attempts again.
    pub run: i32,
    pub index: i32,
    pub start_ms: Option<i32>,
    pub end_ms: Option<i32>,
    pub attempt: i32,
    pub max_attempts: i32,
    /// The plan's parameters for this segment.
    pub input: Value,
    /// The W3C traceparent of the job's creation (`jobs.traceparent`).
    pub traceparent: Option<String>,
}

impl ClaimedSegment {
    /// From a row of `sql/claim_segments.sql`.
    pub fn from_row(r: &Row) -> ClaimedSegment {
        ClaimedSegment {
            id: r.get("id"),
            job_id: r.get("job_id"),
            job_type: r.get("job_type"),
            run: r.get("run"),
            index: r.get("segment_index"),
            start_ms: r.get("start_ms"),
            end_ms: r.get("end_ms"),
            attempt: r.get("attempts"),
            max_attempts: r.get("max_attempts"),
            input: r.get::<_, Option<Value>>("input").unwrap_or(Value::Null),
            traceparent: r.get("traceparent"),
        }
    }
}
