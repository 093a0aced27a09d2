//! The queue engine against a real PostgreSQL, one file per concern: [`claim`],
//! [`complete`], [`fair_share`], [`retry_cancel`], [`wake_up`], [`heartbeat`], [`maintenance`] and the
//! [`cli`]. Real worker processes killed and stopped are in `worker_signals`.

mod claim;
mod cli;
mod complete;
mod fair_share;
mod heartbeat;
mod maintenance;
mod retry_cancel;
mod wake_up;

use crate::harness::TestDb;
use crate::support::*;
use octavia::queue::claim::ClaimOptions;
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;
use uuid::Uuid;

/// How the tests that call the claim statements directly claim: every job type, 30 s
/// leases.
pub fn claim_options(worker_id: &str) -> ClaimOptions {
    ClaimOptions {
        worker_id: worker_id.into(),
        job_types: None,
        lease: Duration::from_secs(30),
    }
}

/// Every job completed with progress 100, and each of `segments` segments completed at
/// its first attempt, its handler run exactly once.
pub async fn assert_every_segment_completed_once(db: &TestDb, probe: &Probe, segments: i64) {
    let client = db.client().await;
    let bad: i64 = client
        .query_one("SELECT count(*) FROM jobs WHERE status <> 'completed'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(bad, 0);
    let rows = client
        .query(
            "SELECT status, attempts, count(*) FROM job_segments GROUP BY 1, 2",
            &[],
        )
        .await
        .unwrap();
    let summary: Vec<(String, i32, i64)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(summary, vec![("completed".to_string(), 1, segments)]);
    // The handler ran once per segment: no segment was executed twice.
    let mut runs: HashMap<(Uuid, i32), usize> = HashMap::new();
    for c in probe.0.calls().iter().filter(|c| c.what == "segment") {
        *runs.entry((c.job, c.index)).or_default() += 1;
    }
    assert_eq!(runs.len() as i64, segments);
    assert!(runs.values().all(|&n| n == 1), "a segment ran twice");
    let progress: Vec<i32> = client
        .query("SELECT progress FROM jobs", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(progress.iter().all(|&p| p == 100));
}

/// Moves every job of `db` to its segments step with `per_job` pending segments each, as
/// a recorded plan leaves them.
pub async fn add_pending_segments(db: &TestDb, per_job: i32) {
    db.client()
        .await
        .execute(
            "WITH planned AS (
                 UPDATE jobs SET status = 'running', step = 'segments', segments_total = $1
                 RETURNING id, priority
             )
             INSERT INTO job_segments (job_id, segment_index, priority)
             SELECT id, i, priority FROM planned, generate_series(0, $1 - 1) i",
            &[&per_job],
        )
        .await
        .unwrap();
}

/// Records `plan` (a claimed plan step) with `n` default segments and claims them all for
/// `opts`' worker: their (id, attempt), in id order.
pub async fn plan_and_claim(
    client: &mut deadpool_postgres::Object,
    opts: &ClaimOptions,
    plan: &octavia::job::ClaimedStep,
    n: usize,
) -> Vec<(Uuid, i32)> {
    let segs = vec![octavia::job::NewSegment::default(); n];
    let data = json!({});
    let record = octavia::queue::complete::PlanRecord {
        step: plan,
        segments: &segs,
        data: &data,
    };
    octavia::queue::complete::plans_done(client, &opts.worker_id, &[record], None)
        .await
        .unwrap();
    let mut claimed: Vec<(Uuid, i32)> = octavia::queue::claim::segments(client, opts, n as i64)
        .await
        .unwrap()
        .iter()
        .map(|s| (s.id, s.attempt))
        .collect();
    claimed.sort();
    claimed
}
