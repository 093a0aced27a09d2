//! What the worker's roles share, at the bottom of the worker: its state ([`Shared`]),
//! the outcomes the executor hands the completer ([`Completion`]), the slot an attempt
//! holds ([`Slot`]), and the writes several roles make (retried [`persist`], cancels
//! settled, prefetched segments given back).
//!
//! Every role imports this; this imports none of them. The one way down the trip
//! (claimer → executor → completer) that goes back up, the completer starting work a
//! completion statement leased on the spot, goes through [`Shared::start`], which the
//! lifecycle sets to the executor's entry point.

use super::handler::Plan;
use super::inflight::{Entry, InFlight, Key};
use super::prefetch::Prefetch;
use super::registry::Registry;
use crate::config::Config;
use crate::job::{ClaimedSegment, ClaimedStep, NewMedia};
use crate::queue::claim::ClaimOptions;
use crate::queue::complete;
use crate::queue::job_events::Publisher;
use deadpool_postgres::Pool;
use rand::RngExt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::task::TaskTracker;
use uuid::Uuid;

/// State shared by the worker's tasks.
pub(super) struct Shared {
    pub config: Arc<Config>,
    pub pool: Pool,
    /// For claims, heartbeats and the records of segments and plans: writes whose loss in
    /// a PostgreSQL crash only means that work runs again. With `worker.async_commit`
    /// they commit without waiting for the WAL flush; everything else waits: finished jobs
    /// go through `jobs_pool`, failures, refunds and cancels through `pool`.
    pub lease_pool: Pool,
    /// For the completer's records of finished jobs: durable like `pool`, and like
    /// `lease_pool` they leave the jobs' events to the worker, announced after commit.
    pub jobs_pool: Pool,
    pub registry: Registry,
    pub claim: ClaimOptions,
    pub inflight: InFlight,
    pub slots: Arc<Semaphore>,
    /// Segments claimed ahead of free slots, started as slots free up.
    pub prefetch: Prefetch,
    /// A permit came back.
    pub slot_freed: Notify,
    /// New work may be ready (NOTIFY, a local completion that made a finalize ready).
    pub wake: Arc<Notify>,
    /// The handler tasks.
    pub tasks: TaskTracker,
    /// Where handler tasks send their outcomes; taken at shutdown so the completer ends.
    pub done: std::sync::Mutex<Option<mpsc::Sender<Completion>>>,
    /// Cleared at shutdown: no more claims, and no more leases taken by the completer.
    pub claiming: AtomicBool,
    /// The jobs the lease pool's and `jobs_pool`'s statements changed, announced after
    /// they commit.
    pub events: Publisher,
    /// Starts leased work on a slot of its own, as a task of the worker's: the executor's
    /// entry point (`executor::start`), given by the lifecycle so the completer, which
    /// leases work on the spot, reaches it without importing what sits above it.
    pub start: Start,
}

/// See [`Shared::start`].
pub(super) type Start = fn(&Arc<Shared>, Work, OwnedSemaphorePermit, &mpsc::Sender<Completion>);

/// Work this worker holds a lease on.
pub(super) enum Work {
    Segment(ClaimedSegment),
    Step(ClaimedStep),
}

impl Shared {
    pub fn worker_id(&self) -> &str {
        &self.claim.worker_id
    }

    pub fn lease(&self) -> Duration {
        self.claim.lease
    }

    /// Whether the worker still claims (and leases work on the spot): false once it is
    /// shutting down.
    pub fn is_claiming(&self) -> bool {
        self.claiming.load(Ordering::SeqCst)
    }

    /// Retry delay after failed attempt `attempt`: exponential, capped, with jitter so
    /// segments that failed together do not retry together.
    pub fn backoff(&self, attempt: i32) -> Duration {
        let w = &self.config.worker;
        let exp = 2u64.saturating_pow(attempt.saturating_sub(1).clamp(0, 30) as u32);
        let ms = w.backoff_base_ms.saturating_mul(exp).min(w.backoff_max_ms) as f64;
        let jitter: f64 = rand::rng().random_range(0.5..=1.0);
        Duration::from_secs_f64(ms * jitter / 1000.0)
    }

    /// No more claims, and no more work leased on the spot: the worker is shutting down.
    pub fn stop_claiming(&self) {
        self.claiming.store(false, Ordering::SeqCst);
    }

    /// The sender of outcomes to the completer; `None` once the worker is shutting down.
    pub fn done(&self) -> Option<mpsc::Sender<Completion>> {
        self.done_sender().clone()
    }

    /// Sets (`Some`) or takes away (`None`, at shutdown, so the completer ends) the sender
    /// of outcomes that [`Shared::done`] hands out.
    pub fn set_done(&self, sender: Option<mpsc::Sender<Completion>>) {
        *self.done_sender() = sender;
    }

    fn done_sender(&self) -> std::sync::MutexGuard<'_, Option<mpsc::Sender<Completion>>> {
        self.done.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A slot of the worker's concurrency held by one attempt: its permit and its entry among
/// the attempts in flight (which the heartbeat renews). Dropped, it gives both back and
/// tells the claimer a slot is free; [`Slot::complete`] hands the attempt's result to the
/// completer instead, giving the permit back but leaving the entry, whose lease must be
/// renewed until the completer has recorded the result.
pub(super) struct Slot {
    shared: Arc<Shared>,
    permit: Option<OwnedSemaphorePermit>,
    key: Key,
    entry: Arc<Entry>,
    /// The completer has the result: it removes the entry.
    handed_over: bool,
}

impl Slot {
    /// Takes `permit` for the attempt `key`, entering it among the attempts in flight (or
    /// finding its entry there: a prefetched segment's is made when it is claimed).
    pub fn new(shared: &Arc<Shared>, permit: OwnedSemaphorePermit, key: Key) -> Slot {
        Slot {
            shared: shared.clone(),
            permit: Some(permit),
            entry: shared.inflight.insert(key),
            key,
            handed_over: false,
        }
    }

