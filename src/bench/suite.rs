//! `octavia bench --suite` (run by `bin/bench`): every figure of the performance targets
//! in one run on one PostgreSQL, each beside its target and, for the queue's rates, its
//! ratio to the pgbench ceiling.

use super::api_load::{self, ApiLoad};
use super::ceiling::{self, Ceiling};
use super::measure::{self, Throughput, pool, sibling};
use super::to_json;
use crate::error::{Error, Result};
use crate::pg::ScratchDatabase;
use crate::{db, sql};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;
use uuid::Uuid;

#[derive(clap::Args, Debug, Clone)]
pub struct SuiteArgs {
    /// Seconds each pgbench ceiling script runs
    #[arg(long, default_value_t = 10)]
    pub ceiling_seconds: u64,
    /// Also measure the claim rate with 1,000,000 queued segments and 5,000,000 finished rows
    #[arg(long)]
    pub scale: bool,
    /// Also run at 80 % of the sustained peak rate (jobs of 10 segments, measured over 3
    /// saturated minutes first) for this many minutes
    #[arg(long, default_value_t = 0)]
    pub soak_minutes: u64,
    /// Where the JSON report is written
    #[arg(long, default_value = "target/bench/latest.json")]
    pub json: PathBuf,
    /// Measure only these figures (comma-separated: ceiling, segments, jobs, latency,
    /// enqueue, api, rss); the others are null in the report
    #[arg(long, value_delimiter = ',', value_enum)]
    pub only: Vec<Figure>,
}

/// A figure of the suite, for `--only`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Figure {
    Ceiling,
    Segments,
    Jobs,
    Latency,
    Enqueue,
    Api,
    Rss,
}

/// Every figure of the suite; a figure left out with `--only` is `None`.
#[derive(Debug, Serialize)]
pub struct SuiteReport {
    pub ceiling: Option<Ceiling>,
    /// One worker process, --concurrency 64, 10 jobs of 10,000 segments inserted planned:
    /// their segments and finalizes, on rows that exist before the clock starts, as the
    /// ceiling's do.
    pub segments: Option<Throughput>,
    /// The same jobs planned by the worker in the run: each segment also inserted.
    pub segments_with_plans: Option<Throughput>,
    /// One worker process, --concurrency 64, 20,000 jobs of one segment (plan, segment,
    /// finalize each).
    pub jobs: Option<Throughput>,
    pub pickup_latency_ms_p50: Option<f64>,
    pub pickup_latency_ms_p99: Option<f64>,
    /// `octavia jobs enqueue --count 100000`, the whole command.
    pub enqueue_jobs_per_second: Option<f64>,
    pub api: Option<ApiLoad>,
    /// Peak RSS of one worker at --concurrency 256.
    pub worker_rss_mb_at_256: Option<f64>,
    /// Minutes at 80 % of the peak rate of jobs of 10 segments, with finished segments
    /// pruned after 60 s.
    pub soak: Option<Soak>,
    /// Segments/s with 1,000,000 queued and 5,000,000 finished rows, and with only
    /// 400,000 queued, each over 1,000 running jobs, in alternating rounds (see `scale`).
    pub scale: Option<Scale>,
    /// What would keep the server from vacuuming the queue's tables (see
    /// [`crate::queue::admin::vacuum_problems`]); empty when nothing is wrong.
    pub vacuum_problems: Vec<String>,
}

/// The soak: the queue under a steady 80 % of the most it sustains.
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

#[derive(Debug, Serialize)]
pub struct Scale {
    /// The mean of the rounds below.
    pub small_tables_segments_per_second: f64,
    pub large_tables_segments_per_second: f64,
    /// Each round's rate, in the order measured: small, large, large, small, small,
    /// large.
    pub small_tables_by_round: Vec<f64>,
    pub large_tables_by_round: Vec<f64>,
}

