//! The object store goes away: the S3 server (s3s-fs) is stopped for longer than an
//! attempt, several times, while `subtitle_to_audio` jobs run (their plan reads the input,
//! each segment uploads its speech, finalize reads them all and uploads the output), and
//! started again on the same port and directory. Every attempt that meets the outage fails
//! retryably and is retried with backoff, and every job completes. Then a few more jobs
//! run with the store stopped for good: they must fail cleanly, their last error naming
//! the store, and be refunded.

use super::processes::{Binaries, Logs, running, start_worker};
use super::report::{ChaosReport, FaultRecord, Recovery};
use super::s3fs::S3Fs;
use super::{
    CompletedWatch, db_clock, first_completion_after, running_segments, seconds_since, settle,
};
use crate::process::Child;
use crate::sql;
use deadpool_postgres::Pool;
use octavia::config::Config;
use octavia::error::{Error, Result};
use octavia::job::NewMedia;
use octavia::queue::complete::insert_media;
use octavia::queue::enqueue::{self, NewJob};
use octavia::storage::{Storage, media_key};
use serde_json::json;
use std::collections::HashSet;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// What the storage scenario does; the defaults are `bin/chaos`'s long run.
#[derive(Debug, Clone, clap::Args)]
pub struct StorageOptions {
    /// subtitle_to_audio jobs run through the outages (enough to outlast them)
    #[arg(long, default_value_t = 40)]
    pub jobs: u32,
    /// Cues of each job's subtitles: one segment each
    #[arg(long, default_value_t = 3)]
    pub cues: u32,
    /// Worker processes
    #[arg(long, default_value_t = 3)]
    pub workers: usize,
    /// --concurrency of each worker
    #[arg(long, default_value_t = 2)]
    pub concurrency: u32,
    /// Times the S3 server is stopped and started again
    #[arg(long, default_value_t = 3)]
    pub outages: u32,
    /// Milliseconds it stays down each time
    #[arg(long, default_value_t = 4000)]
    pub outage_ms: u64,
    /// Milliseconds from the start, and from each outage's end, to the next outage
    #[arg(long, default_value_t = 5000)]
    pub outage_every_ms: u64,
    /// Attempts per segment and step of those jobs
    #[arg(long, default_value_t = 12)]
    pub max_attempts: i32,
    /// Jobs run last with the store stopped for good: each must fail, refunded
    #[arg(long, default_value_t = 3)]
    pub doomed_jobs: u32,
    /// Attempts per segment and step of those
    #[arg(long, default_value_t = 3)]
    pub doomed_attempts: i32,
    /// Give up if the work is not done this long after the outages stop
    #[arg(long, default_value_t = 300)]
    pub settle_seconds: u64,
}

/// Credits a job costs here.
const COST: i64 = 3;

