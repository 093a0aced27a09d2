//! Claiming: every segment to exactly one worker, in priority and age order whatever the
//! plan, shared fairly between jobs, only the job types a worker runs, and through the
//! indexes however stale the statistics.

use super::{add_pending_segments, assert_every_segment_completed_once, claim_options};
use crate::harness::TestDb;
use crate::support::*;
use octavia::queue::admin;
use octavia::queue::claim::{self};
use octavia::queue::complete::{self};
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

#[tokio::test]
async fn three_workers_complete_every_segment_exactly_once() {
    let db = TestDb::new().await;
    let probe = Probe::default();
    let jobs = enqueue_jobs(
        &db,
        (0..12)
            .map(|_| job("probe", json!({ "segments": 25 })))
            .collect(),
    )
    .await;
    let workers: Vec<TestWorker> = (0..3)
        .map(|i| TestWorker::start(fast_config(&db), registry_with(&probe), &format!("w{i}")))
        .collect();
    wait_terminal(&db, &jobs, 60).await;
    for w in workers {
        w.stop().await;
    }
    assert_every_segment_completed_once(&db, &probe, 300).await;
}

#[tokio::test]
async fn priority_and_run_at_order_the_claims() {
    let db = TestDb::new().await;
    let probe = Probe::default();
    let mut low = job("probe", json!({ "segments": 1 }));
    low.priority = 5;
    let mut high = job("probe", json!({ "segments": 1 }));
    high.priority = -5;
    let mut later = job("probe", json!({ "segments": 1 }));
    let not_before = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
    later.run_at = Some(not_before);
    let normal = job("probe", json!({ "segments": 1 }));
    let ids = enqueue_jobs(&db, vec![low, later, normal, high]).await;
    let (low, later, normal, high) = (ids[0], ids[1], ids[2], ids[3]);
    let mut config = fast_config(&db);
    config.worker.concurrency = 1;
    let worker = TestWorker::start(config, registry_with(&probe), "w");
    wait_terminal(&db, &ids, 30).await;
    worker.stop().await;
    let plans: Vec<Uuid> = probe
        .0
        .calls()
        .iter()
        .filter(|c| c.what == "plan")
        .map(|c| c.job)
        .collect();
    assert_eq!(plans, vec![high, normal, low, later]);
    let client = db.client().await;
    let started: chrono::DateTime<chrono::Utc> = client
        .query_one("SELECT started_at FROM jobs WHERE id = $1", &[&later])
        .await
        .unwrap()
        .get(0);
    assert!(
        started >= not_before,
        "a delayed job started at {started}, before {not_before}"
    );
}

#[tokio::test]
async fn a_huge_job_does_not_starve_a_small_one_inserted_after_it() {
    let db = TestDb::new().await;
    let probe = Probe::default();
    *probe.0.segment_ms.lock().unwrap() = 5;
    let [big] = enqueue_jobs(&db, vec![job("probe", json!({ "segments": 1000 }))]).await[..] else {
        unreachable!()
    };
    let worker = TestWorker::start(fast_config(&db), registry_with(&probe), "w");
    wait_for(20, "the big job to run", || async {
        let j = admin::job(&db.client().await, big).await.unwrap().unwrap();
        (j.segments_done > 10).then_some(())
    })
    .await;
    let [small] = enqueue_jobs(&db, vec![job("probe", json!({ "segments": 1 }))]).await[..] else {
        unreachable!()
    };
    wait_terminal(&db, &[small], 30).await;
    let big_done = admin::job(&db.client().await, big)
        .await
        .unwrap()
        .unwrap()
        .segments_done;
    assert!(
        big_done < 900,
        "the small job waited for most of the big one ({big_done}/1000)"
    );
    worker.stop().await;
}

#[test]
fn registering_a_job_type_twice_is_an_error() {
    let mut registry = registry();
    let err = registry
        .register(octavia::job_types::noop::Noop)
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("`noop` is registered twice"),
        "{err}"
    );
}

#[tokio::test]
async fn a_worker_claims_only_its_job_types() {
    let db = TestDb::new().await;
    let probe = Probe::default();
    let ids = enqueue_jobs(
        &db,
        vec![
            job("noop", json!({ "segments": 2 })),
            job("probe", json!({ "segments": 2 })),
        ],
    )
    .await;
    let mut config = fast_config(&db);
    config.worker.job_types = vec!["probe".into()];
    let worker = TestWorker::start(config, registry_with(&probe), "probe-only");
    wait_terminal(&db, &ids[1..], 30).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        status(&db, ids[0]).await,
        "queued",
        "a noop job was claimed"
    );
    worker.stop().await;
    let worker = TestWorker::start(fast_config(&db), registry_with(&probe), "any");
    wait_terminal(&db, &ids, 30).await;
    worker.stop().await;
    assert_eq!(status(&db, ids[0]).await, "completed");
}

