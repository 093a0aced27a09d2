//! The completer: records successful attempts in batches, one statement per kind
//! (segments, plans, finished jobs) per batch, and gives their leases up. A completion
//! statement may lease the work it makes ready (a plan's segments, a job's finalize) to
//! this worker on the spot when it has free slots; that work starts through
//! [`Shared::start`].

use super::metrics;
use super::shared::{Completion, Shared, Work, persist, settle};
use crate::job::{ClaimedSegment, ClaimedStep};
use crate::queue::complete;
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tracing::Instrument;
use uuid::Uuid;

/// How long the completer waits for more outcomes before writing a batch.
const FLUSH_AFTER: Duration = Duration::from_millis(2);

/// Records successful attempts in batches, flushed by count (`worker.claim_batch`) or
/// after [`FLUSH_AFTER`], whichever comes first. Each kind (segments, plans, finalizes)
/// has one writer: batches of one kind are written one after another, because two
/// segment batches written at once would mostly wait for each other on the same job rows
/// (each completion adds to its job's counter), and each kind's next batch grows while the
/// previous one commits.
pub(super) async fn completer(shared: Arc<Shared>, mut rx: mpsc::Receiver<Completion>) {
    let capacity = 4 * shared.config.worker.concurrency as usize;
    let (segments_tx, segments_rx) = mpsc::channel(capacity);
    let (plans_tx, plans_rx) = mpsc::channel(capacity);
    let (finals_tx, finals_rx) = mpsc::channel(capacity);
    let writers = [
        tokio::spawn(write_batches(shared.clone(), segments_rx)),
        tokio::spawn(write_batches(shared.clone(), plans_rx)),
        tokio::spawn(write_batches(shared.clone(), finals_rx)),
    ];
    while let Some(c) = rx.recv().await {
        let to = match c {
            Completion::Segment { .. } => &segments_tx,
            Completion::Plan { .. } => &plans_tx,
            Completion::Finalize { .. } | Completion::Whole { .. } => &finals_tx,
        };
        if to.send(c).await.is_err() {
            break;
        }
    }
    drop((segments_tx, plans_tx, finals_tx));
    for w in writers {
        let _ = w.await;
    }
}

/// One kind's writer: gathers a batch, writes it, and gives the attempts' leases up.
async fn write_batches(shared: Arc<Shared>, mut rx: mpsc::Receiver<Completion>) {
    let max = shared.config.worker.claim_batch as usize;
    while let Some(first) = rx.recv().await {
        // Each statement costs a commit (a WAL flush): gather what arrives within
        // FLUSH_AFTER, up to a batch, rather than write a handful of rows each time.
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + FLUSH_AFTER;
        while batch.len() < max {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(more)) => batch.push(more),
                _ => break,
            }
        }
        let started = std::time::Instant::now();
        let lost = flush(&shared, &batch).await;
        metrics::write(batch[0].kind(), batch.len(), lost, started.elapsed());
        for c in &batch {
            shared.inflight.remove(&c.key());
        }
    }
}

