//! The measurements: worker processes over noop jobs, pickup latency, enqueue speed.

use crate::process::{self, Child, OnDrop, Output};
use crate::sql;
use deadpool_postgres::{Object, Pool};
use octavia::config::Config;
use octavia::error::{Error, Result};
use octavia::queue::enqueue::{self, NewJob};
use serde::Serialize;
use serde_json::json;
use std::process::Command;
use std::time::{Duration, Instant};

/// `octavia-worker` processes of a measurement, each serving its metrics on a port of its
/// own; stopped (SIGTERM, all at once, then waited for) when dropped.
pub struct WorkerSet {
    children: Vec<(Child, u16)>,
    /// Reads the metrics pages; one client for the set, as the soak reads them every tick.
    http: reqwest::Client,
}

impl WorkerSet {
    pub fn start(url: &str, workers: u32, concurrency: u32, extra: &[&str]) -> Result<WorkerSet> {
        let exe = process::sibling("octavia-worker")?;
        let mut children = Vec::new();
        for i in 0..workers {
            // A port free now; the worker fails to start, and the measurement with it, in
            // the unlikely case another process takes it first.
            let port = process::free_port()?;
            let id = format!("bench-{i}");
            let child = Child::spawn(
                &id,
                Command::new(&exe)
                    .args(["--no-migrate", "--concurrency", &concurrency.to_string()])
                    .args(["--worker-id", &id])
                    .args(["--set", "worker.poll_interval_ms=200"])
                    .args(["--metrics-listen", &format!("127.0.0.1:{port}")])
                    .args(extra)
                    .env("DATABASE_URL", url)
                    .env("RUST_LOG", "warn"),
                Output::Inherit,
            )?;
            children.push((child.on_drop(OnDrop::Stop), port));
        }
        Ok(WorkerSet {
            children,
            http: reqwest::Client::new(),
        })
    }

    /// Peak resident set of the largest process, from /proc (VmHWM).
    pub fn peak_rss_mb(&self) -> f64 {
        self.children
            .iter()
            .filter_map(|(c, _)| std::fs::read_to_string(format!("/proc/{}/status", c.id())).ok())
            .filter_map(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            })
            .fold(0.0, f64::max)
            / 1024.0
    }

    /// CPU seconds (user and system) the workers used so far, from /proc.
    fn cpu_seconds(&self) -> f64 {
        // SAFETY: sysconf has no preconditions.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        self.children
            .iter()
            .filter_map(|(c, _)| std::fs::read_to_string(format!("/proc/{}/stat", c.id())).ok())
            .filter_map(|s| {
                // Fields after the command name, which is in parentheses and may hold spaces:
                // utime and stime are the 14th and 15th fields of the line.
                let rest = s.rsplit_once(')')?.1;
                let f: Vec<&str> = rest.split_whitespace().collect();
                Some(f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?)
            })
            .sum::<f64>()
            / ticks
    }

    /// What the workers' metrics say they did so far, summed over the workers, and their
    /// CPU seconds.
    pub async fn figures(&self) -> Result<WorkerFigures> {
        Ok(WorkerFigures::from_metrics(
            &self.metrics().await?,
            self.cpu_seconds(),
        ))
    }

    /// Segment results the workers recorded so far, from their metrics: cheaper than
    /// asking the database, whose load is what is measured.
    pub async fn segments_recorded(&self) -> Result<f64> {
        Ok(octavia::telemetry::metric_sum(
            &self.metrics().await?,
            "octavia_worker_written_rows_total",
            "kind=\"segments\"",
        ))
    }

    /// Waits until every worker serves its metrics (it has started), for up to 30 s.
    pub async fn wait_started(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.metrics().await {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// The workers' metrics pages, one after another.
    async fn metrics(&self) -> Result<String> {
        let mut text = String::new();
        for (_, port) in &self.children {
            let page = self
                .http
                .get(format!("http://127.0.0.1:{port}/metrics"))
                .timeout(Duration::from_secs(5))
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .map_err(|e| Error::Invalid(format!("worker metrics on port {port}: {e}")))?;
            text.push_str(
                &page
                    .text()
                    .await
                    .map_err(|e| Error::Invalid(e.to_string()))?,
            );
            text.push('\n');
        }
        Ok(text)
    }
}

/// Where a throughput run's workers spent their time, from their metrics. Each `_seconds`
/// is the sum over statements: divided by the run's seconds, how busy that part was.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WorkerFigures {
    /// CPU seconds of the worker processes.
    pub cpu_seconds: f64,
    pub segment_claims: f64,
    pub empty_segment_claims: f64,
    pub rows_per_segment_claim: f64,
    pub segment_claim_seconds: f64,
    pub step_claims: f64,
    pub step_claim_seconds: f64,
    pub segment_writes: f64,
    pub rows_per_segment_write: f64,
    pub segment_write_seconds: f64,
    pub plan_writes: f64,
    pub plan_write_seconds: f64,
    pub job_writes: f64,
    pub job_write_seconds: f64,
}

