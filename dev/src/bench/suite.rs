//! `octavia-dev bench --suite` (run by `bin/bench`): every figure of the performance targets
//! in one run on one PostgreSQL, each beside its target and, for the queue's rates, its
//! ratio to the pgbench ceiling.

use super::api_load::{self, ApiLoad};
use super::ceiling::{self, Ceiling};
use super::fairness::{self, Fairness};
use super::measure::{self, Throughput, mean, pool, to_json};
use super::scale::{self, Scale};
use super::soak::{self, Load, PEAK_MINUTES, SOAK_SEGMENTS, Soak};
use crate::cluster::ScratchDatabase;
use octavia::error::{Error, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

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
    /// enqueue, api, rss, fairness); the others are null in the report
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
    Fairness,
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
    /// The claim fair between users against the one fair between jobs only, over 1,000
    /// users × 10 jobs × 100 segments (see `fairness`).
    pub fairness: Option<Fairness>,
    /// Minutes at 80 % of the peak rate of jobs of 10 segments, with finished segments
    /// pruned after 60 s.
    pub soak: Option<Soak>,
    /// Segments/s with 1,000,000 queued and 5,000,000 finished rows, and with only
    /// 400,000 queued, each over 1,000 running jobs, in alternating rounds (see `scale`).
    pub scale: Option<Scale>,
    /// What would keep the server from vacuuming the queue's tables (see
    /// [`octavia::queue::admin::vacuum_problems`]); empty when nothing is wrong.
    pub vacuum_problems: Vec<String>,
}

/// The soak: the queue under a steady 80 % of the most it sustains.
pub async fn run(args: &SuiteArgs) -> Result<()> {
    let started = Instant::now();
    let worker = crate::process::sibling("octavia-worker")?;
    let worker: &Path = &worker;
    let vacuum_problems = on_scratch(|url| async move {
        let pool = pool(&url)?;
        let client = pool.get().await?;
        octavia::queue::admin::vacuum_problems(&client).await
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
        let async_commit = octavia::config::Loader::default()
            .load()
            .map_err(|e| Error::Invalid(e.to_string()))?
            .worker
            .async_commit;
        Some(ceiling::measure(args.ceiling_seconds, 8, async_commit).await?)
    } else {
        None
    };
    let segments = figure(wanted(Figure::Segments), "segments/s", |url| async move {
        measure::throughput(worker, &url, 10, 10_000, 64, 1, true).await
    })
    .await?;
    let segments_with_plans = figure(
        wanted(Figure::Segments),
        "segments/s with their plans",
        |url| async move { measure::throughput(worker, &url, 10, 10_000, 64, 1, false).await },
    )
    .await?;
    let jobs = figure(wanted(Figure::Jobs), "jobs/s", |url| async move {
        measure::throughput(worker, &url, 20_000, 1, 64, 1, false).await
    })
    .await?;
    let latency = figure(
        wanted(Figure::Latency),
        "pickup latency",
        |url| async move { measure::pickup_latency(worker, &url, 200).await },
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
        |url| async move { measure::throughput(worker, &url, 20, 2000, 256, 1, false).await },
    )
    .await?
    .map(|t| t.peak_rss_mb);
    let fairness = if wanted(Figure::Fairness) {
        eprintln!("claim rate fair between users and between jobs…");
        Some(fairness::fairness().await?)
    } else {
        None
    };
    let scale = if args.scale {
        eprintln!("claim rate on small and large tables…");
        Some(scale::scale(worker).await?)
    } else {
        None
    };
    let soak = if args.soak_minutes > 0 {
        // The same jobs all inserted before a short run on empty tables: a burst, shown
        // beside the sustained peak.
        let burst = on_scratch(|url| async move {
            measure::throughput(worker, &url, 3000, SOAK_SEGMENTS, 64, 1, false).await
        })
        .await?
        .segments_per_second;
        eprintln!("soak's peak: {PEAK_MINUTES} minutes saturated…");
        let saturated = on_scratch(|url| async move {
            soak::soak(worker, &url, Load::Saturated, PEAK_MINUTES).await
        })
        .await?;
        let peak = mean(&saturated.segments_per_second_by_minute[1..]);
        let rate = 0.8 * peak;
        eprintln!(
            "soak: {} minutes at {rate:.0} segments/s (80 % of {peak:.0}; burst {burst:.0})…",
            args.soak_minutes
        );
        let minutes = args.soak_minutes;
        let run =
            on_scratch(
                |url| async move { soak::soak(worker, &url, Load::Rate(rate), minutes).await },
            )
            .await?;
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
        fairness,
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
    octavia::users::create(&client, "enqueue@example.com", "bench-password", "user", 0).await?;
    let started = Instant::now();
    let out = std::process::Command::new(crate::process::sibling("octavia")?)
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
    if let Some(f) = &r.fairness {
        rows.push((
            "claim rate fair by user vs by job, 1,000 users".into(),
            format!(
                "{:.0} vs {:.0} /s",
                f.user_fair_segments_per_second, f.job_fair_segments_per_second
            ),
            "within 10 %".into(),
            format!(
                "{:.0} %",
                100.0 * f.user_fair_segments_per_second / f.job_fair_segments_per_second
            ),
        ));
        rows.push((
            "  users served by the end, of 1,000 (by user / by job)".into(),
            format!("{} / {}", f.users_served_user_fair, f.users_served_job_fair),
            "".into(),
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
