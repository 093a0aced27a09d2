//! Random SIGKILLs: worker processes killed and replaced at random while noop jobs (some
//! of whose attempts fail) run. What a kill leaves leased must be rescued and completed
//! elsewhere; nothing else may run again.

use super::processes::{Binaries, Logs, running, start_worker};
use super::report::{ChaosReport, FaultRecord, Recovery};
use super::{CompletedWatch, db_clock, seconds_since, settle};
use crate::process::Child;
use crate::sql;
use octavia::config::Config;
use octavia::error::Result;
use octavia::queue::enqueue::{self, NewJob};
use std::collections::HashSet;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// What the kills scenario does; the defaults are `bin/chaos`'s long run.
#[derive(Debug, Clone, clap::Args)]
pub struct KillsOptions {
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
    /// Stop the kills after this many seconds (or once the work is done), then let the
    /// work finish
    #[arg(long, default_value_t = 60)]
    pub chaos_seconds: u64,
    /// Give up if the work is not done this long after the kills stop
    #[arg(long, default_value_t = 300)]
    pub settle_seconds: u64,
    /// Credits each job costs (reserved, refunded if it fails)
    #[arg(long, default_value_t = 1)]
    pub cost: i64,
}

/// A kill, to be measured once the work is done.
struct Kill {
    record: FaultRecord,
    held: Vec<Uuid>,
    at_db: chrono::DateTime<chrono::Utc>,
}

/// Runs the scenario on `url`, a migrated database of its own.
pub async fn random_kills(url: &str, opts: &KillsOptions, bins: &Binaries) -> Result<ChaosReport> {
    let started = Instant::now();
    let mut report = ChaosReport::new("kills");
    let logs = Logs::new("kills")?;
    let mut config = Config::default();
    config.database.url = url.to_string();
    config.database.pool_size = 4;
    let pool = octavia::db::pool(&config.database)?;
    let mut client = pool.get().await?;

    let user = octavia::users::create(
        &client,
        &format!("chaos-kills-{}@example.com", Uuid::new_v4().simple()),
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

    // noop only: a worker that may run pipeline jobs checks its engines at start-up,
    // which would slow every replacement down.
    let settings = vec!["worker.job_types=noop".to_string()];
    let mut generation = 0usize;
    let start = |generation: &mut usize| {
        let id = format!("chaos-{generation}");
        *generation += 1;
        start_worker(&bins.worker, url, &id, opts.concurrency, &settings, &logs)
    };
    let mut workers: Vec<Child> = Vec::new();
    for _ in 0..opts.workers {
        workers.push(start(&mut generation)?);
    }
    let mut watch = CompletedWatch::default();
    let mut kills: Vec<Kill> = Vec::new();
    let chaos_until = Instant::now() + Duration::from_secs(opts.chaos_seconds);
    let mut next_kill = Instant::now() + Duration::from_millis(opts.kill_every_ms);
    while Instant::now() < chaos_until {
        tokio::time::sleep(Duration::from_millis(100)).await;
        running(&mut workers, &logs)?;
        watch.check(&client, &mut report.violations).await?;
        if Instant::now() >= next_kill {
            let victim = rand::random_range(0..workers.len());
            let mut dead = workers.swap_remove(victim);
            let at = seconds_since(started);
            dead.kill();
            let at_db = db_clock(&pool).await?;
            // What the dead worker leased is what it had in flight. Looked at twice: the
            // server finishes a statement a killed client had sent (a claim may commit
            // just after the kill), and a lease renewed late may be rescued soon after.
            let mut held = leases_of(&client, dead.name()).await?;
            tokio::time::sleep(Duration::from_millis(150)).await;
            for id in leases_of(&client, dead.name()).await? {
                if !held.contains(&id) {
                    held.push(id);
                }
            }
            kills.push(Kill {
                record: FaultRecord {
                    kind: "sigkill",
                    at_seconds: at,
                    outage_seconds: 0.0,
                    in_flight: held.len(),
                    recovery: Recovery::default(),
                },
                held,
                at_db,
            });
            workers.push(start(&mut generation)?);
            next_kill += Duration::from_millis(opts.kill_every_ms);
        }
        if super::unfinished(&client).await? == 0 {
            break;
        }
    }

    report.seconds_to_settle = settle(
        &pool,
        &mut watch,
        opts.settle_seconds,
        &mut report,
        &mut workers,
        &logs,
    )
    .await?;
    for w in &mut workers {
        if !w.is_alive() {
            report
                .violations
                .push(format!("worker {} died on its own", w.name()));
        }
    }
    drop(workers);

    let mut in_flight = HashSet::new();
    for mut kill in kills {
        let row = octavia::db::query(&client, sql::WORK_BACK_AFTER, &[&kill.held, &kill.at_db])
            .await?
            .into_iter()
            .next();
        if let Some(row) = row {
            kill.record.recovery.work_back_seconds = row.get(0);
            let not_done: i64 = row.get(1);
            if not_done > 0 && opts.fail_rate == 0.0 {
                report.violations.push(format!(
                    "{not_done} segments held by a killed worker never completed"
                ));
            }
        }
        in_flight.extend(kill.held);
        report.faults.push(kill.record);
    }
    report.tally(&client, &in_flight).await?;
    // Without simulated failures, only a kill can make a segment run again.
    if opts.fail_rate == 0.0 && report.segments.rerun_not_in_flight > 0 {
        report.violations.push(format!(
            "{} segments ran again though no kill caught them in flight",
            report.segments.rerun_not_in_flight
        ));
    }
    report.seconds = seconds_since(started);
    if !report.ok() {
        report.logs = Some(logs.keep());
    }
    Ok(report)
}

/// Segments `worker` holds leased.
async fn leases_of(client: &deadpool_postgres::Object, worker: &str) -> Result<Vec<Uuid>> {
    Ok(
        octavia::db::query(client, sql::LEASES_OF_WORKER, &[&worker])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect(),
    )
}
