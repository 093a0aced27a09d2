//! Maintenance, each on a task of its own: the heartbeat (renews every lease the worker
//! holds and tells attempts to stop when their job is stopping or their lease was lost),
//! the rescuer (takes back anyone's expired leases), the pruner (deletes the segment rows
//! of jobs completed long enough ago), and a check at start-up that the queue's tables are
//! vacuumed.

use super::inflight::StopReason;
use super::metrics;
use super::shared::{Shared, give_back};
use crate::queue::{heartbeat, rescue};
use rand::RngExt;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Renews every lease the worker holds, every `heartbeat_seconds`, and tells attempts to
/// stop when their job is stopping or their lease was lost.
pub(super) async fn heartbeat_loop(shared: Arc<Shared>, stop: CancellationToken) {
    let every = Duration::from_secs(shared.config.worker.heartbeat_seconds);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.cancelled() => return,
        }
        // Prefetched segments still waiting after a whole interval are not worth holding.
        give_back(
            &shared,
            shared.prefetch.take_older_than(every),
            "not started in time",
        )
        .await;
        let entries = shared.inflight.entries();
        if entries.is_empty() {
            continue;
        }
        let segments: Vec<(uuid::Uuid, i32)> = entries
            .iter()
            .filter(|(k, _)| !k.is_step())
            .map(|(k, _)| (k.id, k.attempt))
            .collect();
        let steps: Vec<(uuid::Uuid, i32)> = entries
            .iter()
            .filter(|(k, _)| k.is_step())
            .map(|(k, _)| (k.id, k.attempt))
            .collect();
        let started = std::time::Instant::now();
        let renewed = async {
            let client = shared.lease_pool.get().await?;
            heartbeat::renew(
                &client,
                shared.worker_id(),
                shared.lease(),
                &segments,
                &steps,
            )
            .await
        }
        .await;
        match renewed {
            Ok(renewed) => {
                let mut lost = 0;
                for (key, entry) in &entries {
                    match renewed
                        .iter()
                        .find(|r| r.id == key.id && r.is_step == key.is_step())
                    {
                        Some(r) if r.stop => entry.stop(StopReason::JobStopping),
                        Some(_) => {}
                        // Recorded meanwhile, or really lost: either way it is not ours.
                        None if entry.is_completing() => {}
                        None => {
                            lost += 1;
                            entry.stop(StopReason::LeaseLost)
                        }
                    }
                }
                metrics::heartbeat(entries.len(), lost, started.elapsed(), true);
            }
            Err(e) => {
                metrics::heartbeat(entries.len(), 0, started.elapsed(), false);
                tracing::warn!(error = %e, "heartbeat failed; leases not renewed")
            }
        }
    }
}

/// Sleeps `seconds` give or take a quarter, so a fleet started together does not run its
/// periodic statements in lockstep. False when `stop` was cancelled meanwhile.
async fn sleep_jittered(seconds: f64, stop: &CancellationToken) -> bool {
    let wait = Duration::from_secs_f64(seconds * rand::rng().random_range(0.75..=1.25));
    tokio::select! {
        _ = tokio::time::sleep(wait) => true,
        _ = stop.cancelled() => false,
    }
}

/// Takes back expired leases every `rescue_interval_seconds` (with jitter, so a fleet
/// started together does not rescue in lockstep).
pub(super) async fn rescue_loop(shared: Arc<Shared>, stop: CancellationToken) {
    let every = shared.config.worker.rescue_interval_seconds as f64;
    while sleep_jittered(every, &stop).await {
        let outcome = async {
            let mut client = shared.pool.get().await?;
            rescue::run(&mut client, 1000).await
        }
        .await;
        match outcome {
            Ok(r) if r.any() => {
                tracing::info!(
                    segments_requeued = r.segments_requeued,
                    segments_failed = r.segments_failed,
                    steps_requeued = r.steps_requeued,
                    jobs_failed = r.jobs_failed,
                    "rescued expired leases"
                );
                shared.wake.notify_one();
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "rescue failed"),
        }
    }
}

/// Deletes the segment rows of jobs completed longer than `segment_retention_seconds` ago.
/// A full batch is followed at once by the next, so pruning keeps pace with completions
/// however fast they come (a fixed number of batches per pass fell behind at 800 jobs/s
/// and let job_segments grow without bound); once caught up, it waits
/// `rescue_interval_seconds` (with jitter) before looking again.
pub(super) async fn prune_loop(shared: Arc<Shared>, stop: CancellationToken) {
    let retention = shared.config.worker.segment_retention_seconds;
    if retention == 0 {
        return;
    }
    const JOBS_PER_BATCH: i64 = 100;
    let every = shared.config.worker.rescue_interval_seconds as f64;
    while sleep_jittered(every, &stop).await {
        while !stop.is_cancelled() {
            let pruned = async {
                let client = shared.pool.get().await?;
                rescue::prune(&client, Duration::from_secs(retention), JOBS_PER_BATCH).await
            }
            .await;
            match pruned {
                Ok((jobs, rows)) => {
                    if jobs > 0 {
                        tracing::debug!(jobs, rows, "pruned finished segments");
                    }
                    if jobs < JOBS_PER_BATCH {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "pruning finished segments failed");
                    break;
                }
            }
        }
    }
}

/// Says at start-up, once, what would keep the queue's tables from being vacuumed: the
/// worker runs all the same, but its claims slow down as dead rows pile up. A task of its
/// own, so a slow or unreachable server delays no claim.
pub(super) async fn warn_of_vacuum_problems(shared: Arc<Shared>) {
    let problems = async {
        let client = shared.pool.get().await?;
        crate::queue::admin::vacuum_problems(&client).await
    }
    .await;
    match problems {
        Ok(problems) => {
            for problem in problems {
                tracing::warn!(
                    problem,
                    "dead rows of the queue tables will pile up and claims slow down"
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not check the autovacuum settings"),
    }
}
