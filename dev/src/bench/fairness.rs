//! What fair share between users costs a claim: the claim rate of `sql/claim_segments.sql`
//! (users by weight, then their jobs) against the claim that was fair between jobs only
//! (`dev/sql/bench_claim_by_job.sql`, on the index it was written for), over the same
//! 1,000 users × 10 jobs × 100 pending segments.

use super::measure::{mean, pool};
use crate::cluster::ScratchDatabase;
use crate::sql;
use octavia::db;
use octavia::error::Result;
use octavia::queue::claim::{self, ClaimOptions};
use serde::Serialize;
use std::time::{Duration, Instant};
use uuid::Uuid;

#[derive(Debug, Serialize)]
pub struct Fairness {
    /// Segments claimed (and completed) per second by the claim fair between users, the
    /// mean of its rounds.
    pub user_fair_segments_per_second: f64,
    /// The same by the claim fair between jobs.
    pub job_fair_segments_per_second: f64,
    /// Each round's rate, in the order measured: users, jobs, jobs, users, users, jobs.
    pub user_fair_by_round: Vec<f64>,
    pub job_fair_by_round: Vec<f64>,
    /// Users who had a segment completed by the end, of the 1,000.
    pub users_served_user_fair: i64,
    pub users_served_job_fair: i64,
    pub connections: usize,
    pub rows_per_claim: i64,
}

const USERS: i32 = 1000;
const JOBS_PER_USER: i32 = 10;
const SEGMENTS_PER_JOB: i32 = 100;
/// Claim loops running at once, each on its connection, and the rows each claim asks for
/// (a worker of --concurrency 64 claims about that many).
const CONNECTIONS: usize = 4;
const ROWS_PER_CLAIM: i64 = 64;
/// Seconds each round is measured, after half a second of warm-up.
const ROUND_SECONDS: f64 = 3.0;

/// The claim before fair share between users ran on this index; the job-fair database gets
/// it back in place of the one the users' claim reads.
const JOB_FAIR_INDEXES: &str = "
DROP INDEX job_segments_claim_idx;
CREATE INDEX job_segments_claim_idx ON job_segments (priority, job_id, segment_index)
  WHERE status = 'pending';
";

/// The two claims over two databases filled alike, in rounds that alternate between them
/// (users, jobs, jobs, users, users, jobs) so the machine's slow and fast moments fall on
/// both; each round runs CONNECTIONS loops of claim-then-complete, in the worker's session
/// settings.
pub(super) async fn fairness() -> Result<Fairness> {
    let users_db = ScratchDatabase::create("bench").await?;
    let jobs_db = match ScratchDatabase::create("bench").await {
        Ok(db) => db,
        Err(e) => {
            users_db.drop().await?;
            return Err(e);
        }
    };
    let outcome = async {
        fill(&users_db.url, "").await?;
        fill(&jobs_db.url, JOB_FAIR_INDEXES).await?;
        let mut report = Fairness {
            user_fair_segments_per_second: 0.0,
            job_fair_segments_per_second: 0.0,
            user_fair_by_round: Vec::new(),
            job_fair_by_round: Vec::new(),
            users_served_user_fair: 0,
            users_served_job_fair: 0,
            connections: CONNECTIONS,
            rows_per_claim: ROWS_PER_CLAIM,
        };
        for jobs_first in [false, true, false] {
            for job_fair in [jobs_first, !jobs_first] {
                if job_fair {
                    let rate = claim_rate(&jobs_db.url, true).await?;
                    report.job_fair_by_round.push(rate);
                } else {
                    let rate = claim_rate(&users_db.url, false).await?;
                    report.user_fair_by_round.push(rate);
                }
            }
        }
        report.user_fair_segments_per_second = mean(&report.user_fair_by_round);
        report.job_fair_segments_per_second = mean(&report.job_fair_by_round);
        report.users_served_user_fair = served(&users_db.url).await?;
        report.users_served_job_fair = served(&jobs_db.url).await?;
        Ok(report)
    }
    .await;
    users_db.drop().await?;
    jobs_db.drop().await?;
    outcome
}

/// 1,000 users of 10 running jobs of 100 pending segments each, then `ddl`, vacuumed and
/// analyzed.
async fn fill(url: &str, ddl: &str) -> Result<()> {
    let pool = pool(url)?;
    let client = pool.get().await?;
    let users: Vec<Uuid> = db::query(&client, sql::BENCH_FILL_USERS, &[&USERS])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for chunk in users.chunks(100) {
        let chunk = chunk.to_vec();
        db::execute(
            &client,
            sql::BENCH_FILL_USER_JOBS,
            &[&chunk, &JOBS_PER_USER, &SEGMENTS_PER_JOB],
        )
        .await?;
    }
    client.batch_execute(ddl).await?;
    client.batch_execute("VACUUM ANALYZE").await?;
    Ok(())
}

/// Segments per second claimed and completed by CONNECTIONS loops for ROUND_SECONDS.
async fn claim_rate(url: &str, job_fair: bool) -> Result<f64> {
    let pool = pool(url)?;
    let mut loops = Vec::new();
    let start = Instant::now() + Duration::from_millis(500);
    let end = start + Duration::from_secs_f64(ROUND_SECONDS);
    for i in 0..CONNECTIONS {
        let mut client = pool.get().await?;
        client
            .batch_execute(
                "SET enable_seqscan = off; SET enable_bitmapscan = off;
                 SET synchronous_commit = off",
            )
            .await?;
        loops.push(tokio::spawn(async move {
            let options = ClaimOptions {
                worker_id: format!("bench-{i}"),
                job_types: None,
                lease: Duration::from_secs(30),
            };
            let mut counted = 0u64;
            loop {
                let ids: Vec<Uuid> = if job_fair {
                    let none: Option<Vec<String>> = None;
                    db::query(
                        &client,
                        sql::BENCH_CLAIM_BY_JOB,
                        &[&options.worker_id, &ROWS_PER_CLAIM, &none, &30.0f64],
                    )
                    .await?
                    .iter()
                    .map(|r| r.get("id"))
                    .collect()
                } else {
                    claim::segments(&mut client, &options, ROWS_PER_CLAIM)
                        .await?
                        .iter()
                        .map(|s| s.id)
                        .collect()
                };
                db::execute(&client, sql::BENCH_COMPLETE_CLAIMED, &[&ids]).await?;
                let now = Instant::now();
                if now >= end {
                    return Ok::<u64, octavia::error::Error>(counted);
                }
                if now >= start {
                    counted += ids.len() as u64;
                }
            }
        }));
    }
    let mut total = 0;
    for l in loops {
        total += l
            .await
            .map_err(|e| octavia::error::Error::Invalid(e.to_string()))??;
    }
    Ok(total as f64 / ROUND_SECONDS)
}

async fn served(url: &str) -> Result<i64> {
    let pool = pool(url)?;
    let client = pool.get().await?;
    Ok(db::query(&client, sql::BENCH_USERS_SERVED, &[])
        .await?
        .first()
        .map(|r| r.get(0))
        .unwrap_or(0))
}