/// Found by `octavia-dev chaos kills`: segments are handed out in (priority, job age) order
/// whatever plan the database picks. The claim once let the planner drive it from `jobs`
/// in heap order when its statistics (taken while the jobs were queued) made that look
/// cheap: priorities were ignored, and a job whose row had moved (every progress update
/// moves it) waited behind all the others, a killed worker's rescued segments with it.
/// The planner settings below make that plan the cheapest, as those statistics did.
#[tokio::test]
async fn segment_claims_follow_priority_then_age_whatever_the_plan() {
    let db = TestDb::new().await;
    let mut jobs: Vec<_> = (0..400).map(|_| job("probe", json!({}))).collect();
    // The newest job, but the most urgent.
    jobs[399].priority = -1;
    let ids = enqueue_jobs(&db, jobs).await;
    // Planned, two pending segments each, as plans_done leaves them...
    add_pending_segments(&db, 2).await;
    let mut client = db.client().await;
    // ...then the oldest and the urgent one touched: their rows move to the heap's end.
    let moved: Vec<Uuid> = ids[..50].iter().chain([&ids[399]]).copied().collect();
    client
        .execute(
            "UPDATE jobs SET updated_at = now() WHERE id = ANY($1)",
            &[&moved],
        )
        .await
        .unwrap();
    let opts = claim_options("w");
    let mut tx = client.transaction().await.unwrap();
    tx.batch_execute(
        "SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off;
         SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off",
    )
    .await
    .unwrap();
    let claimed = claim::segments(&mut tx, &opts, 8).await.unwrap();
    tx.commit().await.unwrap();
    let mut got: Vec<Uuid> = claimed.iter().map(|s| s.job_id).collect();
    got.sort();
    got.dedup();
    // The urgent job first (alone at its priority, its share is all it has: both its
    // segments), then six of the oldest jobs, one segment each: at priority 0 the one
    // user's share of 8 rows goes to its 8 oldest jobs, a row each, visited in random
    // order, and the batch is full after six of them.
    assert_eq!(got.len(), 7, "{got:?}");
    assert!(
        got.contains(&ids[399]),
        "the urgent job was not claimed: {got:?}"
    );
    for id in got.iter().filter(|id| **id != ids[399]) {
        assert!(ids[..8].contains(id), "{id} is not among the oldest jobs");
    }
    assert_eq!(claimed.len(), 8);
}

