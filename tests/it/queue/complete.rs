//! Recording outcomes: results and plans written in batches and in parts, fenced by
//! attempt, outputs recorded with their job, handler failures (unknown type, panic, hang)
//! recorded as failed attempts, and the next step leased on the spot.

use super::{assert_every_segment_completed_once, claim_options};
use crate::harness::TestDb;
use crate::support::*;
use octavia::queue::claim::{self};
use octavia::queue::complete::{self, Failure, FailureOutcome};
use octavia::queue::{admin, heartbeat, rescue};
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

#[tokio::test]
async fn plans_too_large_for_one_statement_are_recorded_in_parts_each_segment_once() {
    // Four plans of 3,000 segments finish together: their batch is written as several
    // statements at once, the first part's segments leased to the planning worker.
    let db = TestDb::new().await;
    let probe = Probe::default();
    let jobs = enqueue_jobs(
        &db,
        (0..4)
            .map(|_| job("probe", json!({ "segments": 3000 })))
            .collect(),
    )
    .await;
    let worker = TestWorker::start(fast_config(&db), registry_with(&probe), "w0");
    wait_terminal(&db, &jobs, 120).await;
    worker.stop().await;
    assert_every_segment_completed_once(&db, &probe, 12_000).await;
}

#[tokio::test]
async fn a_worker_that_lost_its_lease_cannot_overwrite_the_new_owner() {
    let db = TestDb::new().await;
    let probe = Probe::default();
    // Plan the job with a worker, then stop it so the segments stay pending.
    *probe.0.segment_ms.lock().unwrap() = 60_000;
    let [id] = enqueue_jobs(&db, vec![job("probe", json!({ "segments": 1 }))]).await[..] else {
        unreachable!()
    };
    let mut client = db.client().await;
    let opts = claim_options;
    let plan = claim::steps(&client, &opts("a"), 10).await.unwrap();
    assert_eq!(plan.len(), 1);
    let segs = [octavia::job::NewSegment::default()];
    let data = json!({});
    let record = complete::PlanRecord {
        step: &plan[0],
        segments: &segs,
        data: &data,
    };
    let planned = complete::plans_done(&client, "a", &[record], None)
        .await
        .unwrap();
    assert!(planned.recorded.contains(&id) && planned.cancelling.is_empty());
    assert!(planned.leased.is_empty());

    let old = claim::segments(&mut client, &opts("a"), 10)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(old.attempt, 1);
    // A's lease expires (as if it hung); the rescuer gives the segment back; B claims it.
    client
        .execute(
            "UPDATE job_segments SET lease_expires_at = now() - interval '1 second'",
            &[],
        )
        .await
        .unwrap();
    let rescued = rescue::run(&mut client, 100).await.unwrap();
    assert_eq!(rescued.segments_requeued, 1);
    let new = claim::segments(&mut client, &opts("b"), 10)
        .await
        .unwrap()
        .remove(0);
    assert_eq!((new.id, new.attempt), (old.id, 2));

    // A wakes up: its heartbeat renews nothing, its result and its failure are refused.
    let renewed = heartbeat::renew(&client, "a", Duration::from_secs(30), &[(old.id, 1)], &[])
        .await
        .unwrap();
    assert!(renewed.is_empty());
    let done = complete::segments(&client, &[(old.id, 1, json!({"by": "a"}))], None)
        .await
        .unwrap();
    assert!(done.recorded.is_empty());
    let failure = Failure::Fatal {
        error: "from a".into(),
    };
    assert_eq!(
        complete::segment_failed(&mut client, &old, &failure)
            .await
            .unwrap(),
        FailureOutcome::Stale
    );
    let row = client
        .query_one(
            "SELECT status, locked_by, attempts FROM job_segments WHERE id = $1",
            &[&old.id],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            row.get::<_, String>(0),
            row.get::<_, String>(1),
            row.get::<_, i32>(2)
        ),
        ("running".into(), "b".into(), 2)
    );
    // B's result is recorded, and the job moves on to finalize.
    let done = complete::segments(&client, &[(new.id, 2, json!({"by": "b"}))], None)
        .await
        .unwrap();
    assert!(done.recorded.contains(&new.id) && done.finalize_ready);
    let job = admin::job(&client, id).await.unwrap().unwrap();
    assert_eq!((job.step.as_str(), job.progress), ("finalize", 100));
    let result: serde_json::Value = client
        .query_one("SELECT result FROM job_segments WHERE id = $1", &[&new.id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(result, json!({"by": "b"}));
}

#[tokio::test]
async fn unknown_job_types_fail_with_a_clear_error_and_the_worker_goes_on() {
    let db = TestDb::new().await;
    let probe = Probe::default();
    let ids = enqueue_jobs(
        &db,
        vec![
            job("no_such_type", json!({})),
            job("probe", json!({ "segments": 2 })),
        ],
    )
    .await;
    let worker = TestWorker::start(fast_config(&db), registry_with(&probe), "w");
    wait_terminal(&db, &ids, 30).await;
    worker.stop().await;
    let client = db.client().await;
    let bad = admin::job(&client, ids[0]).await.unwrap().unwrap();
    assert_eq!(bad.status, "failed");
    assert!(
        bad.last_error
            .as_deref()
            .unwrap()
            .contains("unknown job type `no_such_type`"),
        "{:?}",
        bad.last_error
    );
    assert_eq!(status(&db, ids[1]).await, "completed");
}

#[tokio::test]
async fn a_panicking_handler_fails_its_attempt_and_the_worker_keeps_serving() {
    let db = TestDb::new().await;
    let probe = Probe::default();
    probe.0.panics.lock().unwrap().insert(0);
    let mut j = job("probe", json!({ "segments": 1 }));
    j.max_attempts = 2;
    let ids = enqueue_jobs(&db, vec![j, job("probe", json!({ "segments": 0 }))]).await;
    let worker = TestWorker::start(fast_config(&db), registry_with(&probe), "w");
    wait_terminal(&db, &ids, 30).await;
    worker.stop().await;
    let client = db.client().await;
    let failed = admin::job(&client, ids[0]).await.unwrap().unwrap();
    assert_eq!(failed.status, "failed");
    let error = failed.last_error.unwrap();
    assert!(
        error.contains("handler panicked: probe panics on segment 0"),
        "{error}"
    );
    assert_eq!(status(&db, ids[1]).await, "completed");
}

#[tokio::test]
async fn finalize_records_the_output_media_with_the_job() {
    let db = TestDb::new().await;
    let user = user(&db, 0).await;
    let probe = Probe::default();
    *probe.0.output.lock().unwrap() = true;
    let mut j = job("probe", json!({ "segments": 3 }));
    j.user_id = Some(user);
    let id = j.id;
    enqueue_jobs(&db, vec![j]).await;
    let worker = TestWorker::start(fast_config(&db), registry_with(&probe), "w");
    wait_terminal(&db, &[id], 30).await;
    worker.stop().await;
    let client = db.client().await;
    let row = client
        .query_one(
            "SELECT j.status::text, m.s3_key, m.duration_seconds::float8, m.user_id, m.metadata
             FROM jobs j JOIN media_files m ON m.id = j.output_media_id WHERE j.id = $1",
            &[&id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "completed");
    assert_eq!(
        row.get::<_, String>(1),
        format!("jobs/{id}/output/result.txt")
    );
    assert_eq!(row.get::<_, f64>(2), 1.5);
    assert_eq!(row.get::<_, Option<Uuid>>(3), Some(user));
    assert_eq!(row.get::<_, serde_json::Value>(4), json!({ "segments": 3 }));
}

#[tokio::test]
async fn a_hung_handler_times_out_and_its_attempt_is_retried() {
    let db = TestDb::new().await;
    let probe = Probe::default();
    *probe.0.segment_ms.lock().unwrap() = 60_000;
    *probe.0.timeout.lock().unwrap() = Some(Duration::from_millis(300));
    let mut j = job("probe", json!({ "segments": 1 }));
    j.max_attempts = 2;
    let id = j.id;
    enqueue_jobs(&db, vec![j]).await;
    let worker = TestWorker::start(fast_config(&db), registry_with(&probe), "w");
    wait_terminal(&db, &[id], 30).await;
    worker.stop().await;
    let client = db.client().await;
    let job = admin::job(&client, id).await.unwrap().unwrap();
    assert_eq!(job.status, "failed");
    assert!(
        job.last_error
            .as_deref()
            .unwrap()
            .contains("timed out after 0.3 s"),
        "{:?}",
        job.last_error
    );
    let calls = probe.0.segment_calls(id, 0);
    assert_eq!(calls.len(), 2, "retried once after the timeout");
    assert!(
        calls.iter().all(|c| c.worker_saw_cancel),
        "the handler was told to stop"
    );
}

#[tokio::test]
async fn completions_lease_the_next_step_to_a_worker_with_free_slots() {
    let db = TestDb::new().await;
    let ids = enqueue_jobs(
        &db,
        vec![
            job("probe", json!({ "segments": 3 })),
            job("probe", json!({ "segments": 1 })),
        ],
    )
    .await;
    let mut client = db.client().await;
    let opts = claim_options("a");
    let steps = claim::steps(&client, &opts, 10).await.unwrap();
    assert_eq!(steps.len(), 2);
    let segs: Vec<octavia::job::NewSegment> = (0..3).map(|_| Default::default()).collect();
    let data = json!({});
    let records: Vec<complete::PlanRecord> = steps
        .iter()
        .map(|s| complete::PlanRecord {
            step: s,
            segments: if s.job.id == ids[0] {
                &segs[..]
            } else {
                &segs[..1]
            },
            data: &data,
        })
        .collect();
    let lease = complete::Lease {
        worker_id: "a",
        duration: Duration::from_secs(30),
        jobs: &[],
        segments: 2,
    };
    // Two of the four new segments are leased on the spot, the first job's first.
    let planned = complete::plans_done(&client, "a", &records, Some(lease))
        .await
        .unwrap();
    let leased: Vec<(Uuid, i32)> = planned.leased.iter().map(|s| (s.job_id, s.index)).collect();
    let first = steps[0].job.id;
    assert_eq!(leased, vec![(first, 0), (first, 1)]);
    let rows: Vec<(Uuid, i32, String, Option<String>, i32)> = client
        .query(
            "SELECT job_id, segment_index, status, locked_by, attempts FROM job_segments ORDER BY job_id, segment_index",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    let running = rows.iter().filter(|r| r.2 == "running").count();
    assert_eq!(running, 2);
    assert!(
        rows.iter()
            .all(|r| (r.2 == "running") == (r.3.as_deref() == Some("a") && r.4 == 1))
    );

    // The rest is claimed; completing everything with room for one finalize leases it.
    let rest = claim::segments(&mut client, &opts, 10).await.unwrap();
    assert_eq!(rest.len(), 2);
    let results: Vec<(Uuid, i32, serde_json::Value)> = planned
        .leased
        .iter()
        .chain(&rest)
        .map(|s| (s.id, s.attempt, json!({})))
        .collect();
    let lease = complete::Lease {
        worker_id: "a",
        duration: Duration::from_secs(30),
        jobs: &[ids[1]],
        segments: 0,
    };
    let done = complete::segments(&client, &results, Some(lease))
        .await
        .unwrap();
    assert_eq!(done.recorded.len(), 4);
    assert_eq!(
        done.leased.iter().map(|s| s.job.id).collect::<Vec<_>>(),
        vec![ids[1]]
    );
    assert!(
        done.finalize_ready,
        "the other job's finalize is left for anyone"
    );
    let other = admin::job(&client, ids[0]).await.unwrap().unwrap();
    assert_eq!(
        (other.step.as_str(), other.locked_by, other.attempts),
        ("finalize", None, 0)
    );
    let mine = admin::job(&client, ids[1]).await.unwrap().unwrap();
    assert_eq!(
        (mine.step.as_str(), mine.locked_by.as_deref(), mine.attempts),
        ("finalize", Some("a"), 1)
    );
    // Its lease is an ordinary one: the claim does not hand it out again.
    let claimed: Vec<Uuid> = claim::steps(&client, &opts, 10)
        .await
        .unwrap()
        .iter()
        .map(|s| s.job.id)
        .collect();
    assert_eq!(claimed, vec![ids[0]]);
}
