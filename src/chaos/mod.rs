//! Fault scenarios against real worker processes, and the checks of Octavia's promises:
//! every job ends without a human, a completed segment is never run again, and every
//! user's ledger balances. `bin/chaos` runs them long; the tests run them short.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::queue::enqueue::{self, NewJob};
use crate::sql;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// What a scenario does.
#[derive(Debug, Clone, clap::Args)]
pub struct ChaosOptions {
    /// noop jobs to run
    #[arg(long, default_value_t = 2000)]
    pub jobs: u32,
    /// Segments per job
    #[arg(long, default_value_t = 5)]
    pub segments: u32,
    /// Milliseconds each segment takes
    #[arg(long, default_value_t = 20)]
    pub segment_ms: u64,
    /// Chance a segment attempt fails (retryably)
    #[arg(long, default_value_t = 0.1)]
    pub fail_rate: f64,
    /// Attempts per segment
    #[arg(long, default_value_t = 10)]
    pub max_attempts: i32,
    /// Worker processes
    #[arg(long, default_value_t = 3)]
    pub workers: usize,
    /// --concurrency of each worker
    #[arg(long, default_value_t = 8)]
    pub concurrency: u32,
    /// Kill (SIGKILL) and restart a worker this often, in milliseconds
    #[arg(long, default_value_t = 3000)]
    pub kill_every_ms: u64,
    /// Stop the faults after this many seconds, then let the work finish
    #[arg(long, default_value_t = 60)]
    pub chaos_seconds: u64,
    /// Give up if the work is not done this long after the faults stop
    #[arg(long, default_value_t = 300)]
    pub settle_seconds: u64,
    /// Credits each job costs (reserved, refunded if it fails)
    #[arg(long, default_value_t = 1)]
    pub cost: i64,
}

/// What a scenario observed.
#[derive(Debug, Default, Serialize)]
pub struct ChaosReport {
    pub jobs_by_status: BTreeMap<String, i64>,
    pub segments_by_status: BTreeMap<String, i64>,
    /// Worker kills.
    pub kills: usize,
    /// Segments leased by a worker at the moment it was killed: these, and only these
    /// (beside retried failures), run again.
    pub in_flight_at_kills: usize,
    /// Segment attempts beyond the first, all causes.
    pub extra_attempts: i64,
    /// Seconds from the end of the faults until every job ended.
    pub seconds_to_settle: f64,
    /// Promise violations; empty when every promise held.
    pub violations: Vec<String>,
}

impl ChaosReport {
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }
}

fn worker_exe() -> Result<PathBuf> {
    let exe = std::env::current_exe()?.with_file_name("octavia-worker");
    if exe.exists() {
        return Ok(exe);
    }
    Err(Error::Invalid(format!(
        "{} not found: build it with `cargo build --bins`",
        exe.display()
    )))
}

/// A worker process of the scenario; killed if still running when dropped.
struct WorkerProcess {
    id: String,
    child: Child,
}

