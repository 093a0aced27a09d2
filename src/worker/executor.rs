//! The executor: runs one claimed attempt on its slot, a task of the worker's each, and
//! hands a success to the completer or records the failure itself. A plan that may run
//! whole goes on to [`super::whole`] under the same lease.

use super::attempt::{failure_of, log_failure, supervise, timeout_of};
use super::handler::{HandlerError, SegmentContext, StepContext};
use super::inflight::{Key, StopReason};
use super::shared::{Completion, Shared, Slot, Work, persist};
use super::whole;
use crate::job::{ClaimedSegment, ClaimedStep, Step};
use crate::queue::complete::{self, Failure};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tracing::Instrument;

/// Starts `work` on the slot `permit` holds, as a task of the worker's; its outcome goes
/// to the completer through `done`. What [`Shared::start`] is set to.
pub(super) fn start(
    shared: &Arc<Shared>,
    work: Work,
    permit: OwnedSemaphorePermit,
    done: &mpsc::Sender<Completion>,
) {
    match work {
        Work::Segment(s) => shared
            .tasks
            .spawn(segment(shared.clone(), s, permit, done.clone())),
        Work::Step(s) => shared
            .tasks
            .spawn(step(shared.clone(), s, permit, done.clone())),
    };
}

/// Runs a claimed segment and hands a success to the completer (which records it in a
/// batch) or records the failure itself.
async fn segment(
    shared: Arc<Shared>,
    segment: ClaimedSegment,
    permit: OwnedSemaphorePermit,
    done: mpsc::Sender<Completion>,
) {
    let key = Key::segment(&segment);
    let slot = Slot::new(&shared, permit, key);
    let span = tracing::info_span!(
        "segment",
        otel.name = "segment",
        job.id = %segment.job_id,
        segment.index = segment.index,
        attempt = segment.attempt,
        trace_id = tracing::field::Empty,
    );
    crate::telemetry::follow(&span, segment.traceparent.as_deref(), segment.attempt);
    async {
        let entry = slot.entry();
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
                    entry,
                )
                .await
            }
        };
        match outcome {
            Ok(value) if entry.reason().is_none_or(|r| r == StopReason::JobStopping) => {
                tracing::debug!("segment done");
                let completion = Completion::Segment {
                    key,
                    job_id: segment.job_id,
                    value,
                };
                slot.complete(completion, &done).await;
            }
            Ok(_) => {
                tracing::info!("result dropped: the lease was lost or the worker is shutting down")
            }
            Err(error) => {
                if let Some(failure) = failure_of(&shared, error, entry, segment.attempt, timeout) {
                    let outcome = persist(&shared, "a segment failure", || async {
                        let mut client = shared.pool.get().await?;
                        complete::segment_failed(&mut client, &segment, &failure).await
                    })
                    .await;
                    log_failure(outcome, &failure);
                }
            }
        }
    }
    .instrument(span)
    .await
}

/// Runs a claimed plan or finalize step and hands a success to the completer or records
/// the failure itself.
async fn step(
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
    let slot = Slot::new(&shared, permit, key);
    let span = tracing::info_span!(
        "step",
        otel.name = step.step.as_str(),
        job.id = %step.job.id,
        step = step.step.as_str(),
        attempt = step.attempt,
        trace_id = tracing::field::Empty,
    );
    crate::telemetry::follow(&span, step.job.traceparent.as_deref(), step.attempt);
    async {
        let entry = slot.entry();
        let handler = shared.registry.get(&step.job.job_type);
        let timeout = timeout_of(&shared, handler.as_ref());
        let worker_id = shared.worker_id();
        let Some(handler) = handler else {
            let failure = Failure::Fatal {
                error: format!(
                    "unknown job type `{}`: no handler is registered for it",
                    step.job.job_type
                ),
            };
            let outcome = persist(&shared, "an unknown job type", || async {
                let mut client = shared.pool.get().await?;
                complete::step_failed(&mut client, worker_id, &step, &failure).await
            })
            .await;
            log_failure(outcome, &failure);
            return;
        };
        let ctx = StepContext {
            job: step.job.clone(),
            attempt: step.attempt,
            worker_id: worker_id.to_string(),
            pool: shared.pool.clone(),
            cancel: entry.cancel.clone(),
            ran: None,
        };
        // Ok(None): the attempt was dealt with already (a job run whole that ended early).
        let outcome = match step.step {
            Step::Plan => {
                let h = handler.clone();
                match supervise(async move { h.plan(&ctx).await }, timeout, entry).await {
                    Ok(plan) if whole::applies(&shared, handler.as_ref(), &plan, entry) => {
                        Ok(whole::run(&shared, &handler, &step, key, plan, entry, timeout).await)
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
                supervise(async move { h.finalize(&ctx).await }, timeout, entry)
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
                slot.complete(completion, &done).await;
                return;
            }
            Ok(_) => Some(HandlerError::Cancelled),
            Err(e) => Some(e),
        };
        if let Some(error) = error
            && let Some(failure) = failure_of(&shared, error, entry, step.attempt, timeout)
        {
            let outcome = persist(&shared, "a step failure", || async {
                let mut client = shared.pool.get().await?;
                complete::step_failed(&mut client, worker_id, &step, &failure).await
            })
            .await;
            log_failure(outcome, &failure);
        }
    }
    .instrument(span)
    .await
}