pub async fn run(args: &SuiteArgs) -> Result<()> {
    let started = Instant::now();
    let vacuum_problems = on_scratch(|url| async move {
        let pool = pool(&url)?;
        let client = pool.get().await?;
        crate::queue::admin::vacuum_problems(&client).await
    })
    .await?;
    if !vacuum_problems.is_empty() {
        let problems = vacuum_problems.join("; ");
        if args.soak_minutes > 0 {
            return Err(Error::Invalid(format!(
                "the soak measures whether the queue holds steady as its tables churn, which \
                 needs autovacuum, and here {problems}. Turn it on (ALTER SYSTEM SET \
                 autovacuum = on; SELECT pg_reload_conf();) or unset DATABASE_URL to measure \
                 on a throwaway cluster"
            )));
        }
        eprintln!("warning: {problems}; figures fall as dead rows pile up");
    }
    let wanted = |f: Figure| args.only.is_empty() || args.only.contains(&f);
    let ceiling = if wanted(Figure::Ceiling) {
        eprintln!("ceiling (pgbench, {} s per script)…", args.ceiling_seconds);
        // The configuration the benchmark's workers read (they get no --config).
        let async_commit = crate::config::Loader::default()
            .load()
            .map_err(|e| Error::Invalid(e.to_string()))?
            .worker
            .async_commit;
        Some(ceiling::measure(args.ceiling_seconds, 8, async_commit).await?)
    } else {
        None
    };
    let segments = figure(wanted(Figure::Segments), "segments/s", |url| async move {
        measure::throughput(&url, 10, 10_000, 64, 1, true).await
    })
    .await?;
    let segments_with_plans = figure(
        wanted(Figure::Segments),
        "segments/s with their plans",
        |url| async move { measure::throughput(&url, 10, 10_000, 64, 1, false).await },
    )
    .await?;
    let jobs = figure(wanted(Figure::Jobs), "jobs/s", |url| async move {
        measure::throughput(&url, 20_000, 1, 64, 1, false).await
    })
    .await?;
    let latency = figure(
        wanted(Figure::Latency),
        "pickup latency",
        |url| async move { measure::pickup_latency(&url, 200).await },
    )
    .await?;
    let enqueue = figure(
        wanted(Figure::Enqueue),
        "octavia jobs enqueue --count 100000",
        |url| async move { cli_enqueue(&url, 100_000).await },
    )
    .await?;
    let api = figure(
        wanted(Figure::Api),
        "POST /api/jobs under wrk",
        |url| async move { api_load::measure(&url, 1000, 32, 10).await },
    )
    .await?;
    let rss = figure(
        wanted(Figure::Rss),
        "worker RSS at --concurrency 256",
        |url| async move { measure::throughput(&url, 20, 2000, 256, 1, false).await },
    )
    .await?
    .map(|t| t.peak_rss_mb);
    let scale = if args.scale {
        eprintln!("claim rate on small and large tables…");
        Some(scale().await?)
    } else {
        None
    };
    let soak = if args.soak_minutes > 0 {
        // The same jobs all inserted before a short run on empty tables: a burst, shown
        // beside the sustained peak.
        let burst = on_scratch(|url| async move {
            measure::throughput(&url, 3000, SOAK_SEGMENTS, 64, 1, false).await
        })
        .await?
        .segments_per_second;
        eprintln!("soak's peak: {PEAK_MINUTES} minutes saturated…");
        let saturated =
            on_scratch(|url| async move { soak(&url, Load::Saturated, PEAK_MINUTES).await })
                .await?;
        let peak = mean(&saturated.segments_per_second_by_minute[1..]);
        let rate = 0.8 * peak;
        eprintln!(
            "soak: {} minutes at {rate:.0} segments/s (80 % of {peak:.0}; burst {burst:.0})…",
            args.soak_minutes
        );
        let minutes = args.soak_minutes;
        let run =
            on_scratch(|url| async move { soak(&url, Load::Rate(rate), minutes).await }).await?;
        let rates = &run.segments_per_second_by_minute;
        let m = mean(rates);
        let max_deviation = rates.iter().map(|r| (r - m).abs() / m).fold(0.0, f64::max);
        Some(Soak {
            offered_segments_per_second: rate,
            sustained_peak_segments_per_second: peak,
            burst_peak_segments_per_second: burst,
            saturated,
            max_deviation,
            run,
        })
    } else {
        None
    };
    let report = SuiteReport {
        ceiling,
        segments,
        segments_with_plans,
        jobs,
        pickup_latency_ms_p50: latency.map(|l| l.0),
        pickup_latency_ms_p99: latency.map(|l| l.1),
        enqueue_jobs_per_second: enqueue,
        api,
        worker_rss_mb_at_256: rss,
        soak,
        scale,
        vacuum_problems,
    };
    let json = to_json(&report)?;
    if let Some(dir) = args.json.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.json, &json)?;
    println!("{json}");
    println!("{}", table(&report));
    eprintln!(
        "{} s in all; JSON in {}",
        started.elapsed().as_secs(),
        args.json.display()
    );
    Ok(())
}

