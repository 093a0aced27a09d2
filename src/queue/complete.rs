//! Recording what happened to a claimed segment or step. Every write is fenced by the
//! attempt (and for steps the worker id): a worker that lost its lease changes nothing,
//! and learns so from the return value.
//!
//! The transactions below lock the job row (in id order) before they look at what still
//! runs of the job, so the last piece of a cancelled or failed job to finish always sees
//! the others' outcomes and settles the job; exactly-once refunds follow from
//! `credits_history_job_run_key`.

use super::{ClaimedSegment, ClaimedStep, Step};
use crate::credits;
use crate::db;
use crate::error::Result;
use crate::sql;
use deadpool_postgres::{GenericClient, Object};
use std::collections::HashSet;
use std::time::Duration;
use uuid::Uuid;

/// What a batch of segment completions did.
#[derive(Debug, Default)]
pub struct Completed {
    /// Segments whose result was recorded; the others had lost their lease.
    pub recorded: HashSet<Uuid>,
    /// Some job's last segment completed: its finalize step is claimable.
    pub finalize_ready: bool,
}

/// How an attempt that produced no result ends.
#[derive(Debug, Clone)]
pub enum Failure {
    /// May be retried after `delay` if attempts remain.
    Retryable { error: String, delay: Duration },
    /// Never retried.
    Fatal { error: String },
    /// The handler stopped because its job is being cancelled or has failed.
    Stopped,
}

/// Outcome of recording a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureOutcome {
    /// Back to pending (or claimable, for a step), to run again after the backoff.
    Retrying,
    /// Out of attempts or fatal: the job failed.
    JobFailed,
    /// Ended because the job is stopping.
    Stopped,
    /// The lease had been lost; nothing was written.
    Stale,
}

/// Records the results of many segment attempts: (segment id, attempt, result).
pub async fn segments(
    client: &mut Object,
    results: &[(Uuid, i32, serde_json::Value)],
) -> Result<Completed> {
    let ids: Vec<Uuid> = results.iter().map(|r| r.0).collect();
    let attempts: Vec<i32> = results.iter().map(|r| r.1).collect();
    let values: Vec<&serde_json::Value> = results.iter().map(|r| &r.2).collect();
    let tx = client.transaction().await?;
    let rows = db::query(&tx, sql::COMPLETE_SEGMENTS, &[&ids, &attempts, &values]).await?;
    let mut done = Completed::default();
    let mut stopping = Vec::new();
    for row in &rows {
        let job: Uuid = row.get(0);
        done.finalize_ready |= row.get::<_, bool>(1);
        if row.get::<_, bool>(2) {
            stopping.push(job);
        }
        done.recorded.extend(row.get::<_, Vec<Uuid>>(3));
    }
    if !stopping.is_empty() {
        settle(&tx, &stopping).await?;
    }
    if done.finalize_ready {
        db::execute(&tx, sql::NOTIFY_WORK, &[]).await?;
    }
    tx.commit().await?;
    Ok(done)
}

/// Ends the jobs among `jobs` that are being cancelled once nothing of them runs: their
/// unstarted segments are cancelled and their reservation refunded. Call with the job rows
/// already locked by this transaction (any UPDATE of them does).
pub(crate) async fn settle<C: GenericClient + Sync>(client: &C, jobs: &[Uuid]) -> Result<()> {
    db::execute(client, sql::CANCEL_PENDING_SEGMENTS, &[&jobs]).await?;
    let rows = db::query(client, sql::SETTLE_CANCELLED_JOBS, &[&jobs]).await?;
    let cancelled: Vec<(Uuid, i32)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    credits::refund(client, &cancelled).await?;
    Ok(())
}

/// Fails `job` with `error`: its unstarted segments will not run in this run and its
/// reservation is refunded.
/// Returns false when the job had already ended.
pub(crate) async fn fail_job<C: GenericClient + Sync>(
    client: &C,
    job: Uuid,
    error: &str,
) -> Result<bool> {
    let jobs = vec![job];
    let rows = db::query(client, sql::FAIL_JOBS, &[&jobs, &error]).await?;
    let failed: Vec<(Uuid, i32)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    db::execute(client, sql::CANCEL_PENDING_SEGMENTS, &[&jobs]).await?;
    credits::refund(client, &failed).await?;
    Ok(!failed.is_empty())
}

/// Locks `job` and tells whether it is stopping (cancel requested, or already ended).
async fn lock_job<C: GenericClient + Sync>(client: &C, job: Uuid) -> Result<bool> {
    let rows = db::query(client, sql::LOCK_JOBS, &[&vec![job]]).await?;
    Ok(rows.first().is_some_and(|r| r.get::<_, bool>(1)))
}

