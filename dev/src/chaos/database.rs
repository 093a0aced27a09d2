//! The database goes away under three workers and the API: PostgreSQL restarted
//! (`pg_ctl restart -m fast`) or crashed (`-m immediate`) and started again after an
//! outage, or every connection terminated (`pg_terminate_backend`). Meanwhile a client
//! probes the API and creates jobs through it. Every process must ride it out: the API
//! answers 503 with a JSON error while the database is away and 2xx once it is back,
//! every pool and LISTEN connection (the workers' and the API's event listener) comes
//! back, all the work completes, and each creation sent again after a 503 or a lost
//! connection made one job and one charge.

use super::client::{self, Client};
use super::processes::{Binaries, Logs, start_api, start_worker};
use super::report::{ChaosReport, FaultRecord, Recovery};
use super::{
    CompletedWatch, db_clock, first_completion_after, running_segments, seconds_since, settle,
    wait_for_listeners,
};
use crate::cluster::Cluster;
use crate::process::Child;
use crate::sql;
use octavia::config::Config;
use octavia::error::{Error, Result};
use octavia::queue::enqueue::{self, NewJob};
use serde_json::json;
use std::collections::HashSet;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Which fault [`database_faults`] causes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseFault {
    /// `pg_ctl restart -m fast`, alternating with a crash (`pg_ctl stop -m immediate`),
    /// `outage_ms` down, and a start: needs a cluster of the scenario's own.
    Restarts,
    /// `pg_terminate_backend` of every connection to the database but the scenario's.
    Terminations,
}

/// What the database scenarios do; the defaults are `bin/chaos`'s long runs.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseOptions {
    /// noop jobs queued at the start
    #[arg(long, default_value_t = 1000)]
    pub jobs: u32,
    /// Segments per job
    #[arg(long, default_value_t = 5)]
    pub segments: u32,
    /// Milliseconds each segment takes
    #[arg(long, default_value_t = 200)]
    pub segment_ms: u64,
    /// Worker processes
    #[arg(long, default_value_t = 3)]
    pub workers: usize,
    /// --concurrency of each worker
    #[arg(long, default_value_t = 8)]
    pub concurrency: u32,
    /// Faults to cause
    #[arg(long, default_value_t = 6)]
    pub faults: u32,
    /// Milliseconds from the start, and from each fault's recovery, to the next fault
    #[arg(long, default_value_t = 5000)]
    pub fault_every_ms: u64,
    /// Milliseconds PostgreSQL stays down when crashed (restarts: every other fault)
    #[arg(long, default_value_t = 2000)]
    pub outage_ms: u64,
    /// Create a job through the API this often, in milliseconds, while faults come and go
    #[arg(long, default_value_t = 250)]
    pub api_job_every_ms: u64,
    /// Send an authenticated GET /api/me this often, in milliseconds
    #[arg(long, default_value_t = 50)]
    pub probe_every_ms: u64,
    /// Give up if the work is not done this long after the faults stop
    #[arg(long, default_value_t = 300)]
    pub settle_seconds: u64,
}

/// A fault, to be measured once the work is done.
struct Fault {
    record: FaultRecord,
    began: Instant,
    ended: Instant,
    ended_db: chrono::DateTime<chrono::Utc>,
}

