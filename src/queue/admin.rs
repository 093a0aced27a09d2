//! What operators (CLI) and users (API) do to jobs: cancel, retry, inspect.

use super::complete::settle;
use crate::credits::{self, Reservation};
use crate::db;
use crate::db::Session;
use crate::error::{Error, Result};
use crate::job::{JobStatus, JobView, SegmentView};
use crate::sql;
use chrono::{DateTime, Utc};
use deadpool_postgres::Object;
use serde::Serialize;
use uuid::Uuid;

async fn refuse<C: Session>(client: &C, job: Uuid, action: &str) -> Error {
    match db::query_opt(client, sql::JOB_STATUS, &[&job]).await {
        Ok(Some(row)) => Error::Conflict(format!(
            "job {job} is {}: it cannot be {action}",
            row.get::<_, JobStatus>("status")
        )),
        Ok(None) => Error::NotFound {
            what: "job",
            id: job.to_string(),
        },
        Err(e) => e,
    }
}

/// Cancels a job: no new segment of it is claimed; running handlers are told at their
/// next heartbeat; the job ends `cancelled` (and is refunded) as soon as nothing of it
/// runs, which is at once when nothing does. Returns whether it ended already.
pub async fn cancel(client: &mut Object, job: Uuid) -> Result<bool> {
    let tx = client.transaction().await?;
    if db::query_opt(&tx, sql::REQUEST_CANCEL, &[&job])
        .await?
        .is_none()
    {
        return Err(refuse(&tx, job, "cancelled").await);
    }
    settle(&tx, &[job]).await?;
    let ended = db::query_opt(&tx, sql::JOB_STATUS, &[&job])
        .await?
        .is_some_and(|r| r.get::<_, JobStatus>("status") == JobStatus::Cancelled);
    tx.commit().await?;
    Ok(ended)
}

/// A retried job's new run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retried {
    pub run: i32,
    /// The job plans again from its input: its intermediate objects had been swept
    /// (`storage.failed_job_retention_seconds`), so there were no segments to resume from.
    pub replanned: bool,
}

/// Starts a new run of a failed or cancelled job from where it stopped: only its
/// unfinished segments run again, or, once its intermediate objects were swept, the whole
/// job from its plan. The new run reserves the job's cost again; when the balance does
/// not cover it nothing changes ([`Error::InsufficientCredits`]).
pub async fn retry(client: &mut Object, job: Uuid) -> Result<Retried> {
    let tx = client.transaction().await?;
    let Some(row) = db::query_opt(&tx, sql::RETRY_JOB, &[&job]).await? else {
        return Err(refuse(&tx, job, "retried").await);
    };
    let run: i32 = row.get("run");
    let replanned: bool = row.get("replan");
    let cost: i64 = row.get("cost_credits");
    if let Some(user_id) = row.get::<_, Option<Uuid>>("user_id") {
        credits::reserve(
            &tx,
            &[Reservation {
                user_id,
                job_id: job,
                run,
                amount: cost,
            }],
        )
        .await?;
    }
    let segments = if replanned {
        sql::DELETE_SEGMENTS
    } else {
        sql::RESET_SEGMENTS
    };
    db::execute(&tx, segments, &[&job]).await?;
    db::execute(&tx, sql::NOTIFY_WORK, &[]).await?;
    tx.commit().await?;
    Ok(Retried { run, replanned })
}

pub async fn job<C: Session>(client: &C, id: Uuid) -> Result<Option<JobView>> {
    Ok(db::query_opt(client, sql::JOB_BY_ID, &[&id])
        .await?
        .map(|r| JobView::from_row(&r)))
}

pub async fn segments<C: Session>(client: &C, job: Uuid) -> Result<Vec<SegmentView>> {
    Ok(db::query(client, sql::SEGMENTS_OF_JOB, &[&job])
        .await?
        .iter()
        .map(SegmentView::from_row)
        .collect())
}

/// A line of `octavia jobs list`.
#[derive(Debug, Clone, Serialize)]
pub struct JobLine {
    pub id: Uuid,
    pub job_type: String,
    pub status: JobStatus,
    pub step: String,
    pub progress: i32,
    pub segments_done: i32,
    pub segments_total: i32,
    pub run: i32,
    pub created_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

pub async fn list<C: Session>(
    client: &C,
    status: Option<JobStatus>,
    limit: i64,
) -> Result<Vec<JobLine>> {
    Ok(db::query(client, sql::LIST_JOBS, &[&status, &limit])
        .await?
        .iter()
        .map(|r| JobLine {
            id: r.get("id"),
            job_type: r.get("job_type"),
            status: r.get("status"),
            step: r.get("step"),
            progress: r.get::<_, Option<i32>>("progress").unwrap_or(0),
            segments_done: r.get("segments_done"),
            segments_total: r.get("segments_total"),
            run: r.get("run"),
            created_at: r.get("created_at"),
            finished_at: r.get("finished_at"),
            last_error: r.get("last_error"),
        })
        .collect())
}

/// `octavia queue stats`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    pub jobs: Vec<(String, i64)>,
    pub segments: Vec<(String, i64)>,
    pub oldest_queued_seconds: Option<f64>,
    pub leases: Vec<(String, i64)>,
    /// See [`vacuum_problems`].
    pub vacuum_problems: Vec<String>,
}

pub async fn stats<C: Session>(client: &C) -> Result<Stats> {
    let mut stats = Stats::default();
    for r in db::query(client, sql::QUEUE_STATS, &[]).await? {
        let kind: &str = r.get("kind");
        let name: Option<String> = r.get("name");
        let name = name.unwrap_or_default();
        let n: Option<i64> = r.get("n");
        match kind {
            "jobs" => stats.jobs.push((name, n.unwrap_or(0))),
            "segments" => stats.segments.push((name, n.unwrap_or(0))),
            "leases" => stats.leases.push((name, n.unwrap_or(0))),
            _ => stats.oldest_queued_seconds = r.get("seconds"),
        }
    }
    stats.vacuum_problems = vacuum_problems(client).await?;
    Ok(stats)
}

/// Why the queue's tables would not be vacuumed (autovacuum off on the server, or on
/// `jobs` or `job_segments`), one message each; empty when nothing is wrong. Each claim
/// and completion leaves a dead row version behind, so without vacuum the tables and the
/// claim index grow without end and every claim gets slower: a soak of jobs of 10
/// segments at 5,300 segments/s fell to 3,200 within four minutes on a server with
/// autovacuum off, against a steady rate with it on.
pub async fn vacuum_problems<C: Session>(client: &C) -> Result<Vec<String>> {
    let rows = db::query(client, sql::VACUUM_PROBLEMS, &[]).await?;
    Ok(rows.iter().map(|r| r.get("problem")).collect())
}
