//! The `octavia-worker` processes of a measurement: started serving only the job types it
//! enqueues, watched while it waits on them, and their metrics read back.

use crate::process::{self, Child, OnDrop, Output};
use octavia::error::{Error, Result};
use serde::Serialize;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The job types every queue measurement enqueues, and all its workers serve: a worker
/// serving more would check the pipeline's programs (ffmpeg, pocketsphinx, espeak-ng,
/// apertium) at start-up and refuse to start without them, and the queue's figures need
/// none of them.
pub const QUEUE_JOB_TYPES: &[&str] = &["noop"];

/// How often a measurement waiting on its workers checks that they still run.
const WATCH_EVERY: Duration = Duration::from_millis(50);

/// `octavia-worker` processes of a measurement, each serving its metrics on a port of its
/// own and writing its output to a log of the set's; stopped (SIGTERM, all at once, then
/// waited for) when dropped, when whatever they logged is copied to stderr. Every wait on
/// them goes through [`WorkerSet::check`]: a worker that exits fails the measurement at
/// once with its last lines, instead of leaving it to wait for work that never gets done.
pub struct WorkerSet {
    children: Vec<(Child, u16)>,
    /// Reads the metrics pages; one client for the set, as the soak reads them every tick.
    http: reqwest::Client,
    /// The directory of the workers' logs, removed with the set.
    _logs: tempfile::TempDir,
    /// A worker's exit was reported with its log's tail: its log is not copied again.
    exit_reported: bool,
}

impl WorkerSet {
    /// Starts `workers` processes of `program` (an `octavia-worker`) on the database at
    /// `url`, each with `--concurrency concurrency`, claiming only `job_types`, and given
    /// `extra` arguments last (a later `--set` of the same key wins).
    pub fn start(
        program: &Path,
        url: &str,
        workers: u32,
        concurrency: u32,
        job_types: &[&str],
        extra: &[&str],
    ) -> Result<WorkerSet> {
        let logs = tempfile::Builder::new()
            .prefix("octavia-bench-workers-")
            .tempdir()?;
        // The store's directory, which every worker opens (and creates) whatever it runs.
        let objects = format!(
            "storage.local_dir={}",
            logs.path().join("objects").display()
        );
        let mut children = Vec::new();
        for i in 0..workers {
            // A port free now; the worker fails to start, and the measurement with it, in
            // the unlikely case another process takes it first.
            let port = process::free_port()?;
            let id = format!("bench-{i}");
            let log = logs.path().join(format!("{id}.log"));
            let child = Child::spawn(
                &id,
                Command::new(program)
                    .args(["--no-migrate", "--concurrency", &concurrency.to_string()])
                    .args(["--worker-id", &id])
                    .args(["--job-types", &job_types.join(",")])
                    .args(["--set", "worker.poll_interval_ms=200"])
                    .args(["--set", &objects])
                    .args(["--metrics-listen", &format!("127.0.0.1:{port}")])
                    .args(extra)
                    .env("DATABASE_URL", url)
                    .env("RUST_LOG", "warn")
                    .env("NO_COLOR", "1"),
                Output::Log(&log),
            )?;
            children.push((child.on_drop(OnDrop::Stop), port));
        }
        Ok(WorkerSet {
            children,
            http: reqwest::Client::new(),
            _logs: logs,
            exit_reported: false,
        })
    }

    /// Fails if a worker has exited: each runs until the set is dropped. The error is the
    /// worker's own, from the last lines of its log.
    pub fn check(&mut self) -> Result<()> {
        for (child, _) in &mut self.children {
            if let Some(exited) = child.exited() {
                self.exit_reported = true;
                return Err(Error::Invalid(format!("the benchmark's worker {exited}")));
            }
        }
        Ok(())
    }

    /// Waits `period`, failing as soon as a worker exits ([`WorkerSet::check`]).
    pub async fn watch(&mut self, period: Duration) -> Result<()> {
        let until = Instant::now() + period;
        loop {
            self.check()?;
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            tokio::time::sleep(left.min(WATCH_EVERY)).await;
        }
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

    /// Waits until every worker serves its metrics (it has started), for up to 30 s;
    /// fails at once if one exits instead.
    pub async fn wait_started(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            self.check()?;
            match self.metrics().await {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => tokio::time::sleep(WATCH_EVERY).await,
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
        // All at once, then each waited for.
        for (c, _) in &mut self.children {
            c.terminate();
        }
        for (c, _) in &mut self.children {
            let _ = c.wait();
        }
        if self.exit_reported {
            return;
        }
        // The workers log warnings and errors only: whatever they wrote, the run should
        // show, as their own output did before it went to files.
        for (c, _) in &self.children {
            let text = c
                .log()
                .and_then(|log| std::fs::read_to_string(log).ok())
                .unwrap_or_default();
            for line in text.lines() {
                eprintln!("{}: {line}", c.name());
            }
        }
    }
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