/// Records a segment attempt that ended without a result.
pub async fn segment_failed(
    client: &mut Object,
    segment: &ClaimedSegment,
    failure: &Failure,
) -> Result<FailureOutcome> {
    let tx = client.transaction().await?;
    let stopping = lock_job(&tx, segment.job_id).await?;
    let end = |status: &'static str, error: Option<String>| {
        let tx = &tx;
        async move {
            let row = db::query_opt(
                tx,
                sql::END_SEGMENT,
                &[&segment.id, &segment.attempt, &status, &error],
            )
            .await?;
            Ok::<bool, crate::Error>(row.is_some())
        }
    };
    let outcome = match failure {
        _ if stopping => {
            let error = match failure {
                Failure::Retryable { error, .. } | Failure::Fatal { error } => Some(error.clone()),
                Failure::Stopped => None,
            };
            if !end("cancelled", error).await? {
                return Ok(FailureOutcome::Stale);
            }
            settle(&tx, &[segment.job_id]).await?;
            FailureOutcome::Stopped
        }
        Failure::Stopped => {
            // Told to stop, but the job is running again (a retry came in between): give
            // the segment back rather than lose it.
            let delay = 0.0f64;
            let retried = db::query_opt(
                &tx,
                sql::RETRY_SEGMENT,
                &[&segment.id, &segment.attempt, &"stopped", &delay],
            )
            .await?;
            if retried.is_none() {
                return Ok(FailureOutcome::Stale);
            }
            FailureOutcome::Retrying
        }
        Failure::Retryable { error, delay } if segment.attempt < segment.max_attempts => {
            let retried = db::query_opt(
                &tx,
                sql::RETRY_SEGMENT,
                &[&segment.id, &segment.attempt, error, &delay.as_secs_f64()],
            )
            .await?;
            if retried.is_none() {
                return Ok(FailureOutcome::Stale);
            }
            FailureOutcome::Retrying
        }
        Failure::Retryable { error, .. } | Failure::Fatal { error } => {
            if !end("failed", Some(error.clone())).await? {
                return Ok(FailureOutcome::Stale);
            }
            let why = match failure {
                Failure::Fatal { .. } => format!("segment {} failed: {error}", segment.index),
                _ => format!(
                    "segment {} failed after {} attempts: {error}",
                    segment.index, segment.attempt
                ),
            };
            fail_job(&tx, segment.job_id, &why).await?;
            FailureOutcome::JobFailed
        }
    };
    tx.commit().await?;
    Ok(outcome)
}

/// Gives segments back without burning an attempt (shutdown). Returns how many were
/// still this worker's.
pub async fn release_segments<C: GenericClient + Sync>(
    client: &C,
    segments: &[(Uuid, i32)],
) -> Result<usize> {
    let (ids, attempts): (Vec<Uuid>, Vec<i32>) = segments.iter().copied().unzip();
    let rows = db::query(client, sql::RELEASE_SEGMENTS, &[&ids, &attempts]).await?;
    if !rows.is_empty() {
        db::execute(client, sql::NOTIFY_WORK, &[]).await?;
    }
    Ok(rows.len())
}

/// Gives job-level steps back without burning an attempt (shutdown).
pub async fn release_steps<C: GenericClient + Sync>(
    client: &C,
    worker_id: &str,
    steps: &[(Uuid, i32)],
) -> Result<usize> {
    let (ids, attempts): (Vec<Uuid>, Vec<i32>) = steps.iter().copied().unzip();
    let rows = db::query(client, sql::RELEASE_STEPS, &[&worker_id, &ids, &attempts]).await?;
    if !rows.is_empty() {
        db::execute(client, sql::NOTIFY_WORK, &[]).await?;
    }
    Ok(rows.len())
}

/// A segment the plan step creates.
#[derive(Debug, Clone, Default)]
pub struct NewSegment {
    pub start_ms: Option<i32>,
    pub end_ms: Option<i32>,
    pub input: serde_json::Value,
}