impl WorkerFigures {
    fn from_metrics(text: &str, cpu_seconds: f64) -> WorkerFigures {
        let sum = |name: &str, kind: &str| {
            octavia::telemetry::metric_sum(text, name, &format!("kind=\"{kind}\""))
        };
        let per = |rows: f64, n: f64| if n > 0.0 { rows / n } else { 0.0 };
        let segment_claims = sum("octavia_worker_claims_total", "segments");
        let segment_writes = sum("octavia_worker_writes_total", "segments");
        WorkerFigures {
            cpu_seconds,
            segment_claims,
            empty_segment_claims: sum("octavia_worker_empty_claims_total", "segments"),
            rows_per_segment_claim: per(
                sum("octavia_worker_claimed_rows_total", "segments"),
                segment_claims,
            ),
            segment_claim_seconds: sum("octavia_worker_claim_seconds_sum", "segments"),
            step_claims: sum("octavia_worker_claims_total", "steps"),
            step_claim_seconds: sum("octavia_worker_claim_seconds_sum", "steps"),
            segment_writes,
            rows_per_segment_write: per(
                sum("octavia_worker_written_rows_total", "segments"),
                segment_writes,
            ),
            segment_write_seconds: sum("octavia_worker_write_seconds_sum", "segments"),
            plan_writes: sum("octavia_worker_writes_total", "plans"),
            plan_write_seconds: sum("octavia_worker_write_seconds_sum", "plans"),
            job_writes: sum("octavia_worker_writes_total", "jobs"),
            job_write_seconds: sum("octavia_worker_write_seconds_sum", "jobs"),
        }
    }
}

impl Drop for WorkerSet {
    fn drop(&mut self) {
        // All at once; each child then waits for its own exit as it is dropped.
        for (c, _) in &mut self.children {
            c.terminate();
        }
    }
}

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

/// Pickup latency on idle workers: one job at a time, each waited for, measured from its
/// insert to the claim of its first step (both instants on the database clock).
/// Returns (p50, p99) in milliseconds.
pub async fn pickup_latency(url: &str, samples: u32) -> Result<(f64, f64)> {
    let pool = pool(url)?;
    let mut client = pool.get().await?;
    let workers = WorkerSet::start(url, 1, 64, &[])?;
    // Let the worker connect, LISTEN and go idle.
    tokio::time::sleep(Duration::from_millis(1500)).await;
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

/// Inserts the jobs, then starts the workers and times them until every job ended. With
/// `planned`, the jobs are inserted as their plans leave them ([`insert_planned`]), so the
/// run times their segments and finalizes alone, on rows that exist before the clock
/// starts, as the pgbench ceiling's do; otherwise the workers plan them too.
pub async fn throughput(
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
    let set = WorkerSet::start(url, workers, concurrency, &[])?;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
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
    let worker = set.figures().await?;
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
        worker,
    })
}

/// Segments completed per second by one worker over `seconds`, after a second of warm-up,
/// on a database already holding the work.
pub async fn claim_rate(url: &str, concurrency: u32, seconds: u64) -> Result<f64> {
    let pool = pool(url)?;
    let client = pool.get().await?;
    let set = WorkerSet::start(url, 1, concurrency, &[])?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = completed_segments(&client).await?;
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_figures_sum_the_series_of_each_kind_over_workers() {
        let text = "# TYPE octavia_worker_claims_total counter
octavia_worker_claims_total{kind=\"segments\"} 10
octavia_worker_claims_total{kind=\"steps\"} 3
octavia_worker_claimed_rows_total{kind=\"segments\"} 900
octavia_worker_claim_seconds_sum{kind=\"segments\"} 0.25
octavia_worker_claim_seconds_count{kind=\"segments\"} 10
octavia_worker_claims_total{kind=\"segments\"} 20
octavia_worker_claimed_rows_total{kind=\"segments\"} 2100
octavia_worker_writes_total{kind=\"segments\"} 4
octavia_worker_written_rows_total{kind=\"segments\"} 1000
";
        let f = WorkerFigures::from_metrics(text, 1.5);
        assert_eq!(f.cpu_seconds, 1.5);
        assert_eq!(f.segment_claims, 30.0);
        assert_eq!(f.step_claims, 3.0);
        assert_eq!(f.rows_per_segment_claim, 100.0);
        assert_eq!(f.segment_claim_seconds, 0.25);
        assert_eq!(f.rows_per_segment_write, 250.0);
        assert!(
            f.plan_writes == 0.0 && f.plan_writes.is_sign_positive(),
            "no series: 0"
        );
    }
}