/// Runs the scenario on `url`, a migrated database of its own; `cluster` is the server it
/// lives on, which [`DatabaseFault::Restarts`] stops and starts.
pub async fn database_faults(
    url: &str,
    cluster: Option<&Cluster>,
    fault: DatabaseFault,
    opts: &DatabaseOptions,
    bins: &Binaries,
) -> Result<ChaosReport> {
    let name = match fault {
        DatabaseFault::Restarts => "restarts",
        DatabaseFault::Terminations => "connections",
    };
    let cluster = match (fault, cluster) {
        (DatabaseFault::Restarts, None) => {
            return Err(Error::Invalid(
                "the restarts scenario needs a PostgreSQL cluster of its own to restart".into(),
            ));
        }
        (_, c) => c.cloned(),
    };
    let started = Instant::now();
    let mut report = ChaosReport::new(name);
    let logs = Logs::new(name)?;
    let store = tempfile::tempdir()?;
    let mut config = Config::default();
    config.database.url = url.to_string();
    config.database.pool_size = 4;
    config.database.connect_timeout_seconds = 2;
    let pool = octavia::db::pool(&config.database)?;

    let password = "chaos-password";
    let api_email = {
        let mut client = pool.get().await?;
        let tag = Uuid::new_v4().simple().to_string();
        let queued_by = octavia::users::create(
            &client,
            &format!("chaos-{name}-queue-{tag}@example.com"),
            password,
            "user",
            opts.jobs as i64,
        )
        .await?;
        let api_email = format!("chaos-{name}-api-{tag}@example.com");
        octavia::users::create(&client, &api_email, password, "user", 1_000_000).await?;
        let job_options = json!({ "segments": opts.segments, "segment_ms": opts.segment_ms });
        let jobs: Vec<NewJob> = (0..opts.jobs)
            .map(|_| NewJob {
                user_id: Some(queued_by),
                cost_credits: 1,
                max_attempts: 10,
                ..NewJob::new("noop", job_options.clone())
            })
            .collect();
        let tx = client.transaction().await?;
        enqueue::insert(&tx, &jobs).await?;
        tx.commit().await?;
        api_email
    };

    // noop costs a credit through the API too, so retried creations would show in the
    // ledger if they charged twice.
    let (api, base) = start_api(
        &bins.api,
        url,
        store.path(),
        &["pricing.noop=1".to_string()],
        &logs,
    )
    .await?;
    // Leases outlive the outages: a restart must not be what re-runs work.
    let settings = vec![
        "worker.job_types=noop".to_string(),
        "worker.lease_seconds=5".to_string(),
    ];
    let mut workers: Vec<Child> = (0..opts.workers)
        .map(|i| {
            start_worker(
                &bins.worker,
                url,
                &format!("chaos-{name}-{i}"),
                opts.concurrency,
                &settings,
                &logs,
            )
        })
        .collect::<Result<_>>()?;
    // Watched together while the scenario waits (the API last, stopped last).
    workers.push(api);
    let mut processes = workers;

    let api_user = Client::sign_in(&base, &api_email, password).await?;
    let stop_probes = CancellationToken::new();
    let stop_creating = CancellationToken::new();
    let prober = api_user.spawn_prober(
        Duration::from_millis(opts.probe_every_ms),
        stop_probes.clone(),
    );
    let creator = api_user.spawn_creator(
        json!({
            "job_type": "noop",
            "options": { "segments": opts.segments, "segment_ms": opts.segment_ms },
        }),
        Duration::from_millis(opts.api_job_every_ms),
        stop_creating.clone(),
    );

    let mut watch = CompletedWatch::default();
    let mut faults: Vec<Fault> = Vec::new();
    let mut in_flight: HashSet<Uuid> = HashSet::new();
    for n in 0..opts.faults {
        let quiet = Duration::from_millis(opts.fault_every_ms);
        watch
            .watch_for(quiet, &pool, &mut report.violations, &mut processes, &logs)
            .await?;
        let caught = running_segments(&pool).await;
        let at_seconds = seconds_since(started);
        let began = Instant::now();
        let kind = match (fault, &cluster) {
            (DatabaseFault::Restarts, Some(cluster)) if n % 2 == 0 => {
                let c = cluster.clone();
                blocking(move || c.restart()).await?;
                "pg_restart"
            }
            (DatabaseFault::Restarts, Some(cluster)) => {
                let c = cluster.clone();
                blocking(move || c.stop()).await?;
                tokio::time::sleep(Duration::from_millis(opts.outage_ms)).await;
                let c = cluster.clone();
                blocking(move || c.start_again()).await?;
                "pg_crash"
            }
            _ => {
                // A connection of its own: the pool's may be among the terminated.
                let admin = octavia::db::connect(url).await?;
                admin.query(sql::TERMINATE_BACKENDS, &[]).await?;
                "terminate_backends"
            }
        };
        let ended = Instant::now();
        let ended_db = db_clock(&pool).await?;
        let workers = opts.workers as i64;
        let listeners =
            wait_for_listeners(&pool, workers, 1, ended, 30, &mut processes, &logs).await?;
        if listeners.is_none() {
            report.violations.push(format!(
                "fault {n} ({kind}): not every worker and API process LISTENed again within 30 s"
            ));
        }
        faults.push(Fault {
            record: FaultRecord {
                kind,
                at_seconds,
                outage_seconds: ended.duration_since(began).as_secs_f64(),
                in_flight: caught.len(),
                recovery: Recovery {
                    listeners_seconds: listeners,
                    ..Recovery::default()
                },
            },
            began,
            ended,
            ended_db,
        });
        in_flight.extend(caught);
    }

    stop_creating.cancel();
    let creations = creator
        .await
        .map_err(|e| Error::Invalid(format!("the API client failed: {e}")))?;
    report.seconds_to_settle = settle(
        &pool,
        &mut watch,
        opts.settle_seconds,
        &mut report,
        &mut processes,
        &logs,
    )
    .await?;
    stop_probes.cancel();
    let probes = prober
        .await
        .map_err(|e| Error::Invalid(format!("the API prober failed: {e}")))?;
    for p in &mut processes {
        if !p.is_alive() {
            report
                .violations
                .push(format!("{} died during the faults", p.name()));
        }
    }
    drop(processes);

    let client = pool.get().await?;
    for mut f in faults {
        f.record.recovery.first_completion_seconds =
            first_completion_after(&client, f.ended_db).await?;
        f.record.recovery.api_2xx_seconds = client::first_ok_after(&probes, f.ended);
        if f.record.recovery.api_2xx_seconds.is_none() {
            report.violations.push(format!(
                "the API never answered 2xx after the {} at {:.1} s",
                f.record.kind, f.record.at_seconds
            ));
        }
        // Only an outage long enough to probe in must have been seen answered with 503.
        let long =
            f.ended.duration_since(f.began) > Duration::from_millis(4 * opts.probe_every_ms + 200);
        if f.record.kind == "pg_crash"
            && long
            && !client::unavailable_between(&probes, f.began, f.ended)
        {
            report.violations.push(format!(
                "no 503 with a JSON error while PostgreSQL was down ({} at {:.1} s)",
                f.record.kind, f.record.at_seconds
            ));
        }
        report.faults.push(f.record);
    }
    report.api = Some(client::figures(&probes, &creations, &mut report.violations));

    // Exactly one job per key, however often its creation was sent.
    let distinct: HashSet<&Uuid> = creations.jobs.iter().collect();
    if distinct.len() != creations.jobs.len() {
        report
            .violations
            .push("two Idempotency-Keys were answered with the same job".into());
    }
    let api_user_id = octavia::users::by_email(&client, &api_email)
        .await?
        .map(|u| u.id)
        .ok_or_else(|| Error::Invalid("the API user vanished".into()))?;
    let made: i64 = octavia::db::query_opt(&client, sql::COUNT_USER_JOBS, &[&api_user_id])
        .await?
        .map_or(0, |r| r.get(0));
    if made != creations.jobs.len() as i64 {
        report.violations.push(format!(
            "{} jobs were created through the API, but its client was answered for {}",
            made,
            creations.jobs.len()
        ));
    }

    report.tally(&client, &in_flight).await?;
    let not_completed: i64 = report
        .jobs_by_status
        .iter()
        .filter(|(s, _)| s.as_str() != "completed")
        .map(|(_, n)| n)
        .sum();
    if not_completed > 0 {
        report.violations.push(format!(
            "{not_completed} jobs did not complete (nothing in this scenario fails on its own)"
        ));
    }
    // At most what the fleet could hold leased at each fault may have run again.
    let slots = opts.workers * opts.concurrency as usize * report.faults.len();
    if report.segments.rerun > slots {
        report.violations.push(format!(
            "{} segments ran again, more than the {slots} that could have been in flight",
            report.segments.rerun
        ));
    }
    report.seconds = seconds_since(started);
    if !report.ok() {
        report.logs = Some(logs.keep());
    }
    Ok(report)
}

/// Runs a blocking step (pg_ctl) off the async threads.
async fn blocking(f: impl FnOnce() -> Result<()> + Send + 'static) -> Result<()> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Invalid(format!("pg_ctl step panicked: {e}")))?
}
