//! Retries with backoff until the attempts run out, resuming a failed job from its
//! unfinished segments, and cancelling: each with its credits reserved and refunded
//! exactly once.

use crate::harness::TestDb;
use crate::support::*;
use octavia::queue::admin;
use serde_json::json;
use std::time::{Duration, Instant};
use uuid::Uuid;

#[tokio::test]
async fn retryable_failures_back_off_until_max_attempts_then_the_job_fails_and_is_refunded() {
    let db = TestDb::new().await;
    let user = user(&db, 100).await;
    let probe = Probe::default();
    probe.0.retryable.lock().unwrap().insert(1);
    let mut j = job("probe", json!({ "segments": 3 }));
    j.user_id = Some(user);
    j.cost_credits = 40;
    j.max_attempts = 4;
    let id = j.id;
    enqueue_jobs(&db, vec![j]).await;
    let mut config = fast_config(&db);
    config.worker.backoff_base_ms = 100;
    config.worker.backoff_max_ms = 10_000;
    let worker = TestWorker::start(config, registry_with(&probe), "w");
    wait_terminal(&db, &[id], 30).await;
    worker.stop().await;

    let client = db.client().await;
    let job = admin::job(&client, id).await.unwrap().unwrap();
    assert_eq!(job.status, "failed");
    let error = job.last_error.unwrap();
    assert!(
        error.contains("segment 1 failed after 4 attempts"),
        "{error}"
    );
    assert!(job.finished_at.is_some());
    let calls = probe.0.segment_calls(id, 1);
    assert_eq!(
        calls.iter().map(|c| c.attempt).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    // Backoff: base 100 ms doubling, with jitter of at most half.
    for (n, pair) in calls.windows(2).enumerate() {
        let gap = pair[1].at - pair[0].at;
        let least = Duration::from_millis(50 * 2u64.pow(n as u32));
        assert!(
            gap >= least,
            "retry {} came after {gap:?}, before {least:?}",
            n + 1
        );
    }
    let segments = admin::segments(&client, id).await.unwrap();
    assert_eq!(segments[1].status, "failed");
    assert_eq!(segments[1].attempts, 4);
    assert!(
        segments
            .iter()
            .filter(|s| s.index != 1)
            .all(|s| s.status == "completed")
    );
    let balance: i64 = client
        .query_one("SELECT credits FROM users WHERE id = $1", &[&user])
        .await
        .unwrap()
        .get(0);
    assert_eq!(balance, 100, "the reservation was refunded");
    assert_ledger_balances(&db).await;
}

#[tokio::test]
async fn retry_resumes_only_unfinished_segments_and_refunds_once_per_run() {
    let db = TestDb::new().await;
    let user = user(&db, 100).await;
    let probe = Probe::default();
    probe.0.fatal.lock().unwrap().insert(3);
    let mut j = job("probe", json!({ "segments": 8 }));
    j.user_id = Some(user);
    j.cost_credits = 30;
    let id = j.id;
    enqueue_jobs(&db, vec![j]).await;
    let config = fast_config(&db);
    let worker = TestWorker::start(config.clone(), registry_with(&probe), "w");
    wait_terminal(&db, &[id], 30).await;
    let mut client = db.client().await;
    let job = admin::job(&client, id).await.unwrap().unwrap();
    assert_eq!(job.status, "failed");
    assert!(
        job.last_error
            .as_deref()
            .unwrap()
            .contains("segment 3 failed"),
        "{:?}",
        job.last_error
    );
    let before = admin::segments(&client, id).await.unwrap();
    assert_eq!(before[3].status, "failed");
    assert_eq!(before[3].attempts, 1, "a fatal error is not retried");

    // Run 2: segment 3 still fails. Nothing that completed runs again.
    let retried = admin::retry(&mut client, id).await.unwrap();
    assert_eq!((retried.run, retried.replanned), (2, false));
    wait_terminal(&db, &[id], 30).await;
    assert_eq!(status(&db, id).await, "failed");

    // Run 3: fixed. Only the segments that had not completed run.
    probe.0.fatal.lock().unwrap().clear();
    assert_eq!(admin::retry(&mut client, id).await.unwrap().run, 3);
    wait_terminal(&db, &[id], 30).await;
    worker.stop().await;
    assert_eq!(status(&db, id).await, "completed");
    let after = admin::segments(&client, id).await.unwrap();
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(a.status, "completed");
        if b.status == "completed" {
            assert_eq!(a.result, b.result, "segment {} was overwritten", a.index);
            assert_eq!(a.finished_at, b.finished_at);
            assert_eq!(
                probe.0.segment_calls(id, a.index).len(),
                1,
                "segment {} ran again",
                a.index
            );
        }
    }
    assert_eq!(probe.0.segment_calls(id, 3).len(), 3);

    // Reserve 30 per run, refund runs 1 and 2 exactly once each; run 3 is paid.
    let ledger: Vec<(String, i64, i32)> = client
        .query(
            "SELECT reason, delta, job_run FROM credits_history WHERE job_id = $1 ORDER BY job_run, created_at, reason DESC",
            &[&id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let expected = vec![
        ("job_reserve".to_string(), -30, 1),
        ("job_refund".to_string(), 30, 1),
        ("job_reserve".to_string(), -30, 2),
        ("job_refund".to_string(), 30, 2),
        ("job_reserve".to_string(), -30, 3),
    ];
    assert_eq!(ledger, expected);
    // Refunding again, directly, gives nothing back.
    let again = octavia::credits::refund(&client, &[(id, 1), (id, 2)])
        .await
        .unwrap();
    assert_eq!(again, 0);
    let balance: i64 = client
        .query_one("SELECT credits FROM users WHERE id = $1", &[&user])
        .await
        .unwrap()
        .get(0);
    assert_eq!(balance, 70);
    assert_ledger_balances(&db).await;
}

#[tokio::test]
async fn a_retry_the_balance_cannot_pay_for_changes_nothing() {
    let db = TestDb::new().await;
    let user = user(&db, 30).await;
    let probe = Probe::default();
    probe.0.fatal.lock().unwrap().insert(0);
    let mut j = job("probe", json!({ "segments": 1 }));
    j.user_id = Some(user);
    j.cost_credits = 30;
    let id = j.id;
    enqueue_jobs(&db, vec![j]).await;
    let worker = TestWorker::start(fast_config(&db), registry_with(&probe), "w");
    wait_terminal(&db, &[id], 30).await;
    worker.stop().await;
    let mut client = db.client().await;
    client
        .execute("UPDATE users SET credits = 0 WHERE id = $1", &[&user])
        .await
        .unwrap();
    let err = admin::retry(&mut client, id).await.unwrap_err();
    assert!(
        matches!(
            err,
            octavia::Error::InsufficientCredits {
                price: 30,
                balance: 0
            }
        ),
        "{err}"
    );
    let job = admin::job(&client, id).await.unwrap().unwrap();
    assert_eq!((job.status.as_str(), job.run), ("failed", 1));
    let err = admin::retry(&mut client, Uuid::now_v7()).await.unwrap_err();
    assert!(matches!(err, octavia::Error::NotFound { .. }), "{err}");
}

#[tokio::test]
async fn cancelling_a_running_job_stops_its_handlers_and_refunds_once() {
    let db = TestDb::new().await;
    let user = user(&db, 50).await;
    let probe = Probe::default();
    *probe.0.segment_ms.lock().unwrap() = 20_000;
    let mut j = job("probe", json!({ "segments": 10 }));
    j.user_id = Some(user);
    j.cost_credits = 50;
    let id = j.id;
    enqueue_jobs(&db, vec![j]).await;
    let worker = TestWorker::start(fast_config(&db), registry_with(&probe), "w");
    wait_for(20, "segments to run", || async {
        let client = db.client().await;
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM job_segments WHERE job_id = $1 AND status = 'running'",
                &[&id],
            )
            .await
            .unwrap()
            .get(0);
        (n == 4).then_some(())
    })
    .await;
    let mut client = db.client().await;
    let started = Instant::now();
    assert!(
        !admin::cancel(&mut client, id).await.unwrap(),
        "segments are still running"
    );
    // No new segment is claimed; the running ones hear it at their next heartbeat.
    wait_terminal(&db, &[id], 20).await;
    let took = started.elapsed();
    assert_eq!(status(&db, id).await, "cancelled");
    assert!(
        took < Duration::from_secs(15),
        "handlers were not told to stop ({took:?})"
    );
    let calls: Vec<_> = probe
        .0
        .calls()
        .into_iter()
        .filter(|c| c.what == "segment")
        .collect();
    assert_eq!(calls.len(), 4, "only the 4 running segments ever started");
    assert!(calls.iter().all(|c| c.worker_saw_cancel));
    let counts: Vec<(String, i64)> = client
        .query(
            "SELECT status, count(*) FROM job_segments WHERE job_id = $1 GROUP BY 1",
            &[&id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(counts, vec![("cancelled".to_string(), 10)]);
    // Cancelling again is refused and refunds nothing more.
    let err = admin::cancel(&mut client, id).await.unwrap_err();
    assert!(matches!(err, octavia::Error::Conflict(_)), "{err}");
    worker.stop().await;
    let refunds: i64 = client
        .query_one(
            "SELECT count(*) FROM credits_history WHERE job_id = $1 AND reason = 'job_refund'",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(refunds, 1);
    let balance: i64 = client
        .query_one("SELECT credits FROM users WHERE id = $1", &[&user])
        .await
        .unwrap()
        .get(0);
    assert_eq!(balance, 50);
    assert_ledger_balances(&db).await;
}

#[tokio::test]
async fn a_queued_job_cancels_at_once() {
    let db = TestDb::new().await;
    let user = user(&db, 10).await;
    let mut j = job("noop", json!({}));
    j.user_id = Some(user);
    j.cost_credits = 10;
    let id = j.id;
    enqueue_jobs(&db, vec![j]).await;
    let mut client = db.client().await;
    assert!(admin::cancel(&mut client, id).await.unwrap());
    assert_eq!(status(&db, id).await, "cancelled");
    assert_ledger_balances(&db).await;
    let balance: i64 = client
        .query_one("SELECT credits FROM users WHERE id = $1", &[&user])
        .await
        .unwrap()
        .get(0);
    assert_eq!(balance, 10);
}