    /// The attempt's entry: its cancellation and why it was told to stop.
    pub fn entry(&self) -> &Entry {
        &self.entry
    }

    /// Hands `completion` to the completer and gives the slot back. The permit is held
    /// until the completer's queue takes it, so a completer that falls behind slows the
    /// claims down.
    pub async fn complete(mut self, completion: Completion, done: &mpsc::Sender<Completion>) {
        self.entry.set_completing();
        self.handed_over = done.send(completion).await.is_ok();
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if !self.handed_over {
            self.shared.inflight.remove(&self.key);
        }
        drop(self.permit.take());
        self.shared.slot_freed.notify_one();
    }
}

/// A successful attempt waiting for the completer.
pub(super) enum Completion {
    Segment {
        key: Key,
        job_id: Uuid,
        value: serde_json::Value,
    },
    Plan {
        key: Key,
        step: ClaimedStep,
        plan: Plan,
    },
    Finalize {
        key: Key,
        step: ClaimedStep,
        output: Option<NewMedia>,
    },
    /// A single-segment job run whole under its plan's lease: plan, segment and finalize.
    Whole {
        key: Key,
        step: ClaimedStep,
        plan: Plan,
        segment: Uuid,
        result: serde_json::Value,
        output: Option<NewMedia>,
    },
}

impl Completion {
    pub fn key(&self) -> Key {
        match self {
            Completion::Segment { key, .. }
            | Completion::Plan { key, .. }
            | Completion::Finalize { key, .. }
            | Completion::Whole { key, .. } => *key,
        }
    }

    /// Its writer, as the metrics name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Completion::Segment { .. } => "segments",
            Completion::Plan { .. } => "plans",
            Completion::Finalize { .. } | Completion::Whole { .. } => "jobs",
        }
    }

    pub fn job_id(&self) -> Uuid {
        match self {
            Completion::Segment { job_id, .. } => *job_id,
            Completion::Plan { step, .. }
            | Completion::Finalize { step, .. }
            | Completion::Whole { step, .. } => step.job.id,
        }
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

/// Ends the jobs among `jobs` being cancelled whose last running piece just finished, and
/// refunds them, durably.
pub(super) async fn settle(shared: &Shared, jobs: Vec<Uuid>) {
    if jobs.is_empty() {
        return;
    }
    persist(shared, "a cancel", || async {
        let mut client = shared.pool.get().await?;
        complete::settle_jobs(&mut client, &jobs).await
    })
    .await;
}

/// Gives prefetched segments back without burning an attempt (they never started), so
/// any worker can claim them at once; if that fails their leases expire and are rescued.
pub(super) async fn give_back(shared: &Shared, segments: Vec<ClaimedSegment>, why: &'static str) {
    if segments.is_empty() {
        return;
    }
    let keys: Vec<(Uuid, i32)> = segments.iter().map(|s| (s.id, s.attempt)).collect();
    let released = async {
        let client = shared.pool.get().await?;
        complete::release_segments(&client, &keys).await
    }
    .await;
    match released {
        Ok(n) => tracing::info!(released = n, why, "gave prefetched segments back"),
        Err(e) => {
            tracing::warn!(error = %e, why, "could not give prefetched segments back; their leases will expire and be rescued")
        }
    }
    for segment in &segments {
        shared.inflight.remove(&Key::segment(segment));
    }
}

/// The session settings of the claimer, the writers and the heartbeat (the lease pool),
/// and, without `async_commit`, of the writer of finished jobs.
///
/// Every statement on these sessions is written to reach its rows through an
/// index, in the index's order. Queue tables swing from empty to millions of rows
/// faster than their statistics follow, and a plan made while a table looked empty
/// stays cached in the prepared statement: a sequential scan per claimed job, or a
/// bitmap scan where the claim's walk takes one row per job with `ORDER BY … LIMIT
/// 1` (a bitmap scan reads every matching entry first: 300 ms per claim instead of
/// 2 ms, with 100,000 segments pending in a table last vacuumed empty). Ruling both
/// out keeps such plans from ever being chosen.
///
/// Their changes of jobs' status and progress are announced by the worker after they
/// commit, not by the trigger inside them ([`crate::queue::job_events::DEFERRED`]).
///
/// With `async_commit`, their commits do not wait for the WAL flush either (see
/// `worker.async_commit`).
pub fn lease_session_options(async_commit: bool) -> &'static str {
    static OPTIONS: std::sync::LazyLock<[String; 2]> = std::sync::LazyLock::new(|| {
        let options = format!(
            "-c enable_seqscan=off -c enable_bitmapscan=off {}",
            crate::queue::job_events::DEFERRED
        );
        let async_options = format!("{options} -c synchronous_commit=off");
        [options, async_options]
    });
    &OPTIONS[usize::from(async_commit)]
}

#[cfg(test)]
mod tests {
    #[test]
    fn lease_sessions_leave_job_events_to_the_worker() {
        for async_commit in [false, true] {
            let options = super::lease_session_options(async_commit);
            assert!(
                options.contains(crate::queue::job_events::DEFERRED),
                "{options}"
            );
            // Only the asynchronous sessions skip the WAL flush: finished jobs use the other.
            assert_eq!(
                options.contains("synchronous_commit=off"),
                async_commit,
                "{options}"
            );
        }
    }
}