/// Records a successful plan: the job moves to its segments (or straight to finalize when
/// there are none). Returns false when the lease had been lost (nothing written).
pub async fn plan_done(
    client: &mut Object,
    worker_id: &str,
    step: &ClaimedStep,
    segments: &[NewSegment],
    plan: &serde_json::Value,
) -> Result<bool> {
    debug_assert_eq!(step.step, Step::Plan);
    let tx = client.transaction().await?;
    let count = segments.len() as i32;
    let Some(row) = db::query_opt(
        &tx,
        sql::COMPLETE_PLAN,
        &[&step.job.id, &step.attempt, &worker_id, &count, plan],
    )
    .await?
    else {
        return Ok(false);
    };
    let priority: i16 = row.get(0);
    let max_attempts: i32 = row.get(1);
    let cancelling: bool = row.get(2);
    if !segments.is_empty() {
        let indexes: Vec<i32> = (0..count).collect();
        let starts: Vec<Option<i32>> = segments.iter().map(|s| s.start_ms).collect();
        let ends: Vec<Option<i32>> = segments.iter().map(|s| s.end_ms).collect();
        let inputs: Vec<&serde_json::Value> = segments.iter().map(|s| &s.input).collect();
        db::execute(
            &tx,
            sql::INSERT_SEGMENTS,
            &[
                &step.job.id,
                &priority,
                &max_attempts,
                &indexes,
                &starts,
                &ends,
                &inputs,
            ],
        )
        .await?;
    }
    if cancelling {
        settle(&tx, &[step.job.id]).await?;
    } else {
        db::execute(&tx, sql::NOTIFY_WORK, &[]).await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// A file to record in `media_files` (the output of a job).
#[derive(Debug, Clone)]
pub struct NewMedia {
    pub id: Uuid,
    pub project_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    pub s3_key: String,
    pub media_type: String,
    pub duration_seconds: Option<f64>,
    pub size_bytes: i64,
    pub mimetype: String,
    pub derived_from: Option<Uuid>,
    pub metadata: serde_json::Value,
}

/// Inserts a `media_files` row.
pub async fn insert_media<C: GenericClient + Sync>(client: &C, m: &NewMedia) -> Result<()> {
    db::execute(
        client,
        sql::INSERT_MEDIA,
        &[
            &m.id,
            &m.project_id,
            &m.user_id,
            &m.s3_key,
            &m.media_type,
            &m.duration_seconds,
            &m.size_bytes,
            &m.mimetype,
            &m.derived_from,
            &m.metadata,
        ],
    )
    .await?;
    Ok(())
}

/// Records a successful finalize: the job is completed with its output media row, if any,
/// inserted in the same transaction, so nothing of it stays when the lease had been lost.
/// Returns false in that case.
pub async fn finalize_done(
    client: &mut Object,
    worker_id: &str,
    step: &ClaimedStep,
    output: Option<&NewMedia>,
) -> Result<bool> {
    debug_assert_eq!(step.step, Step::Finalize);
    let tx = client.transaction().await?;
    if let Some(media) = output {
        insert_media(&tx, media).await?;
    }
    let output_id = output.map(|m| m.id);
    let done = db::query_opt(
        &tx,
        sql::COMPLETE_JOB,
        &[&step.job.id, &step.attempt, &worker_id, &output_id],
    )
    .await?
    .is_some();
    if done {
        tx.commit().await?;
    }
    Ok(done)
}

/// Records a plan or finalize attempt that ended without success.
pub async fn step_failed(
    client: &mut Object,
    worker_id: &str,
    step: &ClaimedStep,
    failure: &Failure,
) -> Result<FailureOutcome> {
    let tx = client.transaction().await?;
    let stopping = lock_job(&tx, step.job.id).await?;
    let job = step.job.id;
    let outcome = match failure {
        Failure::Retryable { error, delay } if !stopping && step.attempt < step.max_attempts => {
            let retried = db::query_opt(
                &tx,
                sql::RETRY_STEP,
                &[&job, &step.attempt, &worker_id, error, &delay.as_secs_f64()],
            )
            .await?;
            if retried.is_none() {
                return Ok(FailureOutcome::Stale);
            }
            FailureOutcome::Retrying
        }
        Failure::Stopped if !stopping => {
            let delay = 0.0f64;
            let retried = db::query_opt(
                &tx,
                sql::RETRY_STEP,
                &[&job, &step.attempt, &worker_id, &"stopped", &delay],
            )
            .await?;
            if retried.is_none() {
                return Ok(FailureOutcome::Stale);
            }
            FailureOutcome::Retrying
        }
        _ => {
            let error = match failure {
                Failure::Retryable { error, .. } | Failure::Fatal { error } => Some(error.clone()),
                Failure::Stopped => None,
            };
            let ended = db::query_opt(
                &tx,
                sql::END_STEP,
                &[&job, &step.attempt, &worker_id, &error],
            )
            .await?;
            if ended.is_none() {
                return Ok(FailureOutcome::Stale);
            }
            if stopping {
                settle(&tx, &[job]).await?;
                FailureOutcome::Stopped
            } else {
                let error = error.unwrap_or_default();
                let why = match failure {
                    Failure::Fatal { .. } => format!("{} failed: {error}", step.step.as_str()),
                    _ => format!(
                        "{} failed after {} attempts: {error}",
                        step.step.as_str(),
                        step.attempt
                    ),
                };
                fail_job(&tx, job, &why).await?;
                FailureOutcome::JobFailed
            }
        }
    };
    tx.commit().await?;
    Ok(outcome)
}