/// Writes one batch, retrying until it is written or the leases would have expired (the
/// rescuer then gives the rows to another attempt). Returns how many outcomes were not
/// recorded.
async fn flush(shared: &Arc<Shared>, batch: &[Completion]) -> usize {
    let mut segments = Vec::new();
    let mut plans = Vec::new();
    let mut finals = Vec::new();
    for c in batch {
        match c {
            Completion::Segment { key, value, .. } => {
                segments.push((key.id, key.attempt, value.clone()))
            }
            Completion::Plan { step, plan, .. } => plans.push(complete::PlanRecord {
                step,
                segments: &plan.segments,
                data: &plan.data,
            }),
            Completion::Finalize { step, output, .. } => finals.push(complete::JobDone {
                step,
                output: output.as_ref(),
                whole: None,
            }),
            Completion::Whole {
                step,
                plan,
                segment,
                result,
                output,
                ..
            } => finals.push(complete::JobDone {
                step,
                output: output.as_ref(),
                whole: Some(complete::Whole {
                    plan: &plan.data,
                    segment: *segment,
                    planned: &plan.segments[0],
                    result,
                }),
            }),
        }
    }
    let worker_id = shared.worker_id();
    // Each kind is retried on its own, so a batch half written is not written twice.
    let mut recorded = std::collections::HashSet::new();
    let mut wake = false;
    if !segments.is_empty() {
        // Free slots let this statement lease the finalize steps it makes ready.
        let mut jobs: Vec<Uuid> = Vec::new();
        for c in batch {
            if !jobs.contains(&c.job_id()) {
                jobs.push(c.job_id());
            }
        }
        let slots = take_slots(shared, jobs.len());
        let eligible = &jobs[..slots.as_ref().map_or(0, |s| s.num_permits())];
        let lease = complete::Lease {
            worker_id,
            duration: shared.lease(),
            jobs: eligible,
            segments: 0,
        };
        let done = persist(shared, "segment results", || async {
            let client = shared.lease_pool.get().await?;
            complete::segments(&client, &segments, Some(lease))
                .instrument(tracing::info_span!(
                    "complete",
                    otel.name = "complete segments",
                    rows = segments.len()
                ))
                .await
        })
        .await;
        if let Some(done) = done {
            // Their progress moved (or nothing did, for those whose lease was lost).
            shared.events.publish(jobs.iter().copied());
            wake |= done.finalize_ready;
            recorded.extend(done.recorded);
            settle(shared, done.stopping).await;
            run_leased(shared, slots, done.leased, Vec::new());
        }
    }
    if !plans.is_empty() {
        // Whole plans, at most PLAN_ROWS segments per statement (a larger plan alone), up
        // to PLAN_STATEMENTS statements at once: a batch of large plans is thousands of
        // inserted rows, and written as one statement it kept one core busy for seconds
        // while no segment of it was claimable; written in parts, the first part's
        // segments run while the rest is inserted.
        let mut parts = Vec::new();
        let (mut start, mut rows) = (0, 0);
        for (i, p) in plans.iter().enumerate() {
            if i > start && rows + p.segments.len() > PLAN_ROWS {
                parts.push(&plans[start..i]);
                (start, rows) = (i, 0);
            }
            rows += p.segments.len();
        }
        parts.push(&plans[start..]);
        let mut parts = parts.into_iter();
        let mut writing = futures_util::stream::FuturesUnordered::new();
        for part in parts.by_ref().take(PLAN_STATEMENTS) {
            writing.push(record_plans(shared, part));
        }
        while let Some(jobs) = writing.next().await {
            recorded.extend(jobs);
            if let Some(part) = parts.next() {
                writing.push(record_plans(shared, part));
            }
        }
    }
    if !finals.is_empty() {
        let done = persist(shared, "completed jobs", || async {
            let client = shared.jobs_pool.get().await?;
            complete::jobs_done(&client, worker_id, &finals)
                .instrument(tracing::info_span!(
                    "complete",
                    otel.name = "complete jobs",
                    rows = finals.len()
                ))
                .await
        })
        .await
        .unwrap_or_default();
        shared.events.publish(done.iter().copied());
        for f in finals.iter().filter(|f| done.contains(&f.step.job.id)) {
            if let Some(handler) = shared.registry.get(&f.step.job.job_type) {
                let job = f.step.job.clone();
                tokio::spawn(async move { handler.completed(&job).await });
            }
        }
        recorded.extend(done);
    }
    let mut lost = 0;
    for c in batch {
        if !recorded.contains(&c.key().id) {
            lost += 1;
            tracing::warn!(job.id = %c.job_id(), id = %c.key().id, attempt = c.key().attempt,
                "outcome not recorded: the lease was lost, or the database stayed unreachable");
        }
    }
    if wake {
        shared.wake.notify_one();
    }
    lost
}

/// The most segments one statement recording plans inserts, unless one plan has more.
const PLAN_ROWS: usize = 5_000;
/// How many statements recording plans a worker runs at once.
const PLAN_STATEMENTS: usize = 2;

/// Records `plans` in one statement, leasing to this worker as many of their segments as it
/// has free slots for, and wakes the claimer for the rest. Returns the jobs recorded.
async fn record_plans(shared: &Arc<Shared>, plans: &[complete::PlanRecord<'_>]) -> Vec<Uuid> {
    let worker_id = shared.worker_id();
    let planned: usize = plans.iter().map(|p| p.segments.len()).sum();
    let slots = take_slots(shared, planned);
    let lease = complete::Lease {
        worker_id,
        duration: shared.lease(),
        jobs: &[],
        segments: slots.as_ref().map_or(0, |s| s.num_permits()),
    };
    let done = persist(shared, "plans", || async {
        let client = shared.lease_pool.get().await?;
        complete::plans_done(&client, worker_id, plans, Some(lease))
            .instrument(tracing::info_span!(
                "complete",
                otel.name = "complete plans",
                rows = plans.len()
            ))
            .await
    })
    .await;
    let Some(done) = done else {
        return Vec::new();
    };
    if !done.recorded.is_empty() {
        shared.wake.notify_one();
    }
    shared.events.publish(done.recorded.iter().copied());
    settle(shared, done.cancelling).await;
    run_leased(shared, slots, Vec::new(), done.leased);
    done.recorded.into_iter().collect()
}

/// Up to `want` free slots, for work a completion statement leases on the spot; none while
/// shutting down.
fn take_slots(shared: &Arc<Shared>, want: usize) -> Option<OwnedSemaphorePermit> {
    if !shared.is_claiming() {
        return None;
    }
    let n = shared.slots.available_permits().min(want);
    if n == 0 {
        return None;
    }
    shared.slots.clone().try_acquire_many_owned(n as u32).ok()
}

/// Runs what a completion statement leased to this worker, one slot each; the slots not
/// needed go back.
fn run_leased(
    shared: &Arc<Shared>,
    slots: Option<OwnedSemaphorePermit>,
    steps: Vec<ClaimedStep>,
    segments: Vec<ClaimedSegment>,
) {
    let Some(mut slots) = slots else { return };
    if let Some(done) = shared.done() {
        let steps = steps.into_iter().map(Work::Step);
        for work in steps.chain(segments.into_iter().map(Work::Segment)) {
            let permit = slots.split(1).expect("a slot per leased row");
            (shared.start)(shared, work, permit, &done);
        }
    }
    drop(slots);
    shared.slot_freed.notify_one();
}
