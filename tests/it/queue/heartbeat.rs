//! Heartbeats: leases renewed while handlers run, without deadlocking with the completer
//! or waiting for rows being written.

use super::{claim_options, plan_and_claim};
use crate::harness::TestDb;
use crate::support::*;
use octavia::queue::claim::{self};
use octavia::queue::complete::{self};
use octavia::queue::heartbeat;
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

#[tokio::test]
async fn a_slow_handler_that_keeps_heartbeating_is_never_rescued() {
    let db = TestDb::new().await;
    let probe = Probe::default();
    // Three lease lengths (2 s each), renewed every second by the heartbeat.
    *probe.0.segment_ms.lock().unwrap() = 6_000;
    let ids = enqueue_jobs(&db, vec![job("probe", json!({ "segments": 2 }))]).await;
    let worker = TestWorker::start(fast_config(&db), registry_with(&probe), "slow");
    // Another worker runs the rescuer meanwhile.
    let other = TestWorker::start(fast_config(&db), registry_with(&probe), "rescuer");
    wait_terminal(&db, &ids, 60).await;
    worker.stop().await;
    other.stop().await;
    assert_eq!(status(&db, ids[0]).await, "completed");
    let client = db.client().await;
    let attempts: Vec<i32> = client
        .query(
            "SELECT attempts FROM job_segments WHERE job_id = $1",
            &[&ids[0]],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(attempts, vec![1, 1]);
    assert_eq!(
        probe
            .0
            .calls()
            .iter()
            .filter(|c| c.what == "segment")
            .count(),
        2
    );
}

/// Found by `octavia-dev chaos kills` (deadlock detected, 40P01, in the server's log): a
/// worker's heartbeat and its completer write the same leased rows side by side. Both
/// lock them in id order, so however their lists are ordered they queue up instead of
/// deadlocking.
#[tokio::test]
async fn a_heartbeat_and_a_completion_of_the_same_leases_never_deadlock() {
    let db = TestDb::new().await;
    let opts = claim_options("w");
    for round in 0..5 {
        let [id] = enqueue_jobs(&db, vec![job("probe", json!({}))]).await[..] else {
            unreachable!()
        };
        let mut client = db.client().await;
        // (The previous round's job is at its finalize step: claimed too, left alone.)
        let plan = claim::steps(&client, &opts, 10)
            .await
            .unwrap()
            .into_iter()
            .find(|s| s.job.id == id)
            .expect("the new job's plan");
        let claimed = plan_and_claim(&mut client, &opts, &plan, 1000).await;
        assert_eq!(claimed.len(), 1000, "round {round}");
        let results: Vec<_> = claimed.iter().map(|&(s, a)| (s, a, json!({}))).collect();
        let mut reversed = claimed.clone();
        reversed.reverse();
        let other = db.client().await;
        let (renewed, completed) = tokio::join!(
            heartbeat::renew(&client, "w", Duration::from_secs(30), &reversed, &[]),
            complete::segments(&other, &results, None),
        );
        renewed.unwrap_or_else(|e| panic!("round {round}: heartbeat: {e}"));
        completed.unwrap_or_else(|e| panic!("round {round}: completion: {e}"));
        assert_eq!(status(&db, id).await, "running");
    }
}

/// A segment row some other transaction holds (the completer recording it, a claim that
/// locked it and will leave it) is not waited for: the heartbeat reports the lease held
/// without renewing it, renews the others, and still reports a lost lease as lost.
#[tokio::test]
async fn a_heartbeat_skips_a_row_being_written_without_calling_its_lease_lost() {
    let db = TestDb::new().await;
    let [id] = enqueue_jobs(&db, vec![job("probe", json!({}))]).await[..] else {
        unreachable!()
    };
    let mut client = db.client().await;
    let opts = claim_options("w");
    let plan = claim::steps(&client, &opts, 10).await.unwrap();
    let claimed = plan_and_claim(&mut client, &opts, &plan[0], 3).await;
    let [(busy, _), (free, _), (lost, _)] = claimed[..] else {
        panic!("three segments claimed: {claimed:?}");
    };
    // `lost` was rescued and claimed again by another worker meanwhile.
    client
        .execute(
            "UPDATE job_segments SET locked_by = 'other', attempts = 2 WHERE id = $1",
            &[&lost],
        )
        .await
        .unwrap();
    let expiry = |seg: Uuid| {
        let client = &client;
        async move {
            let at: std::time::SystemTime = client
                .query_one(
                    "SELECT lease_expires_at FROM job_segments WHERE id = $1",
                    &[&seg],
                )
                .await
                .unwrap()
                .get(0);
            at
        }
    };
    let before = expiry(busy).await;

    let mut holder = db.client().await;
    let tx = holder.transaction().await.unwrap();
    tx.execute(
        "SELECT 1 FROM job_segments WHERE id = $1 FOR UPDATE",
        &[&busy],
    )
    .await
    .unwrap();
    let renewed = tokio::time::timeout(
        Duration::from_secs(10),
        heartbeat::renew(&client, "w", Duration::from_secs(600), &claimed, &[]),
    )
    .await
    .expect("the heartbeat does not wait for a row another transaction holds")
    .unwrap();
    let mut held: Vec<Uuid> = renewed.iter().map(|r| r.id).collect();
    held.sort();
    let mut expected = vec![busy, free];
    expected.sort();
    assert_eq!(
        held, expected,
        "the row being written is held, the lost one is not"
    );
    assert!(renewed.iter().all(|r| !r.is_step && !r.stop));
    tx.rollback().await.unwrap();

    assert_eq!(
        expiry(busy).await,
        before,
        "the busy row was not renewed this time"
    );
    let renewed_until = expiry(free).await;
    assert!(
        renewed_until > before + Duration::from_secs(300),
        "the free row was renewed for the new lease"
    );
    assert_eq!(status(&db, id).await, "running");
}
