//! Fault scenarios against real processes, and the checks of Octavia's promises: every
//! job ends without a human, a completed segment is never run again, every user's ledger
//! balances, and no process dies of a fault outside it. `bin/chaos` runs them long
//! (`octavia-dev chaos <scenario>`); the tests in `tests/it/resilience/` run them short.
//!
//! - `kills`: worker processes SIGKILLed and replaced at random ([`random_kills`]);
//! - `database`: PostgreSQL restarted or crashed, or every connection terminated, under
//!   three workers and the API ([`database_faults`]);
//! - `storage`: the S3 server stopped under pipeline jobs, then for good
//!   ([`storage_outages`]);
//! - [`s3fs`]: the S3 server that scenario (and the tests) use.
//!
//! Each returns a [`ChaosReport`]: jobs by terminal status, segments re-run and why, every
//! fault with the time things took to recover after it, the ledger per user, and the
//! violations seen. A process of the scenario that exits on its own (a worker that cannot
//! start, one that dies of a fault) fails it at once with that process's last lines
//! instead: nothing it would go on to measure could be trusted.

mod client;
mod database;
mod kills;
mod processes;
mod report;
pub mod s3fs;
mod storage;

pub use database::{DatabaseFault, DatabaseOptions, database_faults};
pub use kills::{KillsOptions, random_kills};
pub use processes::Binaries;
pub use report::{ApiFigures, ChaosReport, FaultRecord, Ledger, Recovery, SegmentFigures};
pub use storage::{StorageOptions, storage_outages};

use crate::process::Child;
use crate::sql;
use deadpool_postgres::Pool;
use octavia::error::{Error, Result};
use processes::Logs;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// `octavia-dev chaos <scenario>`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Scenario {
    /// Kill (SIGKILL) and replace worker processes at random while noop jobs run
    Kills(KillsOptions),
    /// Restart PostgreSQL (`pg_ctl restart -m fast`, and crash it then start it again)
    /// under three workers and the API; always on a throwaway cluster of its own
    Restarts(DatabaseOptions),
    /// Terminate every connection (pg_terminate_backend) again and again under three
    /// workers and the API
    Connections(DatabaseOptions),
    /// Stop the S3 server (s3s-fs) while pipeline jobs run, then for good
    Storage(StorageOptions),
}

/// Runs `scenario` on a scratch database (DATABASE_URL's server, or a throwaway cluster),
/// prints its report as JSON on stdout and a summary on stderr, and fails when a promise
/// was broken.
pub async fn run_cli(scenario: Scenario) -> Result<()> {
    let bins = Binaries::beside_this_program()?;
    let db = match &scenario {
        Scenario::Restarts(_) => {
            crate::cluster::ScratchDatabase::create_on_own_cluster("chaos").await?
        }
        _ => crate::cluster::ScratchDatabase::create("chaos").await?,
    };
    let outcome = match &scenario {
        Scenario::Kills(o) => random_kills(&db.url, o, &bins).await,
        Scenario::Restarts(o) => {
            let cluster = db.cluster.clone();
            database_faults(&db.url, cluster.as_ref(), DatabaseFault::Restarts, o, &bins).await
        }
        Scenario::Connections(o) => {
            database_faults(&db.url, None, DatabaseFault::Terminations, o, &bins).await
        }
        Scenario::Storage(o) => storage_outages(&db.url, o, &bins).await,
    };
    db.drop().await?;
    let report = outcome?;
    println!(
        "{}",
        serde_json::to_string_pretty(&report).map_err(|e| Error::Invalid(e.to_string()))?
    );
    eprint!("{}", report.summary());
    if !report.ok() {
        return Err(Error::Invalid(format!(
            "{} promise violations",
            report.violations.len()
        )));
    }
    Ok(())
}

/// Watches completed segments: once completed, a segment's result and finish time must
/// never change (it was not run again).
#[derive(Default)]
pub(crate) struct CompletedWatch {
    seen: HashMap<Uuid, Completed>,
    last: Option<Instant>,
}

type Completed = (
    Option<chrono::DateTime<chrono::Utc>>,
    Option<serde_json::Value>,
);

