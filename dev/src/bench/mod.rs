//! `octavia-dev bench`: the queue's throughput and pickup latency on fresh databases, with
//! real `octavia-worker` processes, printed as JSON; `octavia-dev bench --suite` measures every
//! figure of the performance targets beside a pgbench ceiling of the same SQL shapes.
//!
//! Databases are created for the run on the server of `DATABASE_URL` (or, without it, on a
//! throwaway durable cluster) and dropped afterwards. The queue's measurements enqueue noop
//! jobs only and their workers serve nothing else, so they need PostgreSQL alone, not the
//! pipeline's programs; a worker that exits fails the run at once with its own error
//! ([`WorkerSet`]). Figures come from one run on a shared
//! machine: compare ratios within a run, not absolute numbers across runs.

mod api_load;
mod ceiling;
mod fairness;
mod measure;
pub mod quality;
mod scale;
mod soak;
mod suite;
mod workers;

pub use measure::Throughput;
pub use suite::SuiteReport;
pub use workers::{QUEUE_JOB_TYPES, WorkerSet};

use crate::cluster::ScratchDatabase;
use octavia::error::Result;
use serde::Serialize;
use std::path::Path;

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    #[command(flatten)]
    pub queue: QueueArgs,
    /// Measure every figure of the performance targets instead (see bin/bench)
    #[arg(long)]
    pub suite: bool,
    #[command(flatten)]
    pub suite_args: suite::SuiteArgs,
    /// Measure how well the speech-to-text engines hear instead (bin/bench --quality)
    #[arg(long, conflicts_with = "suite")]
    pub quality: bool,
    #[command(flatten)]
    pub quality_args: quality::QualityArgs,
}

/// One pickup latency and throughput measurement ([`queue`]).
#[derive(clap::Args, Debug, Clone)]
pub struct QueueArgs {
    /// Jobs to run
    #[arg(long, default_value_t = 20_000)]
    pub jobs: u32,
    /// Segments per job
    #[arg(long, default_value_t = 1)]
    pub segments: u32,
    /// --concurrency of each worker process
    #[arg(long, default_value_t = 64)]
    pub concurrency: u32,
    /// Worker processes
    #[arg(long, default_value_t = 1)]
    pub workers: u32,
    /// Insert the jobs already planned (running, their segments pending), so the run
    /// times segments and finalizes alone, as the pgbench ceiling times rows that exist
    /// before it starts
    #[arg(long)]
    pub planned: bool,
    /// Single jobs inserted one by one into idle workers to measure pickup latency
    #[arg(long, default_value_t = 200)]
    pub latency_samples: u32,
}

#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub jobs: u32,
    pub segments_per_job: u32,
    pub concurrency: u32,
    pub workers: u32,
    /// Whether the jobs were inserted planned (`--planned`).
    pub planned: bool,
    pub enqueue_seconds: f64,
    pub enqueue_jobs_per_second: f64,
    pub run_seconds: f64,
    pub segments_per_second: f64,
    pub jobs_per_second: f64,
    pub pickup_latency_ms_p50: f64,
    pub pickup_latency_ms_p99: f64,
    pub worker_peak_rss_mb: f64,
    pub phases: measure::Phases,
    /// What the workers' metrics counted (claims, writes, seconds spent in each).
    pub worker: workers::WorkerFigures,
}

pub async fn run(args: BenchArgs) -> Result<()> {
    if args.suite {
        return suite::run(&args.suite_args).await;
    }
    if args.quality {
        return quality::run(&args.quality_args).await;
    }
    let report = queue(&args.queue, &crate::process::sibling("octavia-worker")?).await?;
    println!("{}", measure::to_json(&report)?);
    Ok(())
}

/// Pickup latency, then throughput, each on a fresh database, with workers of `worker` (an
/// `octavia-worker`) serving only the noop jobs the measurement enqueues
/// ([`QUEUE_JOB_TYPES`]): what `octavia-dev bench` prints, which needs PostgreSQL and
/// nothing of the pipeline.
pub async fn queue(args: &QueueArgs, worker: &Path) -> Result<BenchReport> {
    let latency_db = ScratchDatabase::create("bench").await?;
    let latency = measure::pickup_latency(worker, &latency_db.url, args.latency_samples).await;
    latency_db.drop().await?;
    let (p50, p99) = latency?;
    let db = ScratchDatabase::create("bench").await?;
    let throughput = measure::throughput(
        worker,
        &db.url,
        args.jobs,
        args.segments,
        args.concurrency,
        args.workers,
        args.planned,
    )
    .await;
    db.drop().await?;
    let t = throughput?;
    Ok(BenchReport {
        jobs: args.jobs,
        segments_per_job: args.segments,
        concurrency: args.concurrency,
        workers: args.workers,
        planned: args.planned,
        enqueue_seconds: t.enqueue_seconds,
        enqueue_jobs_per_second: args.jobs as f64 / t.enqueue_seconds,
        run_seconds: t.run_seconds,
        segments_per_second: t.segments_per_second,
        jobs_per_second: t.jobs_per_second,
        pickup_latency_ms_p50: p50,
        pickup_latency_ms_p99: p99,
        worker_peak_rss_mb: t.peak_rss_mb,
        phases: t.phases,
        worker: t.worker,
    })
}
