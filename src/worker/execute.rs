//! Running one claimed attempt: its handler on a task of its own (so a panic is caught and
//! counted as a failed attempt), under its timeout and cancellation, then recording the
//! outcome.

use super::handler::{Handler, HandlerError, Plan, SegmentContext, StepContext};
use super::inflight::{Entry, Key, StopReason};
use super::{Completion, Shared};
use crate::job::{ClaimedSegment, ClaimedStep, JobInfo, Step};
use crate::job::{SegmentStatus, SegmentView};
use crate::queue::complete::{self, Failure, FailureOutcome};
use futures_util::FutureExt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tracing::Instrument;

/// Runs `work` until it ends, panics, times out or is told to stop and ignores it. The
/// handler runs within this task (a task of its own per attempt cost measurably at tens of
/// thousands of segments a second); a panic is caught all the same, and a handler that
/// outlives its timeout is dropped, which stops it at its next await.
async fn supervise<T>(
    work: impl Future<Output = Result<T, HandlerError>>,
    timeout: Duration,
    entry: &Entry,
) -> Result<T, HandlerError> {
    let work = std::panic::AssertUnwindSafe(work).catch_unwind();
    tokio::pin!(work);
    let outcome = tokio::select! {
        outcome = &mut work => outcome,
        _ = tokio::time::sleep(timeout) => {
            entry.stop(StopReason::Timeout);
            // Give the handler a moment to clean up after the cancellation, then drop it.
            match tokio::time::timeout(Duration::from_secs(2), &mut work).await {
                Ok(outcome) => outcome,
                Err(_) => return Err(HandlerError::Cancelled),
            }
        }
    };
    outcome.unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        Err(HandlerError::Retryable(format!(
            "handler panicked: {message}"
        )))
    })
}

/// What to record for an attempt that ended with `error`, given why it was told to stop.
/// `None`: record nothing (the lease is lost, or shutdown releases the row).
fn failure_of(
    shared: &Shared,
    error: HandlerError,
    entry: &Entry,
    attempt: i32,
    timeout: Duration,
) -> Option<Failure> {
    match entry.reason() {
        Some(StopReason::LeaseLost) | Some(StopReason::Shutdown) => None,
        Some(StopReason::JobStopping) => Some(Failure::Stopped),
        Some(StopReason::Timeout) => Some(Failure::Retryable {
            error: format!("timed out after {} s", timeout.as_secs_f64()),
            delay: shared.backoff(attempt),
        }),
        None => Some(match error {
            HandlerError::Fatal(error) => Failure::Fatal { error },
            HandlerError::Retryable(error) => Failure::Retryable {
                error,
                delay: shared.backoff(attempt),
            },
            HandlerError::Cancelled => Failure::Retryable {
                error: "the handler stopped without being told to".into(),
                delay: shared.backoff(attempt),
            },
        }),
    }
}

/// Retries a database write until it succeeds or the lease would have expired anyway
/// (then the rescuer takes over).
pub(super) async fn persist<T, F, Fut>(shared: &Shared, what: &str, mut write: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = crate::Result<T>>,
{
    let deadline = tokio::time::Instant::now() + shared.lease();
    let mut wait = Duration::from_millis(50);
    loop {
        match write().await {
            Ok(v) => return Some(v),
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::warn!(error = %e, retry_in = ?wait, "recording {what} failed");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
            }
            Err(e) => {
                tracing::error!(error = %e, "giving up recording {what}; the lease will expire and be rescued");
                return None;
            }
        }
    }
}

fn timeout_of(shared: &Shared, handler: Option<&Arc<dyn Handler>>) -> Duration {
    handler
        .and_then(|h| h.timeout())
        .unwrap_or(Duration::from_secs(
            shared.config.worker.handler_timeout_seconds,
        ))
}

