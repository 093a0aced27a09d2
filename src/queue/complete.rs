//! Recording what happened to a claimed segment or step. Every write is fenced by the
//! attempt (and for steps the worker id): a worker that lost its lease changes nothing,
//! and learns so from the return value.
//!
//! The transactions below lock the job row (in id order) before they look at what still
//! runs of the job, so the last piece of a cancelled or failed job to finish always sees
//! the others' outcomes and settles the job; exactly-once refunds follow from
//! `credits_history_job_run_key`.

use crate::credits;
use crate::db;
use crate::db::Session;
use crate::error::Result;
use crate::job::{ClaimedSegment, ClaimedStep, JobInfo, NewMedia, NewSegment, SegmentStatus, Step};
use crate::sql;
use deadpool_postgres::Object;
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
    /// Jobs found being cancelled or already failed: the caller settles them
    /// ([`settle_jobs`]).
    pub stopping: Vec<Uuid>,
    /// Finalize steps leased to this worker at once (see [`Lease`]).
    pub leased: Vec<ClaimedStep>,
}

/// Work a completion statement may lease to the completing worker on the spot, saving a
/// claim: what the worker has free slots for.
#[derive(Debug, Clone, Copy)]
pub struct Lease<'a> {
    pub worker_id: &'a str,
    pub duration: Duration,
    /// [`segments`]: the jobs whose finalize step may be leased if they become ready.
    /// [`plans_done`]: unused.
    pub jobs: &'a [Uuid],
    /// [`plans_done`]: how many new segments may be leased, first jobs first.
    pub segments: usize,
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

/// Records the results of many segment attempts: (segment id, attempt, result), in one
/// statement. Jobs found stopping must then be settled by the caller ([`settle_jobs`]),
/// in a transaction of its own: this statement may commit asynchronously, a settlement
/// (it refunds) must not.
pub async fn segments(
    client: &Object,
    results: &[(Uuid, i32, serde_json::Value)],
    lease: Option<Lease<'_>>,
) -> Result<Completed> {
    let ids: Vec<Uuid> = results.iter().map(|r| r.0).collect();
    let attempts: Vec<i32> = results.iter().map(|r| r.1).collect();
    let values: Vec<&serde_json::Value> = results.iter().map(|r| &r.2).collect();
    let eligible: &[Uuid] = lease.map(|l| l.jobs).unwrap_or(&[]);
    let worker: &str = lease.map(|l| l.worker_id).unwrap_or("");
    let seconds = lease.map(|l| l.duration.as_secs_f64()).unwrap_or(0.0);
    let rows = db::query(
        client,
        sql::COMPLETE_SEGMENTS,
        &[&ids, &attempts, &values, &eligible, &worker, &seconds],
    )
    .await?;
    let mut done = Completed::default();
    for row in &rows {
        let job: Uuid = row.get("id");
        done.finalize_ready |= row.get::<_, bool>("finalize_ready");
        if row.get::<_, bool>("stopping") {
            done.stopping.push(job);
        }
        done.recorded.extend(row.get::<_, Vec<Uuid>>("ids"));
        if row.get::<_, bool>("leased") {
            done.leased.push(ClaimedStep {
                job: JobInfo::from_row(row),
                step: Step::Finalize,
                attempt: 1,
                max_attempts: row.get("max_attempts"),
            });
        }
    }
    Ok(done)
}

/// Settles stopping jobs after a write that committed on its own: locks them (in id
/// order), then ends those being cancelled whose last running piece has finished. Every
/// piece of a stopping job calls this after committing its own outcome, so whichever
/// finishes last sees all the others and ends the job.
pub async fn settle_jobs(client: &mut Object, jobs: &[Uuid]) -> Result<()> {
    let tx = client.transaction().await?;
    db::query(&tx, sql::LOCK_JOBS, &[&jobs]).await?;
    settle(&tx, jobs).await?;
    tx.commit().await?;
    Ok(())
}

/// Ends the jobs among `jobs` that are being cancelled once nothing of them runs: their
/// unstarted segments are cancelled and their reservation refunded. Call with the job rows
/// already locked by this transaction (any UPDATE of them does).
pub(crate) async fn settle<C: Session>(client: &C, jobs: &[Uuid]) -> Result<()> {
    db::execute(client, sql::CANCEL_PENDING_SEGMENTS, &[&jobs]).await?;
    let rows = db::query(client, sql::SETTLE_CANCELLED_JOBS, &[&jobs]).await?;
    let cancelled: Vec<(Uuid, i32)> = rows.iter().map(|r| (r.get("id"), r.get("run"))).collect();
    credits::refund(client, &cancelled).await?;
    Ok(())
}

/// Fails `job` with `error`: its unstarted segments will not run in this run and its
/// reservation is refunded.
/// Returns false when the job had already ended.
pub(crate) async fn fail_job<C: Session>(client: &C, job: Uuid, error: &str) -> Result<bool> {
    let jobs = vec![job];
    let rows = db::query(client, sql::FAIL_JOBS, &[&jobs, &error]).await?;
    let failed: Vec<(Uuid, i32)> = rows.iter().map(|r| (r.get("id"), r.get("run"))).collect();
    db::execute(client, sql::CANCEL_PENDING_SEGMENTS, &[&jobs]).await?;
    credits::refund(client, &failed).await?;
    Ok(!failed.is_empty())
}

