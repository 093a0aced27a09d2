//! The worker runtime: claims job-level steps and segments up to its concurrency, runs
//! their handlers, records the outcomes, renews its leases, rescues expired ones, and
//! shuts down gracefully.
//!
//! One semaphore bounds the handlers running: a permit is taken before a row is claimed
//! and given back when its handler returns. Successful outcomes then go to the completer,
//! which records them in batches (one statement per kind per batch); its queue is bounded,
//! so a slow database slows claiming down rather than piling up results. Until an outcome
//! is recorded its lease stays in flight and is renewed by the heartbeat.
//!
//! This file is the lifecycle (start, run, graceful shutdown). The roles, each in a file
//! of its own and none importing one above it: a step's trip is [`claimer`] →
//! [`executor`] (and [`whole`] for a job run whole) → [`completer`] → `crate::queue`;
//! [`maintenance`] renews, rescues and prunes beside them; [`webhooks`] delivers job
//! webhooks beside them all; [`shared`] is what they share.

mod attempt;
mod claimer;
mod completer;
mod executor;
mod handler;
mod inflight;
mod maintenance;
mod metrics;
mod prefetch;
mod registry;
mod shared;
mod webhooks;
mod whole;

pub use handler::{Handler, HandlerError, Plan, SegmentContext, StepContext};
pub use inflight::StopReason;
pub use registry::Registry;
pub use shared::lease_session_options;

use crate::config::Config;
use crate::error::Result;
use crate::queue::claim::ClaimOptions;
use crate::queue::complete;
use crate::queue::job_events::Publisher;
use crate::queue::listener::Listener;
use deadpool_postgres::Pool;
use inflight::InFlight;
use prefetch::Prefetch;
use shared::{Completion, Shared, give_back};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

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
        if config.worker.listen && config.database.listen_url().is_none() {
            return Err(crate::Error::Invalid(
                "worker.listen: LISTEN cannot go through a transaction pooler; set \
                 database.direct_url to PostgreSQL itself, or run with --poll-only"
                    .into(),
            ));
        }
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
                claiming: AtomicBool::new(true),
                events: Publisher::default(),
                start: executor::start,
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
        let listen_url = config
            .database
            .listen_url()
            .filter(|_| config.worker.listen);
        let listener =
            listen_url.map(|url| Listener::for_work(url, shared.wake.clone(), background.clone()));
        let (done_tx, done_rx) =
            mpsc::channel::<Completion>(2 * config.worker.concurrency as usize);
        shared.set_done(Some(done_tx.clone()));
        let completer = tokio::spawn(completer::completer(shared.clone(), done_rx));
        let heart = tokio::spawn(maintenance::heartbeat_loop(
            shared.clone(),
            background.clone(),
        ));
        let rescuer = tokio::spawn(maintenance::rescue_loop(shared.clone(), background.clone()));
        let pruner = tokio::spawn(maintenance::prune_loop(shared.clone(), background.clone()));
        let publisher = {
            let (shared, stop) = (shared.clone(), background.clone());
            tokio::spawn(async move { shared.events.run(shared.lease_pool.clone(), stop).await })
        };
        tokio::spawn(maintenance::warn_of_vacuum_problems(shared.clone()));
        // Stops claiming at the first signal, like the job roles; its attempts in flight
        // finish within webhooks.timeout_seconds.
        let webhooks = tokio::spawn(webhooks::delivery_loop(shared.clone(), shutdown.clone()));
        let tasks = shared.tasks.clone();
        let feeder = tokio::spawn(claimer::feed_prefetched(
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

        claimer::claim_loop(&shared, &done_tx, &shutdown).await;
        shared.stop_claiming();
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
        shared.set_done(None);
        let _ = completer.await;
        let _ = webhooks.await;
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
