//! One attempt of a handler, whatever it runs (a plan, a segment, a finalize, a job run
//! whole): supervised under its timeout and cancellation with its panics caught, and what
//! its failure means for the queue.

use super::handler::{Handler, HandlerError};
use super::inflight::{Entry, StopReason};
use super::shared::Shared;
use crate::queue::complete::{Failure, FailureOutcome};
use futures_util::FutureExt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Runs `work` until it ends, panics, times out or is told to stop and ignores it. The
/// handler runs within this task (a task of its own per attempt cost measurably at tens of
/// thousands of segments a second); a panic is caught all the same, and a handler that
/// outlives its timeout is dropped, which stops it at its next await.
pub(super) async fn supervise<T>(
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
pub(super) fn failure_of(
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

/// How long one attempt of `handler` may take.
pub(super) fn timeout_of(shared: &Shared, handler: Option<&Arc<dyn Handler>>) -> Duration {
    handler
        .and_then(|h| h.timeout())
        .unwrap_or(Duration::from_secs(
            shared.config.worker.handler_timeout_seconds,
        ))
}

/// Logs what recording a failed attempt did.
pub(super) fn log_failure(outcome: Option<FailureOutcome>, failure: &Failure) {
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
