//! Running a job whole: a plan of one short segment is run at once by the worker that
//! made it, segment and then finalize, in the plan's slot and under its lease (the
//! heartbeat renews it meanwhile), so the job is written once, completed, instead of once
//! per step: for small jobs the queue's writes are most of their cost.
//!
//! A failure part-way is recorded as the steps would have recorded it (the plan, then the
//! segment's failure or its result and the finalize's failure), so attempts, backoff,
//! fatal errors and resuming behave exactly as for a job run step by step. A cancel
//! requested meanwhile stops the run; the plan is recorded and settles it.

use super::attempt::{failure_of, log_failure, supervise};
use super::handler::{Handler, Plan, SegmentContext, StepContext};
use super::inflight::{Entry, Key, StopReason};
use super::shared::{Completion, Shared, persist, settle};
use crate::job::{ClaimedSegment, ClaimedStep, JobInfo, SegmentStatus, SegmentView};
use crate::queue::complete::{self, Failure, FailureOutcome};
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// Whether a plan just made is run whole under its own lease: a single segment its handler
/// says is short ([`Handler::runs_whole`]), nothing told the attempt to stop, and the
/// worker is not shutting down.
pub(super) fn applies(shared: &Shared, handler: &dyn Handler, plan: &Plan, entry: &Entry) -> bool {
    plan.segments.len() == 1
        && handler.runs_whole(plan)
        && entry.reason().is_none()
        && shared.is_claiming()
}

/// Runs the one segment of a plan just made and then the job's finalize, in the plan
/// step's slot and under its lease. Returns what the completer records; `None` when the
/// attempt ended otherwise and was dealt with here.
pub(super) async fn run(
    shared: &Arc<Shared>,
    handler: &Arc<dyn Handler>,
    step: &ClaimedStep,
    key: Key,
    plan: Plan,
    entry: &Entry,
    timeout: Duration,
) -> Option<Completion> {
    let planned = &plan.segments[0];
    let segment = ClaimedSegment {
        id: uuid::Uuid::now_v7(),
        job_id: step.job.id,
        job_type: step.job.job_type.clone(),
        run: step.job.run,
        index: 0,
        start_ms: planned.start_ms,
        end_ms: planned.end_ms,
        attempt: 1,
        max_attempts: step.max_attempts,
        input: planned.input.clone(),
        traceparent: step.job.traceparent.clone(),
    };
    let ctx = SegmentContext {
        segment: segment.clone(),
        worker_id: shared.worker_id().to_string(),
        pool: shared.pool.clone(),
        cancel: entry.cancel.clone(),
    };
    let h = handler.clone();
    // Within the plan's span: the segment and the finalize it runs whole.
    let span = tracing::info_span!("segment", otel.name = "segment", segment.index = 0);
    let ran = supervise(
        async move { h.run_segment(&ctx).await }.instrument(span),
        timeout,
        entry,
    )
    .await;
    let result = match ran {
        Ok(result) if entry.reason().is_none() => result,
        Ok(_) if entry.reason() == Some(StopReason::JobStopping) => {
            return Some(Completion::Plan {
                key,
                step: step.clone(),
                plan,
            });
        }
        Ok(_) => {
            tracing::info!("result dropped: the lease was lost or the worker is shutting down");
            return None;
        }
        Err(error) => {
            if let Some(failure) = failure_of(shared, error, entry, 1, timeout) {
                record_parts(shared, step, &plan, None, failure).await;
            }
            return None;
        }
    };
    let ran = SegmentView {
        id: segment.id,
        index: 0,
        status: SegmentStatus::Completed,
        attempts: 1,
        max_attempts: step.max_attempts,
        start_ms: planned.start_ms,
        end_ms: planned.end_ms,
        locked_by: None,
        last_error: None,
        input: Some(planned.input.clone()),
        result: Some(result.clone()),
        finished_at: Some(chrono::Utc::now()),
    };
    let ctx = StepContext {
        job: JobInfo {
            plan: plan.data.clone(),
            segments_total: 1,
            ..step.job.clone()
        },
        attempt: 1,
        worker_id: shared.worker_id().to_string(),
        pool: shared.pool.clone(),
        cancel: entry.cancel.clone(),
        ran: Some(Arc::from(vec![ran])),
    };
    let h = handler.clone();
    let span = tracing::info_span!("step", otel.name = "finalize", step = "finalize");
    let finalized = supervise(
        async move { h.finalize(&ctx).await }.instrument(span),
        timeout,
        entry,
    )
    .await;
    match finalized {
        // As for a finalize step, output finished while the job was being cancelled is kept.
        Ok(output) if entry.reason().is_none_or(|r| r == StopReason::JobStopping) => {
            Some(Completion::Whole {
                key,
                step: step.clone(),
                plan,
                segment: segment.id,
                result,
                output,
            })
        }
        Ok(_) => {
            tracing::info!("output dropped: the lease was lost or the worker is shutting down");
            None
        }
        Err(error) => {
            if let Some(failure) = failure_of(shared, error, entry, 1, timeout) {
                record_parts(shared, step, &plan, Some(result), failure).await;
            }
            None
        }
    }
}

/// Records a job run whole that failed part-way as its steps would have: the plan (its
/// segment leased to this worker, attempt 1), then either the segment's failure or, with
/// `result`, the segment's result (its finalize leased to this worker, attempt 1) and the
/// finalize's failure. Each write is retried on its own, durably.
async fn record_parts(
    shared: &Arc<Shared>,
    step: &ClaimedStep,
    plan: &Plan,
    result: Option<serde_json::Value>,
    failure: Failure,
) {
    let worker_id = shared.worker_id();
    let lease = |jobs, segments| complete::Lease {
        worker_id,
        duration: shared.lease(),
        jobs,
        segments,
    };
    let record = complete::PlanRecord {
        step,
        segments: &plan.segments,
        data: &plan.data,
    };
    let Some(planned) = persist(shared, "a plan", || async {
        let client = shared.pool.get().await?;
        complete::plans_done(&client, worker_id, &[record], Some(lease(&[], 1))).await
    })
    .await
    else {
        return;
    };
    if !planned.recorded.contains(&step.job.id) {
        log_failure(Some(FailureOutcome::Stale), &failure);
        return;
    }
    if !planned.cancelling.is_empty() {
        settle(shared, planned.cancelling).await;
        log_failure(Some(FailureOutcome::Stopped), &failure);
        return;
    }
    let Some(segment) = planned.leased.into_iter().next() else {
        return;
    };
    let Some(result) = result else {
        let outcome = persist(shared, "a segment failure", || async {
            let mut client = shared.pool.get().await?;
            complete::segment_failed(&mut client, &segment, &failure).await
        })
        .await;
        log_failure(outcome, &failure);
        return;
    };
    let job = [step.job.id];
    let results = [(segment.id, segment.attempt, result)];
    let Some(completed) = persist(shared, "a segment result", || async {
        let client = shared.pool.get().await?;
        complete::segments(&client, &results, Some(lease(&job, 0))).await
    })
    .await
    else {
        return;
    };
    if !completed.stopping.is_empty() {
        settle(shared, completed.stopping).await;
        log_failure(Some(FailureOutcome::Stopped), &failure);
        return;
    }
    let Some(finalize) = completed.leased.into_iter().next() else {
        return;
    };
    let outcome = persist(shared, "a step failure", || async {
        let mut client = shared.pool.get().await?;
        complete::step_failed(&mut client, worker_id, &finalize, &failure).await
    })
    .await;
    log_failure(outcome, &failure);
}