fn log_failure(outcome: Option<FailureOutcome>, failure: &Failure) {
    match (outcome, failure) {
        (Some(FailureOutcome::Retrying), Failure::Retryable { error, delay }) => {
            tracing::warn!(%error, retry_in = ?delay, "attempt failed; will retry")
        }
        (Some(FailureOutcome::JobFailed), _) => {
            tracing::error!(?failure, "attempt failed; job failed")
        }
        (Some(FailureOutcome::Stopped), _) => {
            tracing::info!("stopped: the job is being cancelled or has failed")
        }
        (Some(FailureOutcome::Stale), _) => tracing::warn!("outcome discarded: the lease was lost"),
        _ => {}
    }
}

/// Runs a claimed segment and hands a success to the completer (which records it in a
/// batch and gives the permit back) or records the failure itself.
pub(super) async fn segment(
    shared: Arc<Shared>,
    segment: ClaimedSegment,
    permit: OwnedSemaphorePermit,
    done: mpsc::Sender<Completion>,
) {
    let key = Key::segment(&segment);
    let entry = shared.inflight.insert(key);
    let span = tracing::info_span!("segment", job.id = %segment.job_id, segment.index = segment.index, attempt = segment.attempt);
    async {
        let handler = shared.registry.get(&segment.job_type);
        let timeout = timeout_of(&shared, handler.as_ref());
        let outcome = match handler {
            None => Err(HandlerError::Fatal(format!(
                "unknown job type `{}`: no handler is registered for it",
                segment.job_type
            ))),
            Some(handler) => {
                let ctx = SegmentContext {
                    segment: segment.clone(),
                    worker_id: shared.worker_id().to_string(),
                    pool: shared.pool.clone(),
                    cancel: entry.cancel.clone(),
                };
                supervise(
                    async move { handler.run_segment(&ctx).await },
                    timeout,
                    &entry,
                )
                .await
            }
        };
        match outcome {
            Ok(value) if entry.reason().is_none_or(|r| r == StopReason::JobStopping) => {
                tracing::debug!("segment done");
                entry.set_completing();
                let completion = Completion::Segment {
                    key,
                    job_id: segment.job_id,
                    value,
                };
                if done.send(completion).await.is_err() {
                    shared.inflight.remove(&key);
                }
                drop(permit);
                shared.slot_freed.notify_one();
                return;
            }
            Ok(_) => {
                tracing::info!("result dropped: the lease was lost or the worker is shutting down")
            }
            Err(error) => {
                if let Some(failure) = failure_of(&shared, error, &entry, segment.attempt, timeout)
                {
                    let outcome = persist(&shared, "a segment failure", || async {
                        let mut client = shared.pool.get().await?;
                        complete::segment_failed(&mut client, &segment, &failure).await
                    })
                    .await;
                    log_failure(outcome, &failure);
                }
            }
        }
        shared.inflight.remove(&key);
        drop(permit);
        shared.slot_freed.notify_one();
    }
    .instrument(span)
    .await
}

