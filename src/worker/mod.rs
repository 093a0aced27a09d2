//! The worker runtime: claims job-level steps and segments up to its concurrency, runs
//! their handlers, records the outcomes, renews its leases, rescues expired ones, and
//! shuts down gracefully.
//!
//! One semaphore bounds the handlers running: a permit is taken before a row is claimed
//! and given back when its handler returns. Successful outcomes then go to the completer,
//! which records them in batches (one statement per kind per batch); its queue is bounded,
//! so a slow database slows claiming down rather than piling up results. Until an outcome
//! is recorded its lease stays in flight and is renewed by the heartbeat.

mod execute;
mod handler;
mod inflight;
mod metrics;
mod prefetch;
mod registry;

pub use handler::{Handler, HandlerError, Plan, SegmentContext, StepContext};
pub use inflight::StopReason;
pub use registry::Registry;

use crate::config::Config;
use crate::error::Result;
use crate::job::ClaimedStep;
use crate::job::NewMedia;
use crate::queue::claim::{self, ClaimOptions};
use crate::queue::job_events::Publisher;
use crate::queue::listener::Listener;
use crate::queue::{complete, heartbeat, rescue};
use deadpool_postgres::Pool;
use futures_util::{FutureExt, StreamExt};
use inflight::{InFlight, Key};
use prefetch::Prefetch;
use rand::RngExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// State shared by the worker's tasks.
struct Shared {
    config: Arc<Config>,
    pool: Pool,
    /// For claims, heartbeats and the records of segments and plans: writes whose loss in
    /// a PostgreSQL crash only means that work runs again. With `worker.async_commit`
    /// they commit without waiting for the WAL flush; everything else waits: finished jobs
    /// go through `jobs_pool`, failures, refunds and cancels through `pool`.
    lease_pool: Pool,
    /// For the completer's records of finished jobs: durable like `pool`, and like
    /// `lease_pool` they leave the jobs' events to the worker, announced after commit.
    jobs_pool: Pool,
    registry: Registry,
    claim: ClaimOptions,
    inflight: InFlight,
    slots: Arc<Semaphore>,
    /// Segments claimed ahead of free slots, started as slots free up.
    prefetch: Prefetch,
    /// A permit came back.
    slot_freed: Notify,
    /// New work may be ready (NOTIFY, a local completion that made a finalize ready).
    wake: Arc<Notify>,
    /// The handler tasks.
    tasks: TaskTracker,
    /// Where handler tasks send their outcomes; taken at shutdown so the completer ends.
    done: std::sync::Mutex<Option<mpsc::Sender<Completion>>>,
    /// Cleared at shutdown: no more claims, and no more leases taken by the completer.
    claiming: std::sync::atomic::AtomicBool,
    /// The jobs the lease pool's and `jobs_pool`'s statements changed, announced after
    /// they commit.
    events: Publisher,
}

impl Shared {
    fn worker_id(&self) -> &str {
        &self.claim.worker_id
    }

    /// Retry delay after failed attempt `attempt`: exponential, capped, with jitter so
    /// segments that failed together do not retry together.
    fn backoff(&self, attempt: i32) -> Duration {
        let w = &self.config.worker;
        let exp = 2u64.saturating_pow(attempt.saturating_sub(1).clamp(0, 30) as u32);
        let ms = w.backoff_base_ms.saturating_mul(exp).min(w.backoff_max_ms) as f64;
        let jitter: f64 = rand::rng().random_range(0.5..=1.0);
        Duration::from_secs_f64(ms * jitter / 1000.0)
    }

    fn lease(&self) -> Duration {
        self.claim.lease
    }
}

/// A successful attempt waiting for the completer.
enum Completion {
    Segment {
        key: Key,
        job_id: uuid::Uuid,
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
        segment: uuid::Uuid,
        result: serde_json::Value,
        output: Option<NewMedia>,
    },
}

impl Completion {
    fn key(&self) -> Key {
        match self {
            Completion::Segment { key, .. }
            | Completion::Plan { key, .. }
            | Completion::Finalize { key, .. }
            | Completion::Whole { key, .. } => *key,
        }
    }

