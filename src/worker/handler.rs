//! What a job type implements: plan, run one segment, finalize.

use crate::error::Result;
use crate::job::SegmentView;
use crate::job::{ClaimedSegment, JobInfo};
use crate::job::{NewMedia, NewSegment};
use crate::queue::admin;
use async_trait::async_trait;
use deadpool_postgres::Pool;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How a handler attempt failed: the queue retries `Retryable` errors with backoff until
/// the attempts run out, and fails the job at once on a `Fatal` one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandlerError {
    #[error("{0}")]
    Retryable(String),
    #[error("{0}")]
    Fatal(String),
    /// The handler stopped because it was told to ([`SegmentContext::cancel`]).
    #[error("cancelled")]
    Cancelled,
}

impl HandlerError {
    pub fn retryable(e: impl std::fmt::Display) -> HandlerError {
        HandlerError::Retryable(e.to_string())
    }
    pub fn fatal(e: impl std::fmt::Display) -> HandlerError {
        HandlerError::Fatal(e.to_string())
    }
}

/// What the plan step decided.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The segments to run, in index order; may be empty (straight to finalize).
    pub segments: Vec<NewSegment>,
    /// Kept as `metadata.plan` for the finalize step.
    pub data: serde_json::Value,
}

/// The context of a plan or finalize attempt.
#[derive(Clone)]
pub struct StepContext {
    pub job: JobInfo,
    pub attempt: i32,
    /// The worker running this attempt (its `locked_by`), for results and logs.
    pub worker_id: String,
    pub pool: Pool,
    /// Fires when the job is being cancelled, the lease was lost, the attempt timed out or
    /// the worker is shutting down. Long handlers should watch it and return
    /// [`HandlerError::Cancelled`].
    pub cancel: CancellationToken,
    /// The segments of a job run whole under its plan's lease, which are not in the
    /// database yet (see `sql/complete_jobs.sql`).
    pub(crate) ran: Option<Arc<[SegmentView]>>,
}

impl StepContext {
    /// The job's segments in index order, with their results (for finalize).
    pub async fn segments(&self) -> Result<Vec<SegmentView>> {
        if let Some(ran) = &self.ran {
            return Ok(ran.to_vec());
        }
        let client = self.pool.get().await?;
        admin::segments(&client, self.job.id).await
    }
}

/// The context of a segment attempt.
#[derive(Clone)]
pub struct SegmentContext {
    pub segment: ClaimedSegment,
    /// The worker running this attempt. `locked_by` is cleared when a segment completes,
    /// so a handler that wants the history to show who did the work records this in its
    /// result.
    pub worker_id: String,
    pub pool: Pool,
    /// As [`StepContext::cancel`].
    pub cancel: CancellationToken,
}

/// A job type. Implementations are registered in a [`super::Registry`] under
/// [`Handler::job_type`].
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// The `jobs.job_type` this handler runs.
    fn job_type(&self) -> &'static str;

    /// The longest one attempt may take; `None` uses `worker.handler_timeout_seconds`.
    fn timeout(&self) -> Option<Duration> {
        None
    }

    /// Validates the job's options and input and cuts the work into segments.
    async fn plan(&self, ctx: &StepContext) -> Result<Plan, HandlerError>;

    /// Runs one segment; the returned value is stored in `job_segments.result`.
    async fn run_segment(&self, ctx: &SegmentContext) -> Result<serde_json::Value, HandlerError>;

    /// Whether the worker may run this single-segment plan whole, at once: the segment and
    /// then finalize, in the plan's slot and under its lease, the job written once when it
    /// is done instead of once per step (for short work, the queue's writes are most of
    /// its cost). Until then nothing shows the segment running: it has no `job_segments`
    /// row and the job stays at its plan step, so work long enough for anyone to watch
    /// should answer false, the default. Failures are recorded as the steps would have
    /// recorded them.
    fn runs_whole(&self, _plan: &Plan) -> bool {
        false
    }

    /// Assembles the output once every segment completed. A returned media row is inserted
    /// in the transaction that completes the job.
    async fn finalize(&self, ctx: &StepContext) -> Result<Option<NewMedia>, HandlerError>;

    /// Called on the worker that completed `job`, once its completion is committed, to
    /// delete what only its steps needed (the completion marked its run swept:
    /// `jobs.swept_run`). Nothing waits for it; what a crash leaves, the store's sweeper
    /// deletes.
    async fn completed(&self, _job: &JobInfo) {}
}
