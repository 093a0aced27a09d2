//! The soak: one worker under a steady load for minutes, with finished segments pruned and
//! autovacuum at work, sampled each minute; and the saturated run that gives its peak.

use super::measure::{self, pool};
use super::workers::{QUEUE_JOB_TYPES, WorkerSet};
use crate::sql;
use octavia::db;
use octavia::error::Result;
use serde::Serialize;
use std::path::Path;
use std::time::Instant;

#[derive(Debug, Serialize)]
pub struct Soak {
    /// 80 % of `sustained_peak_segments_per_second`.
    pub offered_segments_per_second: f64,
    /// Completed segments/s of the soak's own load with work always waiting for the worker
    /// (jobs inserted as it takes them, finished segments pruned, autovacuum at work):
    /// the mean of the saturated run's minutes after the first, when pruning has begun.
    pub sustained_peak_segments_per_second: f64,
    /// The same jobs inserted before a run of a few seconds on empty tables, with nothing
    /// pruned or vacuumed meanwhile: more than the queue sustains.
    pub burst_peak_segments_per_second: f64,
    /// The saturated run, minute by minute.
    pub saturated: Minutes,
    /// Largest gap between a minute's rate and the mean of `run`, as a share of the mean.
    pub max_deviation: f64,
    /// The soak itself, at `offered_segments_per_second`.
    pub run: Minutes,
}

/// A long run sampled each minute.
#[derive(Debug, Default, Serialize)]
pub struct Minutes {
    /// Completed segments per second.
    pub segments_per_second_by_minute: Vec<f64>,
    /// job_segments with its indexes, in MB, at the end of each minute.
    pub job_segments_mb_by_minute: Vec<f64>,
    /// jobs with its indexes, in MB, at the end of each minute (the product's records: it
    /// grows with every job by design).
    pub jobs_mb_by_minute: Vec<f64>,
}

/// Segments per job of the soak.
pub(super) const SOAK_SEGMENTS: u32 = 10;
/// Minutes of the saturated run that gives the soak's peak; the first is left out of it.
pub(super) const PEAK_MINUTES: u64 = 3;
/// Segments inserted and not yet done while the worker runs saturated: about half a
/// second of its work, so it never runs dry between two inserts 100 ms apart. Topped up
/// to this, not to a number of plans waiting: a worker claims job-level steps before
/// segments, so with plans always waiting it planned far ahead of what it ran (1.4 million
/// segments pending after 3 minutes) and its rate fell to 4,000 segments/s as claims
/// walked ever more jobs.
const SATURATED_BACKLOG: f64 = 5_000.0;

/// What the soak's load does to one worker.
#[derive(Clone, Copy)]
pub(super) enum Load {
    /// Jobs inserted at this many segments/s.
    Rate(f64),
    /// Jobs inserted as the worker takes them, so that work always waits.
    Saturated,
}

/// Puts `load` on one worker of `worker`, an `octavia-worker` (jobs of [`SOAK_SEGMENTS`], inserted every 100 ms) for
/// `minutes`, with finished segments pruned after 60 s, and samples throughput and table
/// sizes each minute.
pub(super) async fn soak(worker: &Path, url: &str, load: Load, minutes: u64) -> Result<Minutes> {
    const SEGMENTS: u32 = SOAK_SEGMENTS;
    let pool = pool(url)?;
    let mut client = pool.get().await?;
    let mut set = WorkerSet::start(
        worker,
        url,
        1,
        64,
        QUEUE_JOB_TYPES,
        &["--set", "worker.segment_retention_seconds=60"],
    )?;
    let sizes = |row: Option<tokio_postgres::Row>| {
        row.map(|r| {
            (
                r.get::<_, i64>(0) as f64 / 1e6,
                r.get::<_, i64>(1) as f64 / 1e6,
            )
        })
        .unwrap_or_default()
    };
    // The saturated load reads the worker's metrics, and no minute counts its start.
    set.wait_started().await?;
    let mut owed = 0.0;
    let mut inserted = 0.0;
    let mut report = Minutes::default();
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
    let mut done_before = measure::completed_segments(&client).await?;
    let mut minute_started = Instant::now();
    while report.segments_per_second_by_minute.len() < minutes as usize {
        tick.tick().await;
        set.check()?;
        let n = match load {
            Load::Rate(rate) => {
                owed += rate / SEGMENTS as f64 / 10.0;
                let n = owed.floor();
                owed -= n;
                n as u32
            }
            Load::Saturated => {
                let backlog = inserted - set.segments_recorded().await?;
                ((SATURATED_BACKLOG - backlog) / SEGMENTS as f64).max(0.0) as u32
            }
        };
        if n > 0 {
            measure::enqueue_noop(&mut client, n, SEGMENTS).await?;
            inserted += (n * SEGMENTS) as f64;
        }
        if minute_started.elapsed().as_secs() >= 60 {
            let done = measure::completed_segments(&client).await?;
            let seconds = minute_started.elapsed().as_secs_f64();
            report
                .segments_per_second_by_minute
                .push((done - done_before) as f64 / seconds);
            let (segments_mb, jobs_mb) =
                sizes(db::query_opt(&client, sql::BENCH_TABLE_SIZES, &[]).await?);
            report.job_segments_mb_by_minute.push(segments_mb);
            report.jobs_mb_by_minute.push(jobs_mb);
            eprintln!(
                "  minute {}: {:.0} segments/s, job_segments {segments_mb:.1} MB, jobs {jobs_mb:.1} MB",
                report.segments_per_second_by_minute.len(),
                report.segments_per_second_by_minute.last().unwrap_or(&0.0)
            );
            done_before = done;
            minute_started = Instant::now();
        }
    }
    drop(set);
    Ok(report)
}
