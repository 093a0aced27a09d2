//! The claimer: claims job-level steps and segments while the worker has free slots and
//! there is work, starts each on the executor, and keeps segments claimed ahead of free
//! slots (prefetched) fed to slots as they free up.
//!
//! Claims are sized to free slots plus what the worker starts in `prefetch_ms`, at most
//! `claim_batch` rows per statement, and wait a moment for half a batch of slots rather
//! than claim row by row; while claims come back full, a second runs beside the first.
//! Plans and finalizes are looked for when woken, after claiming some, or every
//! [`STEPS_EVERY`] while segments keep the worker busy.

use super::executor;
use super::inflight::Key;
use super::metrics;
use super::shared::{Completion, Shared, Work};
use crate::error::Result;
use crate::queue::claim;
use futures_util::FutureExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Claims while there are free slots and work, then waits for a wake-up, a poll tick, or a
/// slot coming back. While claims come back full, another one starts beside the one in
/// flight as soon as enough slots are free (up to [`CLAIMS_IN_FLIGHT`]): one claim at a time
/// left the worker's slots, and the machine's CPU, idle for the length of a round trip.
pub(super) async fn claim_loop(
    shared: &Arc<Shared>,
    done_tx: &mpsc::Sender<Completion>,
    shutdown: &CancellationToken,
) {
    let poll = Duration::from_millis(shared.config.worker.poll_interval_ms);
    let batch = shared.config.worker.claim_batch as usize;
    // A claim of a few rows costs nearly as much as one of many: when busy, wait a moment
    // for this many slots rather than claim row by row as handlers finish. (Waiting for
    // half of slots plus prefetch instead made claims of 165 rows rather than 94 and cost
    // a tenth less database CPU per segment on small tables, but with 1,000 jobs queued
    // among 6,000,000 rows each claim walks a job per row and takes long, and the worker
    // waiting for such claims completed 10 % fewer segments per second.)
    let worth_claiming = (batch.min(shared.config.worker.concurrency as usize) / 2).max(1);
    // Free slots, and room for prefetched segments.
    let capacity = || shared.slots.available_permits() + shared.prefetch.room();
    let mut failures = 0u32;
    // Plans and finalizes become ready rarely compared with segments: look for them when
    // woken, after claiming some, or at least every STEPS_EVERY while segments keep the
    // worker busy.
    let mut steps = StepsDue {
        hint: true,
        checked: tokio::time::Instant::now(),
    };
    // The last claim to come back took all it asked for: there is probably more.
    let mut more = false;
    let mut claims = tokio::task::JoinSet::new();
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        if claims.is_empty() {
            if capacity() == 0 {
                tokio::select! {
                    _ = shared.slot_freed.notified() => {}
                    _ = shutdown.cancelled() => break,
                }
                continue;
            }
            let deadline = tokio::time::Instant::now() + CLAIM_COOLDOWN;
            while capacity() < worth_claiming && tokio::time::Instant::now() < deadline {
                tokio::select! {
                    _ = shared.slot_freed.notified() => {}
                    _ = tokio::time::sleep_until(deadline) => {}
                    _ = shutdown.cancelled() => break,
                }
            }
            if shutdown.is_cancelled() {
                break;
            }
            start_claim(shared, &mut claims, done_tx, batch, &mut steps);
        } else if more && claims.len() < CLAIMS_IN_FLIGHT && capacity() >= worth_claiming {
            start_claim(shared, &mut claims, done_tx, batch, &mut steps);
            continue;
        }
        // Wait for a claim to come back or, while another may start, for slots.
        let may_start = more && claims.len() < CLAIMS_IN_FLIGHT;
        let done = tokio::select! {
            done = claims.join_next() => done,
            _ = shared.slot_freed.notified(), if may_start => continue,
            _ = shutdown.cancelled() => break,
        };
        let Some(done) = done else {
            // Nothing was in flight: the slots were taken meanwhile.
            continue;
        };
        let claimed = done.unwrap_or_else(|e| Claimed {
            asked: 0,
            steps: false,
            outcome: Err(crate::error::Error::Invalid(format!(
                "claim task failed: {e}"
            ))),
        });
        match claimed.outcome {
            Ok((n, step_count)) => {
                failures = 0;
                if claimed.steps && step_count > 0 {
                    steps.hint = true;
                }
                // A claim that waited for a slot for steps may bring one more than asked.
                more = n >= claimed.asked;
                // A claim that brought fewer rows than asked but some is no sign that the
                // queue is empty: each job gives at most its share of a claim, so the last
                // jobs of a batch, one nearly done beside one with thousands pending, fill
                // only part of it. Waiting for a wake-up or the poll tick then left the
                // worker's slots idle for up to poll_interval_ms with work in the table
                // (the last tenth of 100,000 segments took 0.25 to 0.7 s instead of a
                // steady 0.25 s). Claim again; an empty claim is what ends the round.
                if more || n > 0 || !claims.is_empty() {
                    continue;
                }
            }
            Err(e) => {
                more = false;
                failures += 1;
                let wait = Duration::from_millis(100 * 2u64.pow(failures.min(6)));
                tracing::warn!(error = %e, retry_in = ?wait, "claim failed");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.cancelled() => break,
                }
                continue;
            }
        }
        if !claimed.steps {
            // Segments ran out; steps were not looked at this round.
            steps.hint = true;
            continue;
        }
        tokio::select! {
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep(poll) => {}
            _ = shutdown.cancelled() => break,
        }
        steps.hint = true;
    }
    // What the claims in flight bring is started or prefetched before the worker gives its
    // prefetched segments back.
    while claims.join_next().await.is_some() {}
}