/// Runs the scenario on `url`, a migrated database of its own, with an S3 server of its
/// own (s3s-fs must be installed).
pub async fn storage_outages(
    url: &str,
    opts: &StorageOptions,
    bins: &Binaries,
) -> Result<ChaosReport> {
    let started = Instant::now();
    let mut report = ChaosReport::new("storage");
    let logs = Logs::new("storage")?;
    let mut s3 = S3Fs::start()?;
    let mut config = Config::default();
    config.database.url = url.to_string();
    config.database.pool_size = 4;
    config.storage = s3.config();
    let pool = octavia::db::pool(&config.database)?;
    let storage = Storage::from_config(&config.storage)?;
    let user = {
        let client = pool.get().await?;
        octavia::users::create(
            &client,
            &format!("chaos-storage-{}@example.com", Uuid::new_v4().simple()),
            "chaos-password",
            "user",
            (opts.jobs + opts.doomed_jobs) as i64 * COST,
        )
        .await?
    };
    let jobs = enqueue_jobs(
        &pool,
        &storage,
        user,
        opts.jobs,
        opts.cues,
        opts.max_attempts,
    )
    .await?;

    // One cue a segment; an attempt meeting the outage fails in about a second (two
    // quick tries of each request) and the queue retries it with backoff, spanning
    // several seconds within max_attempts.
    let mut settings = s3.settings();
    settings.extend(
        [
            "worker.job_types=subtitle_to_audio",
            "worker.lease_seconds=10",
            "worker.heartbeat_seconds=2",
            "worker.backoff_base_ms=250",
            "worker.backoff_max_ms=2000",
            "storage.s3_max_retries=1",
            "storage.s3_retry_timeout_seconds=2",
            "pipeline.subtitle_batch_cues=1",
        ]
        .map(String::from),
    );
    let mut workers: Vec<Child> = (0..opts.workers)
        .map(|i| {
            start_worker(
                &bins.worker,
                url,
                &format!("chaos-storage-{i}"),
                opts.concurrency,
                &settings,
                &logs,
            )
        })
        .collect::<Result<_>>()?;

    let mut watch = CompletedWatch::default();
    let mut in_flight: HashSet<Uuid> = HashSet::new();
    let mut faults = Vec::new();
    for _ in 0..opts.outages {
        let quiet = Duration::from_millis(opts.outage_every_ms);
        watch
            .watch_for(quiet, &pool, &mut report.violations, &mut workers, &logs)
            .await?;
        let caught = running_segments(&pool).await;
        let at_seconds = seconds_since(started);
        let began = Instant::now();
        s3.stop();
        tokio::time::sleep(Duration::from_millis(opts.outage_ms)).await;
        s3.resume()?;
        let ended_db = db_clock(&pool).await?;
        faults.push((
            FaultRecord {
                kind: "storage_stop",
                at_seconds,
                outage_seconds: seconds_since(began),
                in_flight: caught.len(),
                recovery: Recovery::default(),
            },
            ended_db,
        ));
        in_flight.extend(caught);
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
    {
        let client = pool.get().await?;
        for (id, status, error, _) in outcomes(&client, &jobs).await? {
            if status != "completed" {
                report.violations.push(format!(
                    "job {id} ended {status} though the store came back: {}",
                    error.unwrap_or_default()
                ));
            }
        }
        for (mut record, ended_db) in faults {
            record.recovery.first_completion_seconds =
                first_completion_after(&client, ended_db).await?;
            report.faults.push(record);
        }
    }

    // The store goes away for good once the last jobs are under way.
    let doomed = enqueue_jobs(
        &pool,
        &storage,
        user,
        opts.doomed_jobs,
        opts.cues,
        opts.doomed_attempts,
    )
    .await?;
    wait_until_claimed(&pool, &doomed, &mut workers, &logs).await?;
    let caught = running_segments(&pool).await;
    let at_seconds = seconds_since(started);
    s3.stop();
    settle(
        &pool,
        &mut watch,
        opts.settle_seconds,
        &mut report,
        &mut workers,
        &logs,
    )
    .await?;
    report.faults.push(FaultRecord {
        kind: "storage_gone",
        at_seconds,
        outage_seconds: seconds_since(started) - at_seconds,
        in_flight: caught.len(),
        recovery: Recovery::default(),
    });
    in_flight.extend(caught);
    let client = pool.get().await?;
    let mut failed = 0;
    for (id, status, error, refunded) in outcomes(&client, &doomed).await? {
        match status.as_str() {
            // It finished before the store went away.
            "completed" => {}
            "failed" => {
                failed += 1;
                let error = error.unwrap_or_default();
                if !error.contains("storage") {
                    report.violations.push(format!(
                        "job {id} failed with the store down, but its last_error does not \
                         say so: {error}"
                    ));
                }
                if !refunded {
                    report
                        .violations
                        .push(format!("job {id} failed but was not refunded"));
                }
            }
            other => report.violations.push(format!(
                "job {id} ended {other} with the store down for good"
            )),
        }
    }
    if failed == 0 && opts.doomed_jobs > 0 {
        report
            .violations
            .push("no job failed though the store stayed down".into());
    }

    for w in &mut workers {
        if !w.is_alive() {
            report
                .violations
                .push(format!("{} died while the store was down", w.name()));
        }
    }
    drop(workers);
    report.tally(&client, &in_flight).await?;
    report.seconds = seconds_since(started);
    if !report.ok() {
        report.logs = Some(logs.keep());
    }
    Ok(report)
}

/// Uploads `n` subtitle files of `cues` cues to the store and queues a
/// `subtitle_to_audio` job (no translation, WAV out) on each; returns the job ids.
async fn enqueue_jobs(
    pool: &Pool,
    storage: &Storage,
    user: Uuid,
    n: u32,
    cues: u32,
    max_attempts: i32,
) -> Result<Vec<Uuid>> {
    const LINES: [&str; 4] = [
        "Good morning.",
        "The weather is nice today.",
        "Thank you very much.",
        "See you tomorrow.",
    ];
    let mut client = pool.get().await?;
    let mut jobs = Vec::new();
    for i in 0..n {
        let mut srt = String::new();
        for c in 0..cues {
            let start = 1 + 2 * c;
            srt.push_str(&format!(
                "{}\n00:00:{start:02},000 --> 00:00:{:02},500\n{}\n\n",
                c + 1,
                start + 1,
                LINES[(i + c) as usize % LINES.len()]
            ));
        }
        let media = Uuid::now_v7();
        let key = media_key(user, media, &format!("chaos-{i}.srt"));
        storage.put_bytes(&key, srt.clone().into()).await?;
        insert_media(
            &client,
            &NewMedia {
                id: media,
                project_id: None,
                user_id: Some(user),
                s3_key: key,
                media_type: octavia::job::MediaType::Subtitle.as_str().into(),
                duration_seconds: None,
                size_bytes: srt.len() as i64,
                mimetype: "application/x-subrip".into(),
                derived_from: None,
                metadata: json!({}),
            },
        )
        .await?;
        jobs.push(NewJob {
            user_id: Some(user),
            input_media_id: Some(media),
            cost_credits: COST,
            max_attempts,
            ..NewJob::new(
                "subtitle_to_audio",
                json!({ "source_language": "en", "format": "wav" }),
            )
        });
    }
    let tx = client.transaction().await?;
    enqueue::insert(&tx, &jobs).await?;
    tx.commit().await?;
    Ok(jobs.iter().map(|j| j.id).collect())
}

/// (id, status, last_error, refunded in its last run) of each of `jobs`.
async fn outcomes(
    client: &deadpool_postgres::Object,
    jobs: &[Uuid],
) -> Result<Vec<(Uuid, String, Option<String>, bool)>> {
    Ok(octavia::db::query(client, sql::JOB_OUTCOMES, &[&jobs])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect())
}

/// Waits until one of `jobs` has been claimed (it is under way), at most a minute; fails
/// as soon as one of `workers` exits.
async fn wait_until_claimed(
    pool: &Pool,
    jobs: &[Uuid],
    workers: &mut [Child],
    logs: &Logs,
) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        running(workers, logs)?;
        let client = pool.get().await?;
        if outcomes(&client, jobs)
            .await?
            .iter()
            .any(|(_, status, _, _)| status != "queued")
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(Error::Invalid(
        "no worker claimed the last jobs within a minute".into(),
    ))
}
