//! The queue engine against a real PostgreSQL: claiming, fencing, retries, resume,
//! cancel, credits, wake-ups, fairness, and real worker processes killed and stopped.

use crate::harness::TestDb;
use crate::support::*;
use octavia::queue::claim::{self, ClaimOptions};
use octavia::queue::complete::{self, Failure, FailureOutcome};
use octavia::queue::{admin, heartbeat, rescue};
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How the tests that call the claim statements directly claim: every job type, 30 s
/// leases.
fn claim_options(worker_id: &str) -> ClaimOptions {
    ClaimOptions {
        worker_id: worker_id.into(),
        job_types: None,
        lease: Duration::from_secs(30),
    }
}

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

/// Every job completed with progress 100, and each of `segments` segments completed at
/// its first attempt, its handler run exactly once.
async fn assert_every_segment_completed_once(db: &TestDb, probe: &Probe, segments: i64) {
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

    let old = claim::segments(&client, &opts("a"), 10)
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
    let new = claim::segments(&client, &opts("b"), 10)
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
    let run = admin::retry(&mut client, id).await.unwrap();
    assert_eq!(run, 2);
    wait_terminal(&db, &[id], 30).await;
    assert_eq!(status(&db, id).await, "failed");

    // Run 3: fixed. Only the segments that had not completed run.
    probe.0.fatal.lock().unwrap().clear();
    assert_eq!(admin::retry(&mut client, id).await.unwrap(), 3);
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

#[tokio::test]
async fn notify_wakes_an_idle_worker_long_before_the_poll_interval() {
    let db = TestDb::new().await;
    let mut config = fast_config(&db);
    config.worker.poll_interval_ms = 60_000;
    let probe = Probe::default();
    let worker = TestWorker::start(config, registry_with(&probe), "w");
    // Let the worker go idle: its first claims find nothing and it waits for a wake-up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..3 {
        let started = Instant::now();
        let ids = enqueue_jobs(&db, vec![job("probe", json!({ "segments": 2 }))]).await;
        wait_terminal(&db, &ids, 30).await;
        assert_eq!(status(&db, ids[0]).await, "completed");
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(10),
            "took {took:?}: NOTIFY did not wake the worker"
        );
    }
    worker.stop().await;
}

#[tokio::test]
async fn polling_delivers_when_the_listener_is_broken_or_off() {
    let db = TestDb::new().await;
    let probe = Probe::default();
    // Poll-only mode.
    let mut config = fast_config(&db);
    config.worker.listen = false;
    config.worker.poll_interval_ms = 200;
    let worker = TestWorker::start(config, registry_with(&probe), "poller");
    let ids = enqueue_jobs(&db, vec![job("probe", json!({ "segments": 3 }))]).await;
    wait_terminal(&db, &ids, 30).await;
    assert_eq!(status(&db, ids[0]).await, "completed");
    worker.stop().await;

    // LISTEN on, but its connection killed over and over: polling still delivers.
    let mut config = fast_config(&db);
    config.worker.poll_interval_ms = 200;
    let worker = TestWorker::start(config, registry_with(&probe), "listener");
    let client = db.client().await;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        client
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'LISTEN octavia_work'",
                &[],
            )
            .await
            .unwrap();
        let ids = enqueue_jobs(&db, vec![job("probe", json!({ "segments": 2 }))]).await;
        wait_terminal(&db, &ids, 30).await;
        assert_eq!(status(&db, ids[0]).await, "completed");
    }
    worker.stop().await;
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
    let client = db.client().await;
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
    let rest = claim::segments(&client, &opts, 10).await.unwrap();
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

