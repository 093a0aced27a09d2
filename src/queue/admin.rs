//! What operators (CLI) and users (API) do to jobs: cancel, retry, inspect.

use super::complete::settle;
use crate::credits::{self, Reservation};
use crate::db;
use crate::error::{Error, Result};
use crate::sql;
use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Object};
use serde::Serialize;
use uuid::Uuid;

async fn refuse<C: GenericClient + Sync>(client: &C, job: Uuid, action: &str) -> Error {
    match db::query_opt(client, sql::JOB_STATUS, &[&job]).await {
        Ok(Some(row)) => Error::Conflict(format!(
            "job {job} is {}: it cannot be {action}",
            row.get::<_, &str>(0)
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
        .is_some_and(|r| r.get::<_, &str>(0) == "cancelled");
    tx.commit().await?;
    Ok(ended)
}

/// Starts a new run of a failed or cancelled job from where it stopped: only its
/// unfinished segments run again. The new run reserves the job's cost again; when the
/// balance does not cover it nothing changes ([`Error::InsufficientCredits`]). Returns the
/// new run number.
pub async fn retry(client: &mut Object, job: Uuid) -> Result<i32> {
    let tx = client.transaction().await?;
    let Some(row) = db::query_opt(&tx, sql::RETRY_JOB, &[&job]).await? else {
        return Err(refuse(&tx, job, "retried").await);
    };
    let run: i32 = row.get(0);
    let cost: i64 = row.get(1);
    if let Some(user_id) = row.get::<_, Option<Uuid>>(2) {
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
    db::execute(&tx, sql::RESET_SEGMENTS, &[&job]).await?;
    db::execute(&tx, sql::NOTIFY_WORK, &[]).await?;
    tx.commit().await?;
    Ok(run)
}

/// A job as `octavia jobs show` and the API report it.
#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    pub id: Uuid,
    pub user_id: Option<Uuid>,
    pub project_id: Option<Uuid>,
    pub job_type: String,
    pub status: String,
    pub step: String,
    pub progress: i32,
    pub segments_done: i32,
    pub segments_total: i32,
    pub run: i32,
    pub attempts: i32,
    pub max_attempts: i32,
    pub priority: i16,
    pub run_at: DateTime<Utc>,
    pub locked_by: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub cancel_requested_at: Option<DateTime<Utc>>,
    pub metadata: serde_json::Value,
    pub cost_credits: i64,
    pub input_media_id: Option<Uuid>,
    pub output_media_id: Option<Uuid>,
    pub created_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A segment as `octavia jobs show` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentView {
    pub id: Uuid,
    pub index: i32,
    pub status: String,
    pub attempts: i32,
    pub max_attempts: i32,
    pub start_ms: Option<i32>,
    pub end_ms: Option<i32>,
    pub locked_by: Option<String>,
    pub last_error: Option<String>,
    pub input: Option<serde_json::Value>,
    pub result: Option<serde_json::Value>,
    pub finished_at: Option<DateTime<Utc>>,
}

pub async fn job<C: GenericClient + Sync>(client: &C, id: Uuid) -> Result<Option<JobView>> {
    Ok(db::query_opt(client, sql::JOB_BY_ID, &[&id])
        .await?
        .map(|r| JobView::from_row(&r)))
}

impl JobView {
    /// A row with the columns of `sql/job_by_id.sql`, in its order.
    pub fn from_row(r: &tokio_postgres::Row) -> JobView {
        JobView {
            id: r.get(0),
            user_id: r.get(1),
            project_id: r.get(2),
            job_type: r.get(3),
            status: r.get(4),
            step: r.get(5),
            progress: r.get::<_, Option<i32>>(6).unwrap_or(0),
            segments_done: r.get(7),
            segments_total: r.get(8),
            run: r.get(9),
            attempts: r.get(10),
            max_attempts: r.get(11),
            priority: r.get(12),
            run_at: r.get(13),
            locked_by: r.get(14),
            lease_expires_at: r.get(15),
            last_error: r.get(16),
            cancel_requested_at: r.get(17),
            metadata: r
                .get::<_, Option<serde_json::Value>>(18)
                .unwrap_or_default(),
            cost_credits: r.get::<_, Option<i64>>(19).unwrap_or(0),
            input_media_id: r.get(20),
            output_media_id: r.get(21),
            created_at: r.get(22),
            started_at: r.get(23),
            finished_at: r.get(24),
        }
    }
}

pub async fn segments<C: GenericClient + Sync>(client: &C, job: Uuid) -> Result<Vec<SegmentView>> {
    Ok(db::query(client, sql::SEGMENTS_OF_JOB, &[&job])
        .await?
        .iter()
        .map(|r| SegmentView {
            id: r.get(0),
            index: r.get(1),
            status: r.get::<_, Option<String>>(2).unwrap_or_default(),
            attempts: r.get(3),
            max_attempts: r.get(4),
            start_ms: r.get(5),
            end_ms: r.get(6),
            locked_by: r.get(7),
            last_error: r.get(8),
            input: r.get(9),
            result: r.get(10),
            finished_at: r.get(11),
        })
        .collect())
}

/// A line of `octavia jobs list`.
#[derive(Debug, Clone, Serialize)]
pub struct JobLine {
    pub id: Uuid,
    pub job_type: String,
    pub status: String,
    pub step: String,
    pub progress: i32,
    pub segments_done: i32,
    pub segments_total: i32,
    pub run: i32,
    pub created_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

pub async fn list<C: GenericClient + Sync>(
    client: &C,
    status: Option<&str>,
    limit: i64,
) -> Result<Vec<JobLine>> {
    Ok(db::query(client, sql::LIST_JOBS, &[&status, &limit])
        .await?
        .iter()
        .map(|r| JobLine {
            id: r.get(0),
            job_type: r.get(1),
            status: r.get(2),
            step: r.get(3),
            progress: r.get::<_, Option<i32>>(4).unwrap_or(0),
            segments_done: r.get(5),
            segments_total: r.get(6),
            run: r.get(7),
            created_at: r.get(8),
            finished_at: r.get(9),
            last_error: r.get(10),
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

pub async fn stats<C: GenericClient + Sync>(client: &C) -> Result<Stats> {
    let mut stats = Stats::default();
    for r in db::query(client, sql::QUEUE_STATS, &[]).await? {
        let kind: &str = r.get(0);
        let name: Option<String> = r.get(1);
        let name = name.unwrap_or_default();
        let n: Option<i64> = r.get(2);
        match kind {
            "jobs" => stats.jobs.push((name, n.unwrap_or(0))),
            "segments" => stats.segments.push((name, n.unwrap_or(0))),
            "leases" => stats.leases.push((name, n.unwrap_or(0))),
            _ => stats.oldest_queued_seconds = r.get(3),
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
pub async fn vacuum_problems<C: GenericClient + Sync>(client: &C) -> Result<Vec<String>> {
    let rows = db::query(client, sql::VACUUM_PROBLEMS, &[]).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