/// Runs a claimed plan or finalize step and records its outcome.
pub(super) async fn step(
    shared: Arc<Shared>,
    step: ClaimedStep,
    permit: OwnedSemaphorePermit,
    done: mpsc::Sender<Completion>,
) {
    let key = Key {
        id: step.job.id,
        attempt: step.attempt,
        step: Some(step.step),
    };
    let entry = shared.inflight.insert(key);
    let span = tracing::info_span!("step", job.id = %step.job.id, step = step.step.as_str(), attempt = step.attempt);
    async {
        let handler = shared.registry.get(&step.job.job_type);
        let timeout = timeout_of(&shared, handler.as_ref());
        let Some(handler) = handler else {
            let failure = Failure::Fatal {
                error: format!(
                    "unknown job type `{}`: no handler is registered for it",
                    step.job.job_type
                ),
            };
            let outcome = persist(&shared, "an unknown job type", || async {
                let mut client = shared.pool.get().await?;
                complete::step_failed(&mut client, shared.worker_id(), &step, &failure).await
            })
            .await;
            log_failure(outcome, &failure);
            shared.inflight.remove(&key);
            drop(permit);
            shared.slot_freed.notify_one();
            return;
        };
        let ctx = StepContext {
            job: step.job.clone(),
            attempt: step.attempt,
            worker_id: shared.worker_id().to_string(),
            pool: shared.pool.clone(),
            cancel: entry.cancel.clone(),
            ran: None,
        };
        let worker_id = shared.worker_id();
        // Ok(None): the attempt was dealt with already (a job run whole that ended early).
        let outcome = match step.step {
            Step::Plan => {
                let h = handler.clone();
                match supervise(async move { h.plan(&ctx).await }, timeout, &entry).await {
                    Ok(plan) if runs_whole(&shared, handler.as_ref(), &plan, &entry) => {
                        Ok(whole(&shared, &handler, &step, key, plan, &entry, timeout).await)
                    }
                    planned => planned.map(|plan| {
                        Some(Completion::Plan {
                            key,
                            step: step.clone(),
                            plan,
                        })
                    }),
                }
            }
            Step::Finalize => {
                let h = handler.clone();
                supervise(async move { h.finalize(&ctx).await }, timeout, &entry)
                    .await
                    .map(|output| {
                        Some(Completion::Finalize {
                            key,
                            step: step.clone(),
                            output,
                        })
                    })
            }
        };
        let error = match outcome {
            // A plan or finalize that finished while its job was being cancelled is still
            // recorded: plans_done settles the cancel, and finished output is kept.
            Ok(None) => None,
            Ok(Some(completion)) if entry.reason().is_none_or(|r| r == StopReason::JobStopping) => {
                entry.set_completing();
                if done.send(completion).await.is_err() {
                    shared.inflight.remove(&key);
                }
                drop(permit);
                shared.slot_freed.notify_one();
                return;
            }
            Ok(_) => Some(HandlerError::Cancelled),
            Err(e) => Some(e),
        };
        if let Some(error) = error
            && let Some(failure) = failure_of(&shared, error, &entry, step.attempt, timeout)
        {
            let outcome = persist(&shared, "a step failure", || async {
                let mut client = shared.pool.get().await?;
                complete::step_failed(&mut client, worker_id, &step, &failure).await
            })
            .await;
            log_failure(outcome, &failure);
        }
        shared.inflight.remove(&key);
        drop(permit);
        shared.slot_freed.notify_one();
    }
    .instrument(span)
    .await
}

/// Whether a plan just made is run whole under its own lease: a single segment its handler
/// says is short ([`Handler::runs_whole`]), nothing told the attempt to stop, and the
/// worker is not shutting down.
fn runs_whole(shared: &Shared, handler: &dyn Handler, plan: &Plan, entry: &Entry) -> bool {
    plan.segments.len() == 1
        && handler.runs_whole(plan)
        && entry.reason().is_none()
        && shared.claiming.load(std::sync::atomic::Ordering::SeqCst)
}

/// Runs the one segment of a plan just made and then the job's finalize, in the plan
/// step's slot and under its lease (the heartbeat renews it meanwhile), so the job is
/// written once, completed, instead of once per step: for small jobs the queue's writes
/// are most of their cost. Returns what the completer records; `None` when the attempt
/// ended otherwise and was dealt with here.
///
/// A failure part-way is recorded as the steps would have recorded it (the plan, then the
/// segment's failure or its result and the finalize's failure), so attempts, backoff,
/// fatal errors and resuming behave exactly as for a job run step by step. A cancel
/// requested meanwhile stops the run; the plan is recorded and settles it.
async fn whole(
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
    };
    let ctx = SegmentContext {
        segment: segment.clone(),
        worker_id: shared.worker_id().to_string(),
        pool: shared.pool.clone(),
        cancel: entry.cancel.clone(),
    };
    let h = handler.clone();
    let ran = supervise(async move { h.run_segment(&ctx).await }, timeout, entry).await;
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
    let finalized = supervise(async move { h.finalize(&ctx).await }, timeout, entry).await;
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
        super::settle(shared, planned.cancelling).await;
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
        super::settle(shared, completed.stopping).await;
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