/// Moves every job of `db` to its segments step with `per_job` pending segments each, as
/// a recorded plan leaves them.
async fn add_pending_segments(db: &TestDb, per_job: i32) {
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
    let tx = client.transaction().await.unwrap();
    tx.batch_execute(
        "SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off;
         SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off",
    )
    .await
    .unwrap();
    let claimed = claim::segments(&tx, &opts, 8).await.unwrap();
    tx.commit().await.unwrap();
    let mut got: Vec<Uuid> = claimed.iter().map(|s| s.job_id).collect();
    got.sort();
    got.dedup();
    // The urgent job first (alone at its priority, its share is all it has), then three
    // of the oldest jobs, two segments each: the walk makes the 7 oldest eligible (8 jobs
    // for 8 slots), and the claim visits those in random order.
    assert_eq!(got.len(), 4, "{got:?}");
    assert!(
        got.contains(&ids[399]),
        "the urgent job was not claimed: {got:?}"
    );
    for id in got.iter().filter(|id| **id != ids[399]) {
        assert!(ids[..7].contains(id), "{id} is not among the oldest jobs");
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
    let client = db.client().await;
    let opts = claim_options("w");
    // 15 slots for 10 jobs: shares of 2, so each claim serves 8 jobs. With the visit in
    // random order, a job is left out of all 10 claims once in about 10 million runs.
    let mut served = std::collections::HashMap::<Uuid, usize>::new();
    for _ in 0..10 {
        let claimed = claim::segments(&client, &opts, 15).await.unwrap();
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

/// Records `plan` (a claimed plan step) with `n` default segments and claims them all for
/// `opts`' worker: their (id, attempt), in id order.
async fn plan_and_claim(
    client: &deadpool_postgres::Object,
    opts: &ClaimOptions,
    plan: &octavia::job::ClaimedStep,
    n: usize,
) -> Vec<(Uuid, i32)> {
    let segs = vec![octavia::job::NewSegment::default(); n];
    let data = json!({});
    let record = complete::PlanRecord {
        step: plan,
        segments: &segs,
        data: &data,
    };
    complete::plans_done(client, &opts.worker_id, &[record], None)
        .await
        .unwrap();
    let mut claimed: Vec<(Uuid, i32)> = claim::segments(client, opts, n as i64)
        .await
        .unwrap()
        .iter()
        .map(|s| (s.id, s.attempt))
        .collect();
    claimed.sort();
    claimed
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
        let client = db.client().await;
        // (The previous round's job is at its finalize step: claimed too, left alone.)
        let plan = claim::steps(&client, &opts, 10)
            .await
            .unwrap()
            .into_iter()
            .find(|s| s.job.id == id)
            .expect("the new job's plan");
        let claimed = plan_and_claim(&client, &opts, &plan, 1000).await;
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
    let client = db.client().await;
    let opts = claim_options("w");
    let plan = claim::steps(&client, &opts, 10).await.unwrap();
    let claimed = plan_and_claim(&client, &opts, &plan[0], 3).await;
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
    let client = db.client().await;
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
    let claimed = claim::segments(&client, &opts, 8).await.unwrap();
    assert_eq!(
        claimed.iter().map(|s| s.job_id).collect::<Vec<_>>(),
        vec![ids[11]]
    );
}

#[tokio::test]
async fn finished_segments_are_pruned_past_their_retention_and_retryable_ones_kept() {
    let db = TestDb::new().await;
    let probe = Probe::default();
    probe.0.fatal.lock().unwrap().insert(1);
    let ids = enqueue_jobs(
        &db,
        vec![
            job("noop", json!({ "segments": 4 })),
            job("probe", json!({ "segments": 3 })),
        ],
    )
    .await;
    let mut config = fast_config(&db);
    config.worker.segment_retention_seconds = 1;
    let worker = TestWorker::start(config, registry_with(&probe), "w");
    wait_terminal(&db, &ids, 30).await;
    let client = db.client().await;
    wait_for(20, "the completed job's segments to be pruned", || async {
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM job_segments WHERE job_id = $1",
                &[&ids[0]],
            )
            .await
            .unwrap()
            .get(0);
        (n == 0).then_some(())
    })
    .await;
    worker.stop().await;
    let done = admin::job(&client, ids[0]).await.unwrap().unwrap();
    assert_eq!(
        (
            done.status.as_str(),
            done.segments_done,
            done.segments_total
        ),
        ("completed", 4, 4)
    );
    let pruned: bool = client
        .query_one("SELECT segments_pruned FROM jobs WHERE id = $1", &[&ids[0]])
        .await
        .unwrap()
        .get(0);
    assert!(pruned);
    // The failed job keeps its segments: a retry resumes from them.
    assert_eq!(status(&db, ids[1]).await, "failed");
    let kept: i64 = client
        .query_one(
            "SELECT count(*) FROM job_segments WHERE job_id = $1",
            &[&ids[1]],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(kept, 3);
}

#[tokio::test]
async fn the_cli_enqueues_many_chunks_at_once_and_reserves_each_job_once() {
    let db = TestDb::new().await;
    let client = db.client().await;
    octavia::users::create(
        &client,
        "bulk@example.com",
        "bulk-password-1",
        "user",
        30_000,
    )
    .await
    .unwrap();
    // Three chunks of at most 10,000 jobs, two written at a time.
    octavia_cli(
        &db,
        &[
            "jobs",
            "enqueue",
            "--user",
            "bulk@example.com",
            "--type",
            "noop",
            "--count",
            "25000",
            "--cost",
            "1",
        ],
    );
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM jobs WHERE status = 'queued'),
                    (SELECT count(DISTINCT job_id) FROM credits_history WHERE reason = 'job_reserve'),
                    (SELECT credits FROM users WHERE email = 'bulk@example.com')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 25_000);
    assert_eq!(row.get::<_, i64>(1), 25_000);
    assert_eq!(row.get::<_, Option<i64>>(2), Some(5_000));
    crate::support::assert_ledger_balances(&db).await;
}

#[tokio::test]
async fn a_queue_table_left_out_of_autovacuum_is_reported_by_queue_stats() {
    let db = TestDb::new().await;
    let client = db.client().await;
    let stats_output = || octavia_cli(&db, &["queue", "stats"]);
    // The server's own settings are whatever the test server has: the report must match
    // them either way.
    let server_vacuums: bool = client
        .query_one(
            "SELECT current_setting('autovacuum')::bool AND current_setting('track_counts')::bool",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let before = admin::vacuum_problems(&client).await.unwrap();
    assert_eq!(
        before.iter().any(|p| p.contains("on this server")),
        !server_vacuums,
        "{before:?}"
    );
    assert!(!before.iter().any(|p| p.contains("table")), "{before:?}");
    assert!(!stats_output().contains("table job_segments"));

    client
        .batch_execute("ALTER TABLE job_segments SET (autovacuum_enabled = off)")
        .await
        .unwrap();
    let after = admin::vacuum_problems(&client).await.unwrap();
    let problem = "autovacuum is disabled on table job_segments (autovacuum_enabled = false)";
    assert!(after.iter().any(|p| p == problem), "{after:?}");
    assert_eq!(after.len(), before.len() + 1, "{after:?}");
    assert_eq!(admin::stats(&client).await.unwrap().vacuum_problems, after);
    let printed = stats_output();
    assert!(
        printed.contains(&format!("warning: {problem}")),
        "{printed}"
    );

    // Turned back on, the table is no longer reported.
    client
        .batch_execute("ALTER TABLE job_segments SET (autovacuum_enabled = on)")
        .await
        .unwrap();
    assert_eq!(admin::vacuum_problems(&client).await.unwrap(), before);
}
