//! The measurements: worker processes over noop jobs, pickup latency, enqueue speed.

use super::workers::{QUEUE_JOB_TYPES, WorkerFigures, WorkerSet};
use crate::sql;
use deadpool_postgres::{Object, Pool};
use octavia::config::Config;
use octavia::error::{Error, Result};
use octavia::queue::enqueue::{self, NewJob};
use serde::Serialize;
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

pub(super) fn pool(url: &str) -> Result<Pool> {
    let mut config = Config::default();
    config.database.url = url.to_string();
    config.database.pool_size = 4;
    octavia::db::pool(&config.database)
}

pub(super) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Inserts `count` noop jobs of `segments` segments each, in chunks of 10,000 per
/// statement. Returns the seconds it took.
pub(super) async fn enqueue_noop(client: &mut Object, count: u32, segments: u32) -> Result<f64> {
    let options = json!({ "segments": segments, "segment_ms": 0 });
    let started = Instant::now();
    let mut left = count as usize;
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
    Ok(started.elapsed().as_secs_f64())
}

/// Inserts `jobs` noop jobs of `segments` segments each as their plans leave them: running,
/// at their segments step, every segment pending with a time-ordered id and a no-op plan's
/// input, as `complete_plans.sql` inserts them.
pub(super) async fn insert_planned(client: &Object, jobs: u32, segments: i32) -> Result<()> {
    /// Segment rows inserted per statement.
    const CHUNK: i32 = 100_000;
    let input = octavia::job::options::NoopOptions::default().segment_input();
    for _ in 0..jobs {
        let job = uuid::Uuid::now_v7();
        octavia::db::execute(client, sql::BENCH_PLANNED_JOB, &[&job, &segments]).await?;
        for first in (0..segments).step_by(CHUNK as usize) {
            let ids: Vec<uuid::Uuid> = (first..segments.min(first + CHUNK))
                .map(|_| uuid::Uuid::now_v7())
                .collect();
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
                [&job, &ids, &first, &input];
            octavia::db::execute(client, sql::BENCH_PLANNED_SEGMENTS, &params).await?;
        }
    }
    Ok(())
}

async fn unfinished(client: &Object, not_completed: bool) -> Result<i64> {
    Ok(
        octavia::db::query(client, sql::COUNT_UNFINISHED_JOBS, &[&not_completed])
            .await?
            .first()
            .map(|r| r.get(0))
            .unwrap_or(0),
    )
}

