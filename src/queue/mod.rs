//! The queue: every statement that moves jobs and segments through their states, as
//! functions over a connection. The worker runtime (`crate::worker`), the CLI and the API
//! call these; none of them writes queue state any other way.
//!
//! - [`enqueue`]: insert jobs (bulk), reserving their credits.
//! - [`claim`]: lease job-level steps and segments with `FOR UPDATE SKIP LOCKED`.
//! - [`heartbeat`]: renew a worker's leases in one statement; learn of cancels.
//! - [`complete`]: record results and failures, fenced by attempt.
//! - [`rescue`]: take back expired leases.
//! - [`admin`]: cancel, retry, inspect.
//! - [`listener`]: the LISTEN connection that wakes idle workers.
//! - [`waker`]: one NOTIFY for many transactions' work, sent after they commit.
//! - [`job_events`]: the same for the worker's changes of jobs' status and progress.

pub mod admin;
pub mod claim;
pub mod complete;
pub mod enqueue;
pub mod heartbeat;
pub mod job_events;
pub mod listener;
pub mod rescue;
pub mod waker;

use uuid::Uuid;

/// The channel workers LISTEN on; see `sql/notify_work.sql`.
pub const WORK_CHANNEL: &str = "octavia_work";

/// A job-level step: what a job claimed from `jobs` is to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    Plan,
    Finalize,
}

impl Step {
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
    pub job_type: String,
    pub user_id: Option<Uuid>,
    pub project_id: Option<Uuid>,
    pub input_media_id: Option<Uuid>,
    /// The options the job was created with (`metadata.options`).
    pub options: serde_json::Value,
    /// What the plan step stored (`metadata.plan`), for finalize.
    pub plan: serde_json::Value,
    pub run: i32,
    pub segments_total: i32,
    pub priority: i16,
}

impl JobInfo {
    /// From a row whose columns from `at` on are: id, job_type, user_id, project_id,
    /// input_media_id, metadata, run, segments_total, priority (the order every statement
    /// that leases a step returns them in).
    pub(crate) fn from_row(r: &tokio_postgres::Row, at: usize) -> JobInfo {
        let metadata: serde_json::Value = r
            .get::<_, Option<serde_json::Value>>(at + 5)
            .unwrap_or(serde_json::Value::Null);
        JobInfo {
            id: r.get(at),
            job_type: r.get(at + 1),
            user_id: r.get(at + 2),
            project_id: r.get(at + 3),
            input_media_id: r.get(at + 4),
            options: metadata.get("options").cloned().unwrap_or_default(),
            plan: metadata.get("plan").cloned().unwrap_or_default(),
            run: r.get(at + 6),
            segments_total: r.get(at + 7),
            priority: r.get(at + 8),
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
    pub input: serde_json::Value,
}