/// Locks `job` and tells whether it is stopping (cancel requested, or already ended).
async fn lock_job<C: Session>(client: &C, job: Uuid) -> Result<bool> {
    let rows = db::query(client, sql::LOCK_JOBS, &[&vec![job]]).await?;
    Ok(rows.first().is_some_and(|r| r.get::<_, bool>("stopping")))
}

/// Records a segment attempt that ended without a result.
pub async fn segment_failed(
    client: &mut Object,
    segment: &ClaimedSegment,
    failure: &Failure,
) -> Result<FailureOutcome> {
    let tx = client.transaction().await?;
    let stopping = lock_job(&tx, segment.job_id).await?;
    let end = |status: SegmentStatus, error: Option<String>| {
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
            if !end(SegmentStatus::Cancelled, error).await? {
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
            if !end(SegmentStatus::Failed, Some(error.clone())).await? {
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
pub async fn release_segments<C: Session>(client: &C, segments: &[(Uuid, i32)]) -> Result<usize> {
    let (ids, attempts): (Vec<Uuid>, Vec<i32>) = segments.iter().copied().unzip();
    let rows = db::query(client, sql::RELEASE_SEGMENTS, &[&ids, &attempts]).await?;
    if !rows.is_empty() {
        db::execute(client, sql::NOTIFY_WORK, &[]).await?;
    }
    Ok(rows.len())
}

/// Gives job-level steps back without burning an attempt (shutdown).
pub async fn release_steps<C: Session>(
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

/// A successful plan to record.
#[derive(Debug, Clone, Copy)]
pub struct PlanRecord<'a> {
    pub step: &'a ClaimedStep,
    pub segments: &'a [NewSegment],
    pub data: &'a serde_json::Value,
}

/// What recording a batch of plans did.
#[derive(Debug, Default)]
pub struct PlansDone {
    /// Jobs whose plan was recorded; the others had lost their lease and nothing of them
    /// was written.
    pub recorded: HashSet<Uuid>,
    /// Recorded jobs whose cancel was requested meanwhile: the caller settles them
    /// ([`settle_jobs`]).
    pub cancelling: Vec<Uuid>,
    /// New segments leased to this worker at once (see [`Lease`]).
    pub leased: Vec<ClaimedSegment>,
}

/// Records many successful plans in one statement: each job moves to its segments (or
/// straight to finalize when there are none), up to `lease.segments` of the new segments
/// leased to this worker at once.
pub async fn plans_done(
    client: &Object,
    worker_id: &str,
    plans: &[PlanRecord<'_>],
    lease: Option<Lease<'_>>,
) -> Result<PlansDone> {
    let jobs: Vec<Uuid> = plans.iter().map(|p| p.step.job.id).collect();
    let attempts: Vec<i32> = plans.iter().map(|p| p.step.attempt).collect();
    let counts: Vec<i32> = plans.iter().map(|p| p.segments.len() as i32).collect();
    let data: Vec<&serde_json::Value> = plans.iter().map(|p| p.data).collect();
    let mut to_lease = lease.map(|l| l.segments).unwrap_or(0);
    let total: usize = plans.iter().map(|p| p.segments.len()).sum();
    let mut firsts = Vec::with_capacity(plans.len());
    let (mut starts, mut ends, mut inputs, mut ids, mut leased) = (
        Vec::with_capacity(total),
        Vec::with_capacity(total),
        Vec::with_capacity(total),
        Vec::with_capacity(total),
        Vec::with_capacity(total),
    );
    for plan in plans {
        debug_assert_eq!(plan.step.step, Step::Plan);
        firsts.push(ids.len() as i32);
        for s in plan.segments {
            starts.push(s.start_ms);
            ends.push(s.end_ms);
            inputs.push(&s.input);
            ids.push(Uuid::now_v7());
            leased.push(to_lease > 0);
            to_lease = to_lease.saturating_sub(1);
        }
    }
    let seconds = lease.map(|l| l.duration.as_secs_f64()).unwrap_or(0.0);
    let rows = db::query(
        client,
        sql::COMPLETE_PLANS,
        &[
            &worker_id, &jobs, &attempts, &counts, &data, &firsts, &starts, &ends, &inputs, &ids,
            &leased, &seconds,
        ],
    )
    .await?;
    // Each plan, with where its segments start in the arrays sent.
    let offsets: std::collections::HashMap<Uuid, (&PlanRecord<'_>, usize)> = plans
        .iter()
        .zip(&firsts)
        .map(|(plan, &first)| (plan.step.job.id, (plan, first as usize)))
        .collect();
    let mut done = PlansDone::default();
    for row in &rows {
        let job: Uuid = row.get("id");
        done.recorded.insert(job);
        if row.get::<_, bool>("cancelling") {
            done.cancelling.push(job);
            continue;
        }
        if row.get::<_, bool>("unleasable") {
            continue;
        }
        let max_attempts: i32 = row.get("max_attempts");
        let (plan, first) = offsets[&job];
        for (i, s) in plan.segments.iter().enumerate() {
            if !leased[first + i] {
                // Leases went to the first segments sent: none further on either.
                break;
            }
            done.leased.push(ClaimedSegment {
                id: ids[first + i],
                job_id: job,
                job_type: plan.step.job.job_type.clone(),
                run: plan.step.job.run,
                index: i as i32,
                start_ms: s.start_ms,
                end_ms: s.end_ms,
                attempt: 1,
                max_attempts,
                input: s.input.clone(),
                traceparent: plan.step.job.traceparent.clone(),
            });
        }
    }
    Ok(done)
}

/// Inserts a `media_files` row.
pub async fn insert_media<C: Session>(client: &C, m: &NewMedia) -> Result<()> {
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

/// A job to record as completed: its finalize step, or (with `whole`) its plan step when
/// the worker ran the whole of a single-segment job under the plan's lease.
#[derive(Debug, Clone, Copy)]
pub struct JobDone<'a> {
    pub step: &'a ClaimedStep,
    pub output: Option<&'a NewMedia>,
    pub whole: Option<Whole<'a>>,
}

/// What a single-segment job run whole leaves: its plan and its one segment's result.
#[derive(Debug, Clone, Copy)]
pub struct Whole<'a> {
    pub plan: &'a serde_json::Value,
    /// The segment's id, as its handler saw it.
    pub segment: Uuid,
    pub planned: &'a NewSegment,
    pub result: &'a serde_json::Value,
}

/// Records many completed jobs in one statement: each job is completed with its output
/// media row (and, for a job run whole, its plan and its one segment), inserted in the same
/// statement, so nothing of a completion whose lease was lost is written. Returns the jobs
/// completed.
pub async fn jobs_done(
    client: &Object,
    worker_id: &str,
    done: &[JobDone<'_>],
) -> Result<HashSet<Uuid>> {
    let jobs: Vec<Uuid> = done.iter().map(|d| d.step.job.id).collect();
    let attempts: Vec<i32> = done.iter().map(|d| d.step.attempt).collect();
    let outputs: Vec<Option<Uuid>> = done.iter().map(|d| d.output.map(|m| m.id)).collect();
    let steps: Vec<&str> = done.iter().map(|d| d.step.step.as_str()).collect();
    let wholes: Vec<Option<&Whole<'_>>> = done.iter().map(|d| d.whole.as_ref()).collect();
    let plans: Vec<Option<&serde_json::Value>> = wholes.iter().map(|w| w.map(|w| w.plan)).collect();
    let segments: Vec<Option<Uuid>> = wholes.iter().map(|w| w.map(|w| w.segment)).collect();
    let starts: Vec<Option<i32>> = wholes
        .iter()
        .map(|w| w.and_then(|w| w.planned.start_ms))
        .collect();
    let ends: Vec<Option<i32>> = wholes
        .iter()
        .map(|w| w.and_then(|w| w.planned.end_ms))
        .collect();
    let inputs: Vec<Option<&serde_json::Value>> =
        wholes.iter().map(|w| w.map(|w| &w.planned.input)).collect();
    let results: Vec<Option<&serde_json::Value>> =
        wholes.iter().map(|w| w.map(|w| w.result)).collect();
    let media: Vec<&NewMedia> = done.iter().filter_map(|d| d.output).collect();
    let ids: Vec<Uuid> = media.iter().map(|m| m.id).collect();
    let projects: Vec<Option<Uuid>> = media.iter().map(|m| m.project_id).collect();
    let users: Vec<Option<Uuid>> = media.iter().map(|m| m.user_id).collect();
    let keys: Vec<&str> = media.iter().map(|m| m.s3_key.as_str()).collect();
    let types: Vec<&str> = media.iter().map(|m| m.media_type.as_str()).collect();
    let durations: Vec<Option<f64>> = media.iter().map(|m| m.duration_seconds).collect();
    let sizes: Vec<i64> = media.iter().map(|m| m.size_bytes).collect();
    let mimetypes: Vec<&str> = media.iter().map(|m| m.mimetype.as_str()).collect();
    let derived: Vec<Option<Uuid>> = media.iter().map(|m| m.derived_from).collect();
    let metadata: Vec<&serde_json::Value> = media.iter().map(|m| &m.metadata).collect();
    let rows = db::query(
        client,
        sql::COMPLETE_JOBS,
        &[
            &worker_id, &jobs, &attempts, &outputs, &ids, &projects, &users, &keys, &types,
            &durations, &sizes, &mimetypes, &derived, &metadata, &steps, &plans, &segments,
            &starts, &ends, &inputs, &results,
        ],
    )
    .await?;
    Ok(rows.iter().map(|r| r.get("id")).collect())
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