    /// Its writer, as the metrics name it.
    fn kind(&self) -> &'static str {
        match self {
            Completion::Segment { .. } => "segments",
            Completion::Plan { .. } => "plans",
            Completion::Finalize { .. } | Completion::Whole { .. } => "jobs",
        }
    }

    fn job_id(&self) -> uuid::Uuid {
        match self {
            Completion::Segment { job_id, .. } => *job_id,
            Completion::Plan { step, .. }
            | Completion::Finalize { step, .. }
            | Completion::Whole { step, .. } => step.job.id,
        }
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

/// A worker process's runtime.
pub struct Worker {
    shared: Arc<Shared>,
}

impl Worker {
    pub fn new(config: Config, pool: Pool, registry: Registry) -> Result<Worker> {
        let job_types = if config.worker.job_types.is_empty() {
            None
        } else {
            Some(config.worker.job_types.clone())
        };
        let claim = ClaimOptions {
            worker_id: config.worker_id(),
            job_types,
            lease: Duration::from_secs(config.worker.lease_seconds),
        };
        let slots = Arc::new(Semaphore::new(config.worker.concurrency as usize));
        let prefetch = Prefetch::new(
            Duration::from_millis(config.worker.prefetch_ms),
            config.worker.claim_batch as usize,
        );
        // The claimer, the writers (two for plans), the heartbeat and the publisher.
        let options = lease_session_options(config.worker.async_commit);
        let lease_pool = crate::db::pool_with(&config.database, 7, Some(options))?;
        // One writer records finished jobs (see `completer`).
        let jobs_pool =
            crate::db::pool_with(&config.database, 1, Some(lease_session_options(false)))?;
        Ok(Worker {
            shared: Arc::new(Shared {
                config: Arc::new(config),
                pool,
                lease_pool,
                jobs_pool,
                registry,
                claim,
                inflight: InFlight::default(),
                slots,
                prefetch,
                slot_freed: Notify::new(),
                wake: Arc::new(Notify::new()),
                tasks: TaskTracker::new(),
                done: std::sync::Mutex::new(None),
                claiming: std::sync::atomic::AtomicBool::new(true),
                events: Publisher::default(),
            }),
        })
    }

    pub fn worker_id(&self) -> &str {
        self.shared.worker_id()
    }

    /// Runs until `shutdown` is cancelled, then stops claiming, waits up to the grace
    /// period for the work in flight, releases what is left and returns.
    pub async fn run(self, shutdown: CancellationToken) -> Result<()> {
        let shared = self.shared;
        let config = shared.config.clone();
        let background = CancellationToken::new();
        let metrics_server = match config.worker.metrics_listen.as_str() {
            "" => None,
            addr => Some(metrics::serve(shared.clone(), addr, background.clone()).await?),
        };
        let listener = config.worker.listen.then(|| {
            Listener::for_work(
                config.database.url.clone(),
                shared.wake.clone(),
                background.clone(),
            )
        });
        let (done_tx, done_rx) =
            mpsc::channel::<Completion>(2 * config.worker.concurrency as usize);
        *shared.done.lock().unwrap_or_else(|e| e.into_inner()) = Some(done_tx.clone());
        let completer = tokio::spawn(completer(shared.clone(), done_rx));
        let heart = tokio::spawn(heartbeat_loop(shared.clone(), background.clone()));
        let rescuer = tokio::spawn(rescue_loop(shared.clone(), background.clone()));
        let pruner = tokio::spawn(prune_loop(shared.clone(), background.clone()));
        let publisher = {
            let (shared, stop) = (shared.clone(), background.clone());
            tokio::spawn(async move { shared.events.run(shared.lease_pool.clone(), stop).await })
        };
        tokio::spawn(warn_of_vacuum_problems(shared.clone()));
        let tasks = shared.tasks.clone();
        let feeder = tokio::spawn(feed_prefetched(
            shared.clone(),
            done_tx.clone(),
            shutdown.clone(),
        ));
        tracing::info!(
            worker_id = shared.worker_id(),
            concurrency = config.worker.concurrency,
            job_types = ?shared.claim.job_types,
            listen = config.worker.listen,
            "worker started"
        );

        claim_loop(&shared, &done_tx, &shutdown).await;
        shared
            .claiming
            .store(false, std::sync::atomic::Ordering::SeqCst);
        let _ = feeder.await;
        give_back(&shared, shared.prefetch.take_all(), "shutdown").await;

        let grace = Duration::from_secs(config.worker.shutdown_grace_seconds);
        tracing::info!(
            in_flight = shared.inflight.len(),
            ?grace,
            "shutting down: no new claims"
        );
        if tokio::time::timeout(grace, shared.inflight.wait_empty())
            .await
            .is_err()
        {
            release_remaining(&shared).await;
        }
        tasks.close();
        if tokio::time::timeout(Duration::from_secs(5), tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("some handlers did not stop within 5 s of being told to");
        }
        drop(done_tx);
        drop(shared.done.lock().unwrap_or_else(|e| e.into_inner()).take());
        let _ = completer.await;
        background.cancel();
        let _ = heart.await;
        let _ = rescuer.await;
        let _ = pruner.await;
        let _ = publisher.await;
        if let Some(server) = metrics_server {
            let _ = server.await;
        }
        if let Some(listener) = listener {
            listener.stop().await;
        }
        tracing::info!("worker stopped");
        Ok(())
    }
}

/// Says at start-up, once, what would keep the queue's tables from being vacuumed: the
/// worker runs all the same, but its claims slow down as dead rows pile up. A task of its
/// own, so a slow or unreachable server delays no claim.
async fn warn_of_vacuum_problems(shared: Arc<Shared>) {
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

/// Claims while there are free slots and work, then waits for a wake-up, a poll tick, or a
/// slot coming back. While claims come back full, another one starts beside the one in
/// flight as soon as enough slots are free (up to [`CLAIMS_IN_FLIGHT`]): one claim at a time
/// left the worker's slots, and the machine's CPU, idle for the length of a round trip.
async fn claim_loop(
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
    let client = shared.lease_pool.get().await?;
    let steps = if claim_steps && free > 0 {
        let started = std::time::Instant::now();
        let steps = claim::steps(&client, &shared.claim, free as i64).await?;
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
        shared
            .tasks
            .spawn(execute::step(shared.clone(), step, permit, done_tx.clone()));
    }
    let left = free - claimed;
    if left + ahead > 0 {
        let started = std::time::Instant::now();
        let mut segments = claim::segments(&client, &shared.claim, (left + ahead) as i64).await?;
        metrics::claim("segments", left + ahead, segments.len(), started.elapsed());
        claimed += segments.len();
        // The first ones take the free slots, the others wait for theirs, already in
        // flight so the heartbeat renews their leases.
        let later = segments.split_off(left.min(segments.len()));
        shared.prefetch.started(segments.len());
        for segment in segments {
            let permit = permits.split(1).expect("a permit per claimed row");
            shared.tasks.spawn(execute::segment(
                shared.clone(),
                segment,
                permit,
                done_tx.clone(),
            ));
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
async fn feed_prefetched(
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
                shared.tasks.spawn(execute::segment(
                    shared.clone(),
                    segment,
                    permit,
                    done_tx.clone(),
                ));
            }
            None => {
                // Given back meanwhile: the slot is free again.
                drop(permit);
                shared.slot_freed.notify_one();
            }
        }
    }
}

/// Gives prefetched segments back without burning an attempt (they never started), so
/// any worker can claim them at once; if that fails their leases expire and are rescued.
async fn give_back(
    shared: &Arc<Shared>,
    segments: Vec<crate::job::ClaimedSegment>,
    why: &'static str,
) {
    if segments.is_empty() {
        return;
    }
    let keys: Vec<(uuid::Uuid, i32)> = segments.iter().map(|s| (s.id, s.attempt)).collect();
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

/// How long the completer waits for more outcomes before writing a batch.
const FLUSH_AFTER: Duration = Duration::from_millis(2);

/// Records successful attempts in batches, flushed by count (`worker.claim_batch`) or
/// after [`FLUSH_AFTER`], whichever comes first. Each kind (segments, plans, finalizes)
/// has one writer: batches of one kind are written one after another, because two
/// segment batches written at once would mostly wait for each other on the same job rows
/// (each completion adds to its job's counter), and each kind's next batch grows while the
/// previous one commits.
async fn completer(shared: Arc<Shared>, mut rx: mpsc::Receiver<Completion>) {
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
        let mut jobs: Vec<uuid::Uuid> = Vec::new();
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
        let done = execute::persist(shared, "segment results", || async {
            let client = shared.lease_pool.get().await?;
            complete::segments(&client, &segments, Some(lease)).await
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
        let done = execute::persist(shared, "completed jobs", || async {
            let client = shared.jobs_pool.get().await?;
            complete::jobs_done(&client, worker_id, &finals).await
        })
        .await
        .unwrap_or_default();
        shared.events.publish(done.iter().copied());
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
async fn record_plans(shared: &Arc<Shared>, plans: &[complete::PlanRecord<'_>]) -> Vec<uuid::Uuid> {
    let worker_id = shared.worker_id();
    let planned: usize = plans.iter().map(|p| p.segments.len()).sum();
    let slots = take_slots(shared, planned);
    let lease = complete::Lease {
        worker_id,
        duration: shared.lease(),
        jobs: &[],
        segments: slots.as_ref().map_or(0, |s| s.num_permits()),
    };
    let done = execute::persist(shared, "plans", || async {
        let client = shared.lease_pool.get().await?;
        complete::plans_done(&client, worker_id, plans, Some(lease)).await
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
fn take_slots(shared: &Arc<Shared>, want: usize) -> Option<tokio::sync::OwnedSemaphorePermit> {
    if !shared.claiming.load(std::sync::atomic::Ordering::SeqCst) {
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
    slots: Option<tokio::sync::OwnedSemaphorePermit>,
    steps: Vec<ClaimedStep>,
    segments: Vec<crate::job::ClaimedSegment>,
) {
    let Some(mut slots) = slots else { return };
    let done = shared
        .done
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if let Some(done) = done {
        for step in steps {
            let permit = slots.split(1).expect("a slot per leased step");
            shared
                .tasks
                .spawn(execute::step(shared.clone(), step, permit, done.clone()));
        }
        for segment in segments {
            let permit = slots.split(1).expect("a slot per leased segment");
            shared.tasks.spawn(execute::segment(
                shared.clone(),
                segment,
                permit,
                done.clone(),
            ));
        }
    }
    drop(slots);
    shared.slot_freed.notify_one();
}

/// Ends the jobs among `jobs` being cancelled whose last running piece just finished, and
/// refunds them, durably.
async fn settle(shared: &Arc<Shared>, jobs: Vec<uuid::Uuid>) {
    if jobs.is_empty() {
        return;
    }
    execute::persist(shared, "a cancel", || async {
        let mut client = shared.pool.get().await?;
        complete::settle_jobs(&mut client, &jobs).await
    })
    .await;
}

/// Renews every lease the worker holds, every `heartbeat_seconds`, and tells attempts to
/// stop when their job is stopping or their lease was lost.
async fn heartbeat_loop(shared: Arc<Shared>, stop: CancellationToken) {
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
async fn rescue_loop(shared: Arc<Shared>, stop: CancellationToken) {
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
async fn prune_loop(shared: Arc<Shared>, stop: CancellationToken) {
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

/// At the end of the grace period: tells every attempt still running to stop and gives its
/// row back without burning an attempt. Results already waiting for the completer are
/// recorded, not released.
async fn release_remaining(shared: &Arc<Shared>) {
    let entries = shared.inflight.entries();
    let mut segments = Vec::new();
    let mut steps = Vec::new();
    for (key, entry) in &entries {
        if entry.is_completing() {
            continue;
        }
        entry.stop(StopReason::Shutdown);
        if key.is_step() {
            steps.push((key.id, key.attempt));
        } else {
            segments.push((key.id, key.attempt));
        }
    }
    let released = async {
        let client = shared.pool.get().await?;
        let s = complete::release_segments(&client, &segments).await?;
        let j = complete::release_steps(&client, shared.worker_id(), &steps).await?;
        Ok::<_, crate::Error>(s + j)
    }
    .await;
    match released {
        Ok(n) => tracing::info!(released = n, "grace period over: released unfinished work"),
        Err(e) => {
            tracing::error!(error = %e, "could not release unfinished work; its leases will expire and be rescued")
        }
    }
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