/// How long a busy worker waits for enough free slots to make a claim worth its cost.
const CLAIM_COOLDOWN: Duration = Duration::from_millis(2);
/// How often a worker kept busy by segments still looks for plan and finalize steps.
const STEPS_EVERY: Duration = Duration::from_millis(50);
/// Claim statements of one worker running at once. Two keep a busy worker's slots fed
/// while one claim is on its way; more only wait for each other on the database's CPU.
const CLAIMS_IN_FLIGHT: usize = 2;

/// Whether the next claim also looks for job-level steps.
struct StepsDue {
    /// Woken, or the last look found some.
    hint: bool,
    checked: tokio::time::Instant,
}

/// What a claim asked for and brought.
struct Claimed {
    asked: usize,
    steps: bool,
    outcome: Result<(usize, usize)>,
}

/// Starts a claim of as many rows as there are free slots and prefetch room, taking both
/// before it runs so the next claim sees only what is left.
fn start_claim(
    shared: &Arc<Shared>,
    claims: &mut tokio::task::JoinSet<Claimed>,
    done_tx: &mpsc::Sender<Completion>,
    batch: usize,
    steps: &mut StepsDue,
) {
    if shared.wake.notified().now_or_never().is_some() {
        steps.hint = true;
    }
    let free = shared.slots.available_permits().min(batch);
    let Ok(permits) = shared.slots.clone().try_acquire_many_owned(free as u32) else {
        // A prefetched segment took a slot meanwhile; the loop looks again.
        return;
    };
    let ahead = shared.prefetch.room().min(batch - free);
    if free + ahead == 0 {
        return;
    }
    let claim_steps = steps.hint || steps.checked.elapsed() >= STEPS_EVERY;
    if claim_steps {
        // Consumed now even if the claim finds no slot for steps in time: the next look
        // comes STEPS_EVERY later at the latest.
        steps.hint = false;
        steps.checked = tokio::time::Instant::now();
    }
    shared.prefetch.reserve(ahead);
    let (shared, done_tx) = (shared.clone(), done_tx.clone());
    claims.spawn(async move {
        let outcome = claim_once(&shared, &done_tx, permits, ahead, claim_steps).await;
        shared.prefetch.unreserve(ahead);
        Claimed {
            asked: free + ahead,
            steps: claim_steps,
            outcome,
        }
    });
}