impl CompletedWatch {
    /// Compares every completed segment with what it was when first seen; at most every
    /// half second (reading them all is not free).
    async fn check<C: octavia::db::Session>(
        &mut self,
        client: &C,
        violations: &mut Vec<String>,
    ) -> Result<()> {
        if self
            .last
            .is_some_and(|t| t.elapsed() < Duration::from_millis(500))
        {
            return Ok(());
        }
        self.last = Some(Instant::now());
        for row in octavia::db::query(client, sql::COMPLETED_SEGMENTS, &[]).await? {
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

    /// [`CompletedWatch::check`] with a connection from `pool`, doing nothing while the
    /// database is unreachable (during a fault).
    async fn check_if_reachable(&mut self, pool: &Pool, violations: &mut Vec<String>) {
        if let Ok(client) = pool.get().await {
            let _ = self.check(&client, violations).await;
        }
    }

    /// Keeps checking (as [`CompletedWatch::check_if_reachable`]) for `period`: the quiet
    /// time between two faults. Fails as soon as one of `children` exits.
    async fn watch_for(
        &mut self,
        period: Duration,
        pool: &Pool,
        violations: &mut Vec<String>,
        children: &mut [Child],
        logs: &Logs,
    ) -> Result<()> {
        let until = Instant::now() + period;
        while Instant::now() < until {
            processes::running(children, logs)?;
            self.check_if_reachable(pool, violations).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }
}

/// Promise 3: for every user, the balance equals the sum of the ledger and is not negative;
/// each job run has at most one reservation and one refund (the unique index guarantees
/// it; this re-checks the data), and no refund without a reservation.
pub async fn check_ledgers<C: octavia::db::Session>(client: &C) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for row in octavia::db::query(client, sql::LEDGER_PROBLEMS, &[]).await? {
        problems.push(row.get::<_, String>(0));
    }
    Ok(problems)
}

/// Jobs not yet in a terminal status.
async fn unfinished<C: octavia::db::Session>(client: &C) -> Result<i64> {
    Ok(
        octavia::db::query(client, sql::COUNT_UNFINISHED_JOBS, &[&false])
            .await?
            .first()
            .map(|r| r.get(0))
            .unwrap_or(0),
    )
}

/// Waits (at most `secs`) until every job has ended, watching completed segments; returns
/// the seconds it took. Rides out a database that is still coming back; fails as soon as
/// one of `children` exits.
async fn settle(
    pool: &Pool,
    watch: &mut CompletedWatch,
    secs: u64,
    report: &mut ChaosReport,
    children: &mut [Child],
    logs: &Logs,
) -> Result<f64> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    loop {
        processes::running(children, logs)?;
        let open = match pool.get().await {
            Ok(client) => unfinished(&client).await.ok(),
            Err(_) => None,
        };
        if open == Some(0) {
            break;
        }
        if Instant::now() > deadline {
            report.violations.push(format!(
                "{} jobs had not ended {secs} s after the faults stopped",
                open.map_or("some".to_string(), |n| n.to_string())
            ));
            break;
        }
        watch.check_if_reachable(pool, &mut report.violations).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let seconds = seconds_since(started);
    watch.check_if_reachable(pool, &mut report.violations).await;
    Ok(seconds)
}

/// The database's clock now, waiting (up to a minute) for it to answer: the instant a
/// fault ended, on the clock that stamps completions.
async fn db_clock(pool: &Pool) -> Result<chrono::DateTime<chrono::Utc>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let read = async {
            let client = pool.get().await?;
            let row = octavia::db::query_opt(&client, sql::DB_CLOCK, &[]).await?;
            Ok::<_, Error>(row.map(|r| r.get(0)))
        }
        .await;
        match read {
            Ok(Some(t)) => return Ok(t),
            _ if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(20)).await,
            Ok(None) => return Err(Error::Invalid("the database has no clock".into())),
            Err(e) => return Err(e),
        }
    }
}

/// Seconds from `at` (database clock) to the first completion after it.
async fn first_completion_after(
    client: &deadpool_postgres::Object,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<Option<f64>> {
    Ok(
        octavia::db::query_opt(client, sql::FIRST_COMPLETION_AFTER, &[&at])
            .await?
            .and_then(|r| r.get(0)),
    )
}

/// Every segment leased right now; empty when the database cannot say.
async fn running_segments(pool: &Pool) -> HashSet<Uuid> {
    let Ok(client) = pool.get().await else {
        return HashSet::new();
    };
    octavia::db::query(&client, sql::RUNNING_SEGMENTS, &[])
        .await
        .map(|rows| rows.iter().map(|r| r.get(0)).collect())
        .unwrap_or_default()
}

/// Waits until `workers` connections LISTEN for work and `apis` for job events (at most
/// `secs`); returns the seconds since `since` (a fault's end), or `None` if they did not
/// all come back. Fails as soon as one of `children` exits.
async fn wait_for_listeners(
    pool: &Pool,
    workers: i64,
    apis: i64,
    since: Instant,
    secs: u64,
    children: &mut [Child],
    logs: &Logs,
) -> Result<Option<f64>> {
    while since.elapsed() < Duration::from_secs(secs) {
        processes::running(children, logs)?;
        if let Ok(client) = pool.get().await
            && let Ok(rows) = octavia::db::query(&client, sql::LISTENERS, &[]).await
        {
            let count = |channel: &str| {
                rows.iter()
                    .find(|r| r.get::<_, &str>(0) == channel)
                    .map_or(0, |r| r.get::<_, i64>(1))
            };
            if count("LISTEN octavia_work") >= workers && count("LISTEN octavia_job_events") >= apis
            {
                return Ok(Some(seconds_since(since)));
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Ok(None)
}

fn seconds_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}
