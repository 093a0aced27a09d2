//! The claim rate on large tables against small ones: what a backlog of millions of rows
//! costs a claim.

use super::measure::{self, mean, pool};
use crate::cluster::ScratchDatabase;
use crate::sql;
use octavia::db;
use octavia::error::Result;
use serde::Serialize;
use std::path::Path;
use uuid::Uuid;

#[derive(Debug, Serialize)]
pub struct Scale {
    /// The mean of the rounds below.
    pub small_tables_segments_per_second: f64,
    pub large_tables_segments_per_second: f64,
    /// Each round's rate, in the order measured: small, large, large, small, small,
    /// large.
    pub small_tables_by_round: Vec<f64>,
    pub large_tables_by_round: Vec<f64>,
}

/// Seconds each round of the claim rate is measured, after a second of warm-up.
const SCALE_ROUND_SECONDS: u64 = 3;

/// The claim rate on small tables (1,000 running jobs of 400 pending segments) and on large
/// ones (1,000 running jobs of 1,000 pending segments beside 5,000 completed jobs of 1,000
/// segments), both over 1,000 jobs so that only the tables' size differs. Measured in
/// rounds that alternate between the two databases (small, large, large, small, small,
/// large), so the machine's slow and fast minutes fall on both alike: measured one after
/// the other, minutes apart with the large fill between them, the same binary gave 77 %
/// and 114 % on different runs. Each round's worker is a process of `worker` (an
/// `octavia-worker`).
pub(super) async fn scale(worker: &Path) -> Result<Scale> {
    let small = ScratchDatabase::create("bench").await?;
    let large = match ScratchDatabase::create("bench").await {
        Ok(db) => db,
        Err(e) => {
            small.drop().await?;
            return Err(e);
        }
    };
    let outcome = async {
        fill(&small.url, 0, 0, 1000, 400).await?;
        fill(&large.url, 5000, 1000, 1000, 1000).await?;
        let mut report = Scale {
            small_tables_segments_per_second: 0.0,
            large_tables_segments_per_second: 0.0,
            small_tables_by_round: Vec::new(),
            large_tables_by_round: Vec::new(),
        };
        for large_first in [false, true, false] {
            for is_large in [large_first, !large_first] {
                let (db, rounds) = if is_large {
                    (&large, &mut report.large_tables_by_round)
                } else {
                    (&small, &mut report.small_tables_by_round)
                };
                rounds.push(measure::claim_rate(worker, &db.url, 64, SCALE_ROUND_SECONDS).await?);
            }
        }
        report.small_tables_segments_per_second = mean(&report.small_tables_by_round);
        report.large_tables_segments_per_second = mean(&report.large_tables_by_round);
        Ok(report)
    }
    .await;
    small.drop().await?;
    large.drop().await?;
    outcome
}

/// Fills the tables with `finished_jobs` completed jobs of `finished_segments` segments
/// each and `queued_jobs` running jobs of `queued_segments` pending segments each, then
/// vacuums and analyzes them.
async fn fill(
    url: &str,
    finished_jobs: i32,
    finished_segments: i32,
    queued_jobs: i32,
    queued_segments: i32,
) -> Result<()> {
    let pool = pool(url)?;
    let client = pool.get().await?;
    for (status, step, jobs, segments, seg_status) in [
        (
            "completed",
            "done",
            finished_jobs,
            finished_segments,
            "completed",
        ),
        (
            "running",
            "segments",
            queued_jobs,
            queued_segments,
            "pending",
        ),
    ] {
        let mut left = jobs;
        while left > 0 {
            let n = left.min(100);
            let ids: Vec<Uuid> = db::query(
                &client,
                sql::BENCH_FILL_JOBS,
                &[&status, &step, &segments, &n],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
            db::execute(
                &client,
                sql::BENCH_FILL_SEGMENTS,
                &[&ids, &seg_status, &segments],
            )
            .await?;
            left -= n;
        }
    }
    client.batch_execute("VACUUM ANALYZE").await?;
    Ok(())
}
