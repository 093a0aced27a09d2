//! `octavia bench`: the queue's throughput and pickup latency on a fresh database, with
//! real `octavia-worker` processes, printed as JSON.
//!
//! The database is created for the run on the server of `DATABASE_URL` (or, without it, on
//! a throwaway durable cluster) and dropped afterwards. Figures come from one run on a
//! shared machine: compare ratios within a run, not absolute numbers across runs.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::pg;
use crate::queue::enqueue::{self, NewJob};
use crate::sql;
use serde::Serialize;
use serde_json::json;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
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
    pub enqueue_seconds: f64,
    pub enqueue_jobs_per_second: f64,
    pub run_seconds: f64,
    pub segments_per_second: f64,
    pub jobs_per_second: f64,
    pub pickup_latency_ms_p50: f64,
    pub pickup_latency_ms_p99: f64,
    pub worker_peak_rss_mb: f64,
}

struct Workers(Vec<Child>);

impl Workers {
    fn start(url: &str, args: &BenchArgs) -> Result<Workers> {
        let exe = worker_exe()?;
        let mut children = Vec::new();
        for i in 0..args.workers {
            let child = Command::new(&exe)
                .args([
                    "--no-migrate",
                    "--concurrency",
                    &args.concurrency.to_string(),
                ])
                .args(["--worker-id", &format!("bench-{i}")])
                .args(["--set", "worker.poll_interval_ms=200"])
                .env("DATABASE_URL", url)
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .spawn()?;
            children.push(child);
        }
        Ok(Workers(children))
    }

    /// Peak resident set of the processes, from /proc (VmHWM).
    fn peak_rss_mb(&self) -> f64 {
        self.0
            .iter()
            .filter_map(|c| std::fs::read_to_string(format!("/proc/{}/status", c.id())).ok())
            .filter_map(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            })
            .fold(0.0, f64::max)
            / 1024.0
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            // SAFETY: kill(2) with a pid we spawned and still own.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        }
        for c in &mut self.0 {
            let _ = c.wait();
        }
    }
}

fn worker_exe() -> Result<PathBuf> {
    let exe = std::env::current_exe()?.with_file_name("octavia-worker");
    if !exe.exists() {
        return Err(Error::Invalid(format!(
            "{} not found: build it with `cargo build --release --bins`",
            exe.display()
        )));
    }
    Ok(exe)
}

async fn unfinished(client: &deadpool_postgres::Object, not_completed: bool) -> Result<i64> {
    Ok(
        crate::db::query(client, sql::COUNT_UNFINISHED_JOBS, &[&not_completed])
            .await?
            .first()
            .map(|r| r.get(0))
            .unwrap_or(0),
    )
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

pub async fn run(args: BenchArgs) -> Result<()> {
    let db = pg::ScratchDatabase::create("bench").await?;
    let outcome = measure(&db.url, &args).await;
    db.drop().await?;
    let report = outcome?;
    println!(
        "{}",
        serde_json::to_string_pretty(&report).map_err(|e| Error::Invalid(e.to_string()))?
    );
    Ok(())
}

async fn measure(url: &str, args: &BenchArgs) -> Result<BenchReport> {
    let mut config = Config::default();
    config.database.url = url.to_string();
    config.database.pool_size = 4;
    let pool = crate::db::pool(&config.database)?;
    let mut client = pool.get().await?;
    let options = json!({ "segments": args.segments, "segment_ms": 0 });

    // Pickup latency first, on idle workers: one job at a time, each waited for.
    let workers = Workers::start(url, args)?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut latencies = Vec::new();
    for _ in 0..args.latency_samples {
        let job = NewJob::new("noop", json!({ "segments": 1 }));
        let tx = client.transaction().await?;
        enqueue::insert(&tx, std::slice::from_ref(&job)).await?;
        tx.commit().await?;
        loop {
            let row = crate::db::query_opt(&client, sql::BENCH_PICKUP, &[&job.id])
                .await?
                .ok_or_else(|| Error::Invalid("benchmark job vanished".into()))?;
            if row.get::<_, &str>(0) == "completed" {
                latencies.push(row.get::<_, f64>(1));
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    latencies.sort_by(f64::total_cmp);
    drop(workers);
    client.batch_execute("TRUNCATE jobs CASCADE").await?;

    // Throughput: enqueue everything, then start the workers and time until all is done.
    let started = Instant::now();
    let mut left = args.jobs as usize;
    while left > 0 {
        let n = left.min(10_000);
        let jobs: Vec<NewJob> = (0..n)
            .map(|_| NewJob::new("noop", options.clone()))
            .collect();
        let tx = client.transaction().await?;
        enqueue::insert(&tx, &jobs).await?;
        tx.commit().await?;
        left -= n;
    }
    let enqueue_seconds = started.elapsed().as_secs_f64();
    client.batch_execute("VACUUM ANALYZE jobs").await?;

    let started = Instant::now();
    let workers = Workers::start(url, args)?;
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let open = unfinished(&client, false).await?;
        if open == 0 {
            break;
        }
    }
    let run_seconds = started.elapsed().as_secs_f64();
    let rss = workers.peak_rss_mb();
    drop(workers);
    let failed = unfinished(&client, true).await?;
    if failed > 0 {
        return Err(Error::Invalid(format!("{failed} jobs did not complete")));
    }
    let segments = args.jobs as f64 * args.segments as f64;
    Ok(BenchReport {
        jobs: args.jobs,
        segments_per_job: args.segments,
        concurrency: args.concurrency,
        workers: args.workers,
        enqueue_seconds,
        enqueue_jobs_per_second: args.jobs as f64 / enqueue_seconds,
        run_seconds,
        segments_per_second: segments / run_seconds,
        jobs_per_second: args.jobs as f64 / run_seconds,
        pickup_latency_ms_p50: percentile(&latencies, 0.5),
        pickup_latency_ms_p99: percentile(&latencies, 0.99),
        worker_peak_rss_mb: rss,
    })
}