/// A plan made while job_segments looked empty stays cached in the prepared statement.
/// Here the claim and the completion are planned generically, on the worker's session
/// settings, over a table last vacuumed empty and filled since: they must still reach
/// rows only through ordered index scans and TID scans. A bitmap scan in the claim's walk
/// read every pending entry of every job per claim (300 ms instead of 2 ms).
#[tokio::test]
async fn claims_and_completions_keep_to_their_indexes_when_statistics_say_empty() {
    let db = TestDb::new().await;
    let jobs: Vec<_> = (0..10).map(|_| job("probe", json!({}))).collect();
    enqueue_jobs(&db, jobs).await;
    add_pending_segments(&db, 1000).await;
    let client = db.client().await;
    // Analyzed while it held work, then emptied (pruned) and vacuumed...
    client.batch_execute("ANALYZE job_segments").await.unwrap();
    client
        .batch_execute("DELETE FROM job_segments")
        .await
        .unwrap();
    client
        .batch_execute("VACUUM (TRUNCATE false, ANALYZE) job_segments, jobs")
        .await
        .unwrap();
    // ...then filled by a burst of plans before autovacuum's next ANALYZE.
    add_pending_segments(&db, 10_000).await;
    let config = octavia::config::DatabaseConfig {
        url: db.url.clone(),
        ..Default::default()
    };
    let options = octavia::worker::lease_session_options(false);
    let pool = octavia::db::pool_with(&config, 1, Some(options)).unwrap();
    let session = pool.get().await.unwrap();
    session
        .batch_execute(&format!(
            "SET plan_cache_mode = force_generic_plan;
             PREPARE claim(text, bigint, text[], float8) AS {};
             PREPARE complete(uuid[], int[], jsonb[], uuid[], text, float8) AS {}",
            octavia::sql::CLAIM_SEGMENTS,
            octavia::sql::COMPLETE_SEGMENTS
        ))
        .await
        .unwrap();
    let plan = |rows: Vec<tokio_postgres::Row>| -> String {
        rows[0].get::<_, serde_json::Value>(0).to_string()
    };
    let claim = plan(
        session
            .query(
                "EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE claim('w', 64, NULL, 30)",
                &[],
            )
            .await
            .unwrap(),
    );
    let claimed: Vec<(Uuid, i32)> = client
        .query(
            "SELECT id, attempts FROM job_segments WHERE status = 'running'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(claimed.len(), 64);
    let list = |items: Vec<String>| items.join(",");
    let complete = plan(
        session
            .query(
                &format!(
                    "EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE complete('{{{}}}', '{{{}}}', \
                     '{{{}}}', '{{}}', 'w', 30)",
                    list(claimed.iter().map(|c| c.0.to_string()).collect()),
                    list(claimed.iter().map(|c| c.1.to_string()).collect()),
                    list(claimed.iter().map(|_| "\"{}\"".to_string()).collect()),
                ),
                &[],
            )
            .await
            .unwrap(),
    );
    let completed: i64 = client
        .query_one(
            "SELECT count(*) FROM job_segments WHERE status = 'completed'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(completed, 64);
    for (name, plan) in [("claim", claim), ("completion", complete)] {
        for scan in ["Seq Scan", "Bitmap Heap Scan"] {
            assert!(
                !plan.contains(scan),
                "the {name} plan uses a {scan}: {plan}"
            );
        }
    }
}

/// Shares are rounded up, so a batch smaller than twice the ready jobs runs out before the
/// last jobs' turn. Visited in a fixed order, the same jobs were shortchanged claim after
/// claim (one job of ten ran at a twentieth of the others' rate in `octavia-dev bench`).
#[tokio::test]
async fn a_batch_too_small_for_every_share_does_not_always_skip_the_same_jobs() {
    let db = TestDb::new().await;
    let jobs: Vec<_> = (0..10).map(|_| job("probe", json!({}))).collect();
    let ids = enqueue_jobs(&db, jobs).await;
    add_pending_segments(&db, 100).await;
    let mut client = db.client().await;
    let opts = claim_options("w");
    // 15 slots for 10 jobs: shares of 2, so each claim serves 8 jobs. With the visit in
    // random order, a job is left out of all 10 claims once in about 10 million runs.
    let mut served = std::collections::HashMap::<Uuid, usize>::new();
    for _ in 0..10 {
        let claimed = claim::segments(&mut client, &opts, 15).await.unwrap();
        assert_eq!(claimed.len(), 15);
        for s in claimed {
            *served.entry(s.job_id).or_default() += 1;
        }
    }
    for id in &ids {
        assert!(
            served.get(id).is_some_and(|n| *n > 0),
            "job {id} got nothing: {served:?}"
        );
    }
}

#[tokio::test]
async fn jobs_waiting_out_a_retry_delay_do_not_hold_back_jobs_with_work_ready() {
    let db = TestDb::new().await;
    // More delayed jobs than a whole batch, older than the one with work ready.
    let ids = enqueue_jobs(
        &db,
        (0..12)
            .map(|_| job("probe", json!({ "segments": 1 })))
            .collect(),
    )
    .await;
    let mut client = db.client().await;
    let opts = claim_options("a");
    let steps = claim::steps(&client, &opts, 20).await.unwrap();
    let segs = [octavia::job::NewSegment::default()];
    let data = json!({});
    let records: Vec<complete::PlanRecord> = steps
        .iter()
        .map(|s| complete::PlanRecord {
            step: s,
            segments: &segs,
            data: &data,
        })
        .collect();
    complete::plans_done(&client, "a", &records, None)
        .await
        .unwrap();
    // Every job but the newest waits an hour for its retry.
    client
        .execute(
            "UPDATE job_segments SET run_at = now() + interval '1 hour' WHERE job_id <> $1",
            &[&ids[11]],
        )
        .await
        .unwrap();
    let claimed = claim::segments(&mut client, &opts, 8).await.unwrap();
    assert_eq!(
        claimed.iter().map(|s| s.job_id).collect::<Vec<_>>(),
        vec![ids[11]]
    );
}