/// Runs `f` on a fresh database when `wanted` (saying so with `label`), else nothing.
async fn figure<T, F, Fut>(wanted: bool, label: &str, f: F) -> Result<Option<T>>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    if !wanted {
        return Ok(None);
    }
    eprintln!("{label}…");
    Ok(Some(on_scratch(f).await?))
}

/// Runs `f` on a fresh database, dropped afterwards.
async fn on_scratch<T, F, Fut>(f: F) -> Result<T>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let db = ScratchDatabase::create("bench").await?;
    let outcome = f(db.url.clone()).await;
    db.drop().await?;
    outcome
}

/// Jobs/s of the `octavia jobs enqueue` command itself, start to exit.
async fn cli_enqueue(url: &str, count: u32) -> Result<f64> {
    let pool = pool(url)?;
    let client = pool.get().await?;
    crate::users::create(&client, "enqueue@example.com", "bench-password", "user", 0).await?;
    let started = Instant::now();
    let out = std::process::Command::new(sibling("octavia")?)
        .args([
            "--no-migrate",
            "jobs",
            "enqueue",
            "--user",
            "enqueue@example.com",
        ])
        .args(["--type", "noop", "--count", &count.to_string()])
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "warn")
        .output()?;
    let seconds = started.elapsed().as_secs_f64();
    if !out.status.success() {
        return Err(Error::Invalid(format!(
            "octavia jobs enqueue failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(count as f64 / seconds)
}

/// Seconds each round of the claim rate is measured, after a second of warm-up.
const SCALE_ROUND_SECONDS: u64 = 3;

/// The claim rate on small tables (1,000 running jobs of 400 pending segments) and on large
/// ones (1,000 running jobs of 1,000 pending segments beside 5,000 completed jobs of 1,000
/// segments), both over 1,000 jobs so that only the tables' size differs. Measured in
/// rounds that alternate between the two databases (small, large, large, small, small,
/// large), so the machine's slow and fast minutes fall on both alike: measured one after
/// the other, minutes apart with the large fill between them, the same binary gave 77 %
/// and 114 % on different runs.
async fn scale() -> Result<Scale> {
    let small = ScratchDatabase::create("bench").await?;
    let large = match ScratchDatabase::create("bench").await {
        Ok(db) => db,
        Err(e) => {
            small.drop().await?;
            return Err(e);
        }
    };
    let outcome = async {
        fill(&small.url, 0, 0, 1000, 400).await?;
        fill(&large.url, 5000, 1000, 1000, 1000).await?;
        let mut report = Scale {
            small_tables_segments_per_second: 0.0,
            large_tables_segments_per_second: 0.0,
            small_tables_by_round: Vec::new(),
            large_tables_by_round: Vec::new(),
        };
        for large_first in [false, true, false] {
            for is_large in [large_first, !large_first] {
                let (db, rounds) = if is_large {
                    (&large, &mut report.large_tables_by_round)
                } else {
                    (&small, &mut report.small_tables_by_round)
                };
                rounds.push(measure::claim_rate(&db.url, 64, SCALE_ROUND_SECONDS).await?);
            }
        }
        report.small_tables_segments_per_second = mean(&report.small_tables_by_round);
        report.large_tables_segments_per_second = mean(&report.large_tables_by_round);
        Ok(report)
    }
    .await;
    small.drop().await?;
    large.drop().await?;
    outcome
}

/// Fills the tables with `finished_jobs` completed jobs of `finished_segments` segments
/// each and `queued_jobs` running jobs of `queued_segments` pending segments each, then
/// vacuums and analyzes them.
async fn fill(
    url: &str,
    finished_jobs: i32,
    finished_segments: i32,
    queued_jobs: i32,
    queued_segments: i32,
) -> Result<()> {
    let pool = pool(url)?;
    let client = pool.get().await?;
    for (status, step, jobs, segments, seg_status) in [
        (
            "completed",
            "done",
            finished_jobs,
            finished_segments,
            "completed",
        ),
        (
            "running",
            "segments",
            queued_jobs,
            queued_segments,
            "pending",
        ),
    ] {
        let mut left = jobs;
        while left > 0 {
            let n = left.min(100);
            let ids: Vec<Uuid> = db::query(
                &client,
                sql::BENCH_FILL_JOBS,
                &[&status, &step, &segments, &n],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
            db::execute(
                &client,
                sql::BENCH_FILL_SEGMENTS,
                &[&ids, &seg_status, &segments],
            )
            .await?;
            left -= n;
        }
    }
    client.batch_execute("VACUUM ANALYZE").await?;
    Ok(())
}

/// The mean of `v`, 0 when it is empty.
fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// Segments per job of the soak.
const SOAK_SEGMENTS: u32 = 10;
/// Minutes of the saturated run that gives the soak's peak; the first is left out of it.
const PEAK_MINUTES: u64 = 3;
/// Segments inserted and not yet done while the worker runs saturated: about half a
/// second of its work, so it never runs dry between two inserts 100 ms apart. Topped up
/// to this, not to a number of plans waiting: a worker claims job-level steps before
/// segments, so with plans always waiting it planned far ahead of what it ran (1.4 million
/// segments pending after 3 minutes) and its rate fell to 4,000 segments/s as claims
/// walked ever more jobs.
const SATURATED_BACKLOG: f64 = 5_000.0;

/// What the soak's load does to one worker.
#[derive(Clone, Copy)]
enum Load {
    /// Jobs inserted at this many segments/s.
    Rate(f64),
    /// Jobs inserted as the worker takes them, so that work always waits.
    Saturated,
}

/// Puts `load` on one worker (jobs of [`SOAK_SEGMENTS`], inserted every 100 ms) for
/// `minutes`, with finished segments pruned after 60 s, and samples throughput and table
/// sizes each minute.
async fn soak(url: &str, load: Load, minutes: u64) -> Result<Minutes> {
    const SEGMENTS: u32 = SOAK_SEGMENTS;
    let pool = pool(url)?;
    let mut client = pool.get().await?;
    let set = measure::WorkerSet::start(
        url,
        1,
        64,
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

fn table(r: &SuiteReport) -> String {
    let ceiling = r.ceiling.as_ref().map(|c| c.batch_rows_per_second);
    let vs = |v: f64| ceiling.map_or(String::new(), |c| format!("{:.0} %", 100.0 * v / c));
    let mut rows: Vec<(String, String, String, String)> = Vec::new();
    if let Some(c) = &r.ceiling {
        // The commit mode is the worker's (see ceiling.rs).
        let commits = if c.synchronous_commit {
            ""
        } else {
            ", async commit"
        };
        rows.push((
            format!("ceiling: claim+complete 100 rows/statement{commits}"),
            format!("{:.0} rows/s", c.batch_rows_per_second),
            "".into(),
            "100 %".into(),
        ));
        rows.push((
            format!("ceiling: claim+complete 1 row/statement{commits}"),
            format!("{:.0} rows/s", c.one_row_per_second),
            "".into(),
            vs(c.one_row_per_second),
        ));
    }
    if let Some(t) = &r.segments {
        rows.push((
            "no-op segments/s, 1 worker, --concurrency 64, planned".into(),
            format!("{:.0}", t.segments_per_second),
            "≥ 30,000 and ≥ 60 % of ceiling".into(),
            vs(t.segments_per_second),
        ));
    }
    if let Some(t) = &r.segments_with_plans {
        rows.push((
            "  the same, planned by the worker during the run".into(),
            format!("{:.0}", t.segments_per_second),
            "".into(),
            vs(t.segments_per_second),
        ));
    }
    if let Some(t) = &r.jobs {
        rows.push((
            "no-op jobs/s end to end (plan+segment+finalize)".into(),
            format!("{:.0}", t.jobs_per_second),
            "≥ 10,000".into(),
            "".into(),
        ));
    }
    if let (Some(p50), Some(p99)) = (r.pickup_latency_ms_p50, r.pickup_latency_ms_p99) {
        rows.push((
            "pickup latency p50 / p99".into(),
            format!("{p50:.2} / {p99:.2} ms"),
            "≤ 3 / ≤ 20 ms".into(),
            "".into(),
        ));
    }
    if let Some(e) = r.enqueue_jobs_per_second {
        rows.push((
            "octavia jobs enqueue of 100,000 jobs".into(),
            format!("{e:.0} jobs/s"),
            "≥ 50,000".into(),
            "".into(),
        ));
    }
    if let Some(a) = &r.api {
        rows.push((
            format!(
                "POST /api/jobs, {} users, {} connections",
                a.users, a.connections
            ),
            format!(
                "{:.0} req/s, p99 {:.1} ms, {} errors",
                a.requests_per_second, a.latency_ms_p99, a.errors
            ),
            "≥ 2,000, ≤ 50 ms, 0".into(),
            "".into(),
        ));
    }
    if let Some(rss) = r.worker_rss_mb_at_256 {
        rows.push((
            "worker RSS at --concurrency 256".into(),
            format!("{rss:.1} MB"),
            "≤ 64 MB".into(),
            "".into(),
        ));
    }
    if let Some(s) = &r.soak {
        let sizes = &s.run.job_segments_mb_by_minute;
        let first = sizes.first().copied().unwrap_or(0.0);
        let last = sizes.last().copied().unwrap_or(0.0);
        rows.push((
            format!(
                "soak's peak: {} min saturated, minutes 2+ (burst)",
                s.saturated.segments_per_second_by_minute.len()
            ),
            format!(
                "{:.0} segments/s ({:.0})",
                s.sustained_peak_segments_per_second, s.burst_peak_segments_per_second
            ),
            "".into(),
            "".into(),
        ));
        rows.push((
            format!(
                "{} min at 80 % of peak ({:.0} segments/s offered)",
                s.run.segments_per_second_by_minute.len(),
                s.offered_segments_per_second
            ),
            format!(
                "±{:.1} %, job_segments {first:.0}→{last:.0} MB",
                100.0 * s.max_deviation
            ),
            "steady within 10 %, size flat".into(),
            "".into(),
        ));
    }
    if let Some(s) = &r.scale {
        rows.push((
            "claim rate, 1M queued + 5M finished vs small tables".into(),
            format!(
                "{:.0} vs {:.0} /s",
                s.large_tables_segments_per_second, s.small_tables_segments_per_second
            ),
            "within 20 %".into(),
            format!(
                "{:.0} %",
                100.0 * s.large_tables_segments_per_second / s.small_tables_segments_per_second
            ),
        ));
    }
    // Column widths: figure, measured, target, vs ceiling.
    let [w0, w1, w2, w3] = [58, 34, 30, 10];
    let line = |a: &str, b: &str, t: &str, v: &str| {
        format!("| {a:<w0$} | {b:>w1$} | {t:<w2$} | {v:>w3$} |\n")
    };
    let mut out = line("figure", "measured", "target", "vs ceiling");
    out.push_str(&format!(
        "|{}|{}|{}|{}|\n",
        "-".repeat(w0 + 2),
        "-".repeat(w1 + 2),
        "-".repeat(w2 + 2),
        "-".repeat(w3 + 2)
    ));
    for (a, b, t, v) in rows {
        out.push_str(&line(&a, &b, &t, &v));
    }
    for problem in &r.vacuum_problems {
        out.push_str(&format!("\nwarning: {problem}\n"));
    }
    out
}
