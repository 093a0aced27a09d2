//! The webhook delivery loop, beside the job roles and sharing nothing with them but the
//! pool: claims due deliveries (`crate::webhooks::deliveries`) up to
//! `webhooks.concurrency` in flight, attempts each on a task of its own, records the
//! outcome, and prunes the history now and then.
//!
//! A delivery is leased for `webhooks.lease_seconds`, longer than an attempt may take. A
//! worker killed mid-delivery records nothing: the lease ends and any worker attempts the
//! delivery again, with the same `webhook-id`. At shutdown the loop stops claiming and
//! waits for the attempts in flight, each bounded by `webhooks.timeout_seconds`.

use super::metrics;
use super::shared::Shared;
use crate::webhooks::deliveries::{self, Claimed};
use crate::webhooks::send::{Outcome, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// How often the loop deletes old history, and how much at a time.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
const PRUNE_BATCH: i64 = 1000;

/// Delivers webhooks until `stop` is cancelled, then waits for the attempts in flight.
pub(super) async fn delivery_loop(shared: Arc<Shared>, stop: CancellationToken) {
    let config = shared.config.webhooks.clone();
    if config.concurrency == 0 {
        return;
    }
    let sender = match Sender::new(&config) {
        Ok(sender) => Arc::new(sender),
        Err(e) => {
            tracing::error!(error = %e, "webhooks are not delivered by this worker");
            return;
        }
    };
    let slots = Arc::new(Semaphore::new(config.concurrency as usize));
    let attempts = TaskTracker::new();
    let lease = Duration::from_secs(config.lease_seconds);
    let poll = Duration::from_millis(config.poll_interval_ms);
    let mut pruned_at: Option<Instant> = None;
    while !stop.is_cancelled() {
        let free = slots.available_permits();
        let mut claimed = 0;
        if free > 0 {
            let rows = async {
                let client = shared.pool.get().await?;
                deliveries::claim(&client, shared.worker_id(), free as i64, lease).await
            }
            .await;
            match rows {
                Ok(rows) => {
                    claimed = rows.len();
                    for delivery in rows {
                        let permit = slots
                            .clone()
                            .try_acquire_owned()
                            .expect("claimed no more than the free slots");
                        let (shared, sender) = (shared.clone(), sender.clone());
                        attempts.spawn(attempt(shared, sender, delivery, permit));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "claiming webhook deliveries failed"),
            }
        }
        if pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            pruned_at = Some(Instant::now());
            prune(&shared).await;
        }
        if claimed > 0 && claimed == free {
            // Every slot taken: more may be due, so claim again as soon as one frees.
            tokio::select! {
                permit = slots.acquire() => drop(permit),
                _ = stop.cancelled() => break,
            }
        } else {
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = stop.cancelled() => break,
            }
        }
    }
    attempts.close();
    attempts.wait().await;
}

/// One attempt of `delivery`, and its outcome recorded.
async fn attempt(
    shared: Arc<Shared>,
    sender: Arc<Sender>,
    delivery: Claimed,
    _permit: OwnedSemaphorePermit,
) {
    let span = tracing::info_span!(
        "webhook",
        delivery.id = %delivery.id,
        job.id = %delivery.job_id,
        endpoint.id = %delivery.endpoint_id,
        event = %delivery.event,
        attempt = delivery.attempt,
    );
    async {
        let started = Instant::now();
        let outcome = sender.send(&delivery).await;
        let took = started.elapsed();
        let config = &shared.config.webhooks;
        let recorded = async {
            let client = shared.pool.get().await?;
            match &outcome {
                Outcome::Accepted(status) => {
                    deliveries::delivered(&client, delivery.id, delivery.attempt, (*status).into())
                        .await
                        .map(|won| won.then(|| "delivered".to_string()))
                }
                Outcome::Failed { status, error } => {
                    let status = status.map(i32::from);
                    deliveries::failed(
                        &client,
                        config,
                        delivery.id,
                        delivery.attempt,
                        status,
                        error,
                    )
                    .await
                }
            }
        }
        .await;
        let kind = match (&outcome, recorded) {
            (_, Ok(None)) => {
                tracing::info!("webhook attempt outlived its lease: another worker has it");
                "lease_lost"
            }
            (Outcome::Accepted(status), Ok(Some(_))) => {
                tracing::debug!(status, "webhook delivered");
                "delivered"
            }
            (Outcome::Failed { status, error }, Ok(Some(now))) if now == "failed" => {
                tracing::warn!(?status, error, "webhook given up: out of retry time");
                "given_up"
            }
            (Outcome::Failed { status, error }, Ok(Some(_))) => {
                tracing::info!(?status, error, "webhook attempt failed; it will be retried");
                "retrying"
            }
            (_, Err(e)) => {
                tracing::warn!(
                    error = %e,
                    "could not record a webhook attempt; it is attempted again when its lease ends"
                );
                "unrecorded"
            }
        };
        metrics::webhook_attempt(kind, took);
    }
    .instrument(span)
    .await
}

/// Deletes the history older than `webhooks.history_seconds`, a batch at a time.
async fn prune(shared: &Shared) {
    let pruned = async {
        let client = shared.pool.get().await?;
        let mut total = 0;
        loop {
            let n = deliveries::prune(&client, &shared.config.webhooks, PRUNE_BATCH).await?;
            total += n;
            if n < PRUNE_BATCH {
                return Ok::<_, crate::Error>(total);
            }
        }
    }
    .await;
    match pruned {
        Ok(0) => {}
        Ok(n) => tracing::debug!(deliveries = n, "pruned webhook history"),
        Err(e) => tracing::warn!(error = %e, "pruning webhook history failed"),
    }
}