/// Pickup latency on an idle worker of `worker` (an `octavia-worker`): one job at a time,
/// each waited for, measured from its insert to the claim of its first step (both instants
/// on the database clock). Returns (p50, p99) in milliseconds.
pub async fn pickup_latency(worker: &Path, url: &str, samples: u32) -> Result<(f64, f64)> {
    let pool = pool(url)?;
    let mut client = pool.get().await?;
    let mut workers = WorkerSet::start(worker, url, 1, 64, QUEUE_JOB_TYPES, &[])?;
    // Let the worker connect, LISTEN and go idle.
    workers.watch(Duration::from_millis(1500)).await?;
    let mut latencies = Vec::new();
    for _ in 0..samples {
        let job = NewJob::new("noop", json!({ "segments": 1 }));
        let tx = client.transaction().await?;
        enqueue::insert(&tx, std::slice::from_ref(&job)).await?;
        tx.commit().await?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let row = octavia::db::query_opt(&client, sql::BENCH_PICKUP, &[&job.id])
                .await?
                .ok_or_else(|| Error::Invalid("benchmark job vanished".into()))?;
            if row.get::<_, &str>(0) == "completed" {
                latencies.push(row.get::<_, f64>(1));
                break;
            }
            workers.check()?;
            if Instant::now() > deadline {
                return Err(Error::Invalid(
                    "a latency sample did not complete in 30 s".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    drop(workers);
    latencies.sort_by(f64::total_cmp);
    Ok((percentile(&latencies, 0.5), percentile(&latencies, 0.99)))
}

/// One throughput run.
#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    pub enqueue_seconds: f64,
    pub run_seconds: f64,
    pub segments_per_second: f64,
    pub jobs_per_second: f64,
    pub peak_rss_mb: f64,
    pub phases: Phases,
    pub worker: WorkerFigures,
}

/// When a throughput run's plans and segments ran, in seconds from the workers' start.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Phases {
    /// Negative when the jobs were inserted planned, before the workers started.
    pub first_segment_planned: f64,
    pub last_segment_planned: f64,
    pub first_segment_finished: f64,
    /// When a tenth of the segments had finished, and nine tenths.
    pub tenth_segment_finished: f64,
    pub ninth_tenth_segment_finished: f64,
    pub last_segment_finished: f64,
    /// Segments per second between the 10th and 90th percentile of their finishes.
    pub steady_segments_per_second: f64,
}

/// Inserts the jobs, then starts `workers` processes of `worker` (an `octavia-worker`) and
/// times them until every job ended. With `planned`, the jobs are inserted as their plans leave them ([`insert_planned`]), so the
/// run times their segments and finalizes alone, on rows that exist before the clock
/// starts, as the pgbench ceiling's do; otherwise the workers plan them too.
pub async fn throughput(
    worker: &Path,
    url: &str,
    jobs: u32,
    segments: u32,
    concurrency: u32,
    workers: u32,
    planned: bool,
) -> Result<Throughput> {
    let pool = pool(url)?;
    let mut client = pool.get().await?;
    let enqueue_seconds = if planned {
        let started = Instant::now();
        insert_planned(&client, jobs, segments as i32).await?;
        started.elapsed().as_secs_f64()
    } else {
        enqueue_noop(&mut client, jobs, segments).await?
    };
    client.batch_execute("VACUUM ANALYZE").await?;
    // Timed on the database clock, from just before the workers start to the last job's
    // finished_at; the progress check only has to notice the end, so it runs rarely and
    // takes next to nothing from the run it measures.
    let started: chrono::DateTime<chrono::Utc> =
        octavia::db::query(&client, sql::BENCH_DB_NOW, &[])
            .await?
            .first()
            .map(|r| r.get(0))
            .ok_or_else(|| Error::Invalid("no clock".into()))?;
    let mut set = WorkerSet::start(worker, url, workers, concurrency, QUEUE_JOB_TYPES, &[])?;
    loop {
        set.watch(Duration::from_millis(250)).await?;
        if unfinished(&client, false).await? == 0 {
            break;
        }
    }
    let run_seconds: f64 = octavia::db::query(&client, sql::BENCH_LAST_FINISH, &[&started])
        .await?
        .first()
        .and_then(|r| r.get(0))
        .ok_or_else(|| Error::Invalid("no job finished".into()))?;
    let peak_rss_mb = set.peak_rss_mb();
    let figures = set.figures().await?;
    drop(set);
    let phases = octavia::db::query_opt(&client, sql::BENCH_PHASES, &[&started])
        .await?
        .map(|r| Phases {
            first_segment_planned: r.get(0),
            last_segment_planned: r.get(1),
            first_segment_finished: r.get(2),
            last_segment_finished: r.get(3),
            steady_segments_per_second: r.get::<_, Option<f64>>(4).unwrap_or(f64::NAN),
            tenth_segment_finished: r.get::<_, Option<f64>>(5).unwrap_or(f64::NAN),
            ninth_tenth_segment_finished: r.get::<_, Option<f64>>(6).unwrap_or(f64::NAN),
        })
        .unwrap_or_default();
    let failed = unfinished(&client, true).await?;
    if failed > 0 {
        return Err(Error::Invalid(format!("{failed} jobs did not complete")));
    }
    Ok(Throughput {
        enqueue_seconds,
        run_seconds,
        segments_per_second: jobs as f64 * segments as f64 / run_seconds,
        jobs_per_second: jobs as f64 / run_seconds,
        peak_rss_mb,
        phases,
        worker: figures,
    })
}

/// Segments completed per second by one worker of `worker` over `seconds`, after a second
/// of warm-up, on a database already holding the work.
pub async fn claim_rate(worker: &Path, url: &str, concurrency: u32, seconds: u64) -> Result<f64> {
    let pool = pool(url)?;
    let client = pool.get().await?;
    let mut set = WorkerSet::start(worker, url, 1, concurrency, QUEUE_JOB_TYPES, &[])?;
    set.watch(Duration::from_secs(1)).await?;
    let before = completed_segments(&client).await?;
    let started = Instant::now();
    set.watch(Duration::from_secs(seconds)).await?;
    let after = completed_segments(&client).await?;
    let elapsed = started.elapsed().as_secs_f64();
    drop(set);
    Ok((after - before) as f64 / elapsed)
}

pub(super) async fn completed_segments(client: &Object) -> Result<i64> {
    Ok(
        octavia::db::query(client, sql::BENCH_COMPLETED_SEGMENTS, &[])
            .await?
            .first()
            .map(|r| r.get(0))
            .unwrap_or(0),
    )
}

/// The mean of `v`, 0 when it is empty.
pub(super) fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// `value` as pretty JSON, the reports' form.
pub(super) fn to_json<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string_pretty(value).map_err(|e| Error::Invalid(e.to_string()))
}