/// One claim round: job-level steps first (a plan creates segments, a finalize completes a
/// job), then segments with the slots left (`permits`), and `ahead` more to prefetch.
/// Returns how many rows were claimed in all and how many of them were steps.
async fn claim_once(
    shared: &Arc<Shared>,
    done_tx: &mpsc::Sender<Completion>,
    mut permits: tokio::sync::OwnedSemaphorePermit,
    ahead: usize,
    claim_steps: bool,
) -> Result<(usize, usize)> {
    if claim_steps && permits.num_permits() == 0 {
        // Every slot is busy and the prefetched segments take each one as it frees, so a
        // step claimed only with free slots would wait until the prefetch queue runs dry:
        // a small job's plan or finalize behind all of a huge job. Wait (a little) for the
        // next slot instead; unused, it goes back with `permits`.
        if let Ok(Ok(slot)) =
            tokio::time::timeout(STEPS_EVERY, shared.slots.clone().acquire_owned()).await
        {
            permits.merge(slot);
        }
    }
    let free = permits.num_permits();
    let mut client = shared.lease_pool.get().await?;
    let steps = if claim_steps && free > 0 {
        let started = std::time::Instant::now();
        let steps = claim::steps(&client, &shared.claim, free as i64)
            .instrument(tracing::info_span!(
                "claim",
                otel.name = "claim steps",
                wanted = free
            ))
            .await?;
        metrics::claim("steps", free, steps.len(), started.elapsed());
        steps
    } else {
        Vec::new()
    };
    shared.events.publish(steps.iter().map(|s| s.job.id));
    let step_count = steps.len();
    let mut claimed = steps.len();
    for step in steps {
        let permit = permits.split(1).expect("a permit per claimed row");
        executor::start(shared, Work::Step(step), permit, done_tx);
    }
    let left = free - claimed;
    if left + ahead > 0 {
        let started = std::time::Instant::now();
        let mut segments = claim::segments(&mut client, &shared.claim, (left + ahead) as i64)
            .instrument(tracing::info_span!(
                "claim",
                otel.name = "claim segments",
                wanted = left + ahead
            ))
            .await?;
        metrics::claim("segments", left + ahead, segments.len(), started.elapsed());
        claimed += segments.len();
        // The first ones take the free slots, the others wait for theirs, already in
        // flight so the heartbeat renews their leases.
        let later = segments.split_off(left.min(segments.len()));
        shared.prefetch.started(segments.len());
        for segment in segments {
            let permit = permits.split(1).expect("a permit per claimed row");
            executor::start(shared, Work::Segment(segment), permit, done_tx);
        }
        for segment in &later {
            shared.inflight.insert(Key::segment(segment));
        }
        shared.prefetch.push(later);
    }
    // Unused permits go back with `permits`: the claim came back short, so the loop looks
    // at its result before it claims again.
    drop(permits);
    Ok((claimed, step_count))
}

/// Starts prefetched segments as slots free up, oldest first.
pub(super) async fn feed_prefetched(
    shared: Arc<Shared>,
    done_tx: mpsc::Sender<Completion>,
    shutdown: CancellationToken,
) {
    loop {
        while shared.prefetch.len() == 0 {
            tokio::select! {
                _ = shared.prefetch.added.notified() => {}
                _ = shutdown.cancelled() => return,
            }
        }
        let permit = tokio::select! {
            permit = shared.slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            _ = shutdown.cancelled() => return,
        };
        match shared.prefetch.pop() {
            Some(segment) => {
                shared.prefetch.started(1);
                executor::start(&shared, Work::Segment(segment), permit, &done_tx);
            }
            None => {
                // Given back meanwhile: the slot is free again.
                drop(permit);
                shared.slot_freed.notify_one();
            }
        }
    }
}