impl WorkerProcess {
    fn start(exe: &Path, url: &str, id: &str, concurrency: u32) -> Result<WorkerProcess> {
        let child = Command::new(exe)
            .args(["--no-migrate", "--worker-id", id])
            .args(["--concurrency", &concurrency.to_string()])
            .args([
                "--set",
                "worker.lease_seconds=2",
                "--set",
                "worker.heartbeat_seconds=1",
            ])
            .args([
                "--set",
                "worker.rescue_interval_seconds=1",
                "--set",
                "worker.poll_interval_ms=200",
            ])
            .args([
                "--set",
                "worker.backoff_base_ms=50",
                "--set",
                "worker.backoff_max_ms=1000",
            ])
            .env("DATABASE_URL", url)
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()?;
        Ok(WorkerProcess {
            id: id.to_string(),
            child,
        })
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Watches completed segments: once completed, a segment's result and finish time must
/// never change (it was not run again).
#[derive(Default)]
struct CompletedWatch {
    seen: HashMap<
        Uuid,
        (
            Option<chrono::DateTime<chrono::Utc>>,
            Option<serde_json::Value>,
        ),
    >,
}

impl CompletedWatch {
    async fn check(
        &mut self,
        client: &deadpool_postgres::Object,
        violations: &mut Vec<String>,
    ) -> Result<()> {
        for row in crate::db::query(client, sql::COMPLETED_SEGMENTS, &[]).await? {
            let id: Uuid = row.get(0);
            let now = (row.get(1), row.get(2));
            match self.seen.get(&id) {
                Some(before) if *before != now => violations.push(format!(
                    "completed segment {id} changed: {before:?} then {now:?}"
                )),
                Some(_) => {}
                None => {
                    self.seen.insert(id, now);
                }
            }
        }
        Ok(())
    }
}

/// Random SIGKILLs: `workers` processes over `jobs` noop jobs; every `kill_every_ms` one
/// worker is killed and a new one started, for `chaos_seconds`; then the work is left to
/// finish and the promises are checked. `url` is a migrated database of the scenario's own;
/// `exe` is the `octavia-worker` binary.
pub async fn random_kills(url: &str, opts: &ChaosOptions, exe: &Path) -> Result<ChaosReport> {
    let mut config = Config::default();
    config.database.url = url.to_string();
    config.database.pool_size = 4;
    let pool = crate::db::pool(&config.database)?;
    let mut client = pool.get().await?;
    let mut report = ChaosReport::default();

    let user = crate::users::create(
        &client,
        &format!("chaos-{}@example.com", Uuid::new_v4().simple()),
        "chaos-password",
        "user",
        opts.jobs as i64 * opts.cost.max(0),
    )
    .await?;
    let options = serde_json::json!({
        "segments": opts.segments,
        "segment_ms": opts.segment_ms,
        "fail_rate": opts.fail_rate,
    });
    let mut left = opts.jobs as usize;
    while left > 0 {
        let n = left.min(5000);
        let jobs: Vec<NewJob> = (0..n)
            .map(|_| NewJob {
                user_id: Some(user),
                cost_credits: opts.cost,
                max_attempts: opts.max_attempts,
                ..NewJob::new("noop", options.clone())
            })
            .collect();
        let tx = client.transaction().await?;
        enqueue::insert(&tx, &jobs).await?;
        tx.commit().await?;
        left -= n;
    }

    let mut generation = 0usize;
    let mut workers: Vec<WorkerProcess> = Vec::new();
    for _ in 0..opts.workers {
        workers.push(WorkerProcess::start(
            exe,
            url,
            &format!("chaos-{generation}"),
            opts.concurrency,
        )?);
        generation += 1;
    }
    let mut watch = CompletedWatch::default();
    let chaos_until = Instant::now() + Duration::from_secs(opts.chaos_seconds);
    let mut next_kill = Instant::now() + Duration::from_millis(opts.kill_every_ms);
    while Instant::now() < chaos_until {
        tokio::time::sleep(Duration::from_millis(100)).await;
        watch.check(&client, &mut report.violations).await?;
        if Instant::now() >= next_kill {
            let victim = rand::random_range(0..workers.len());
            let mut dead = workers.swap_remove(victim);
            dead.kill();
            let held: i64 = crate::db::query(&client, sql::LEASES_OF_WORKER, &[&dead.id])
                .await?
                .first()
                .map(|r| r.get(0))
                .unwrap_or(0);
            report.kills += 1;
            report.in_flight_at_kills += held as usize;
            workers.push(WorkerProcess::start(
                exe,
                url,
                &format!("chaos-{generation}"),
                opts.concurrency,
            )?);
            generation += 1;
            next_kill += Duration::from_millis(opts.kill_every_ms);
        }
        if unfinished(&client).await? == 0 {
            break;
        }
    }

    let settling = Instant::now();
    let deadline = settling + Duration::from_secs(opts.settle_seconds);
    while unfinished(&client).await? > 0 {
        if Instant::now() > deadline {
            report.violations.push(format!(
                "{} jobs had not ended {} s after the faults stopped",
                unfinished(&client).await?,
                opts.settle_seconds
            ));
            break;
        }
        watch.check(&client, &mut report.violations).await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    report.seconds_to_settle = settling.elapsed().as_secs_f64();
    watch.check(&client, &mut report.violations).await?;
    drop(workers);

    for row in crate::db::query(&client, sql::QUEUE_STATS, &[]).await? {
        let kind: &str = row.get(0);
        let name: Option<String> = row.get(1);
        let n: Option<i64> = row.get(2);
        match kind {
            "jobs" => {
                report
                    .jobs_by_status
                    .insert(name.unwrap_or_default(), n.unwrap_or(0));
            }
            "segments" => {
                report
                    .segments_by_status
                    .insert(name.unwrap_or_default(), n.unwrap_or(0));
            }
            _ => {}
        }
    }
    report.extra_attempts = crate::db::query(&client, sql::EXTRA_ATTEMPTS, &[])
        .await?
        .first()
        .map(|r| r.get::<_, i64>(0))
        .unwrap_or(0);
    report.violations.extend(check_ledgers(&client).await?);
    Ok(report)
}

async fn unfinished(client: &deadpool_postgres::Object) -> Result<i64> {
    Ok(
        crate::db::query(client, sql::COUNT_UNFINISHED_JOBS, &[&false])
            .await?
            .first()
            .map(|r| r.get(0))
            .unwrap_or(0),
    )
}

/// Promise 3: for every user, the balance equals the sum of the ledger and is not negative;
/// each job run has at most one reservation and one refund (the unique index guarantees
/// it; this re-checks the data), and no refund without a reservation.
pub async fn check_ledgers(client: &deadpool_postgres::Object) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for row in crate::db::query(client, sql::LEDGER_PROBLEMS, &[]).await? {
        problems.push(row.get::<_, String>(0));
    }
    Ok(problems)
}

/// `octavia chaos kills`: [`random_kills`] on a scratch database, printing the report as
/// JSON. Fails when a promise was broken.
pub async fn run_kills(opts: &ChaosOptions) -> Result<()> {
    let db = crate::pg::ScratchDatabase::create("chaos").await?;
    let outcome = random_kills(&db.url, opts, &worker_exe()?).await;
    db.drop().await?;
    let report = outcome?;
    println!(
        "{}",
        serde_json::to_string_pretty(&report).map_err(|e| Error::Invalid(e.to_string()))?
    );
    if !report.ok() {
        return Err(Error::Invalid(format!(
            "{} promise violations",
            report.violations.len()
        )));
    }
    Ok(())
}
