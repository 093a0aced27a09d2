//! Real `octavia-worker` processes killed with SIGKILL mid-job and stopped with SIGTERM:
//! what they held is rescued or given back, and nothing completed runs again.

use crate::harness::TestDb;
use crate::support::*;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use uuid::Uuid;

type SegmentState = (
    String,
    i32,
    Option<Value>,
    Option<chrono::DateTime<chrono::Utc>>,
);

async fn segments(db: &TestDb, job: Uuid) -> HashMap<i32, SegmentState> {
    db.client()
        .await
        .query(
            "SELECT segment_index, status, attempts, result, finished_at FROM job_segments WHERE job_id = $1",
            &[&job],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3), r.get(4))))
        .collect()
}

/// Every segment of `job` (`after`, as read) is pending with its attempts given back, and
/// none stays leased by the stopped worker.
async fn assert_released(db: &TestDb, job: Uuid, after: &HashMap<i32, SegmentState>) {
    for (index, s) in after {
        assert_eq!((s.0.as_str(), s.1), ("pending", 0), "segment {index}");
    }
    let held = count(
        db,
        "SELECT count(*) FROM job_segments WHERE job_id = $1 AND (locked_by IS NOT NULL OR lease_expires_at IS NOT NULL)",
        job,
    )
    .await;
    assert_eq!(held, 0, "nothing stays leased by the stopped worker");
}

fn wait_exit(child: &mut std::process::Child, secs: u64) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the worker did not exit within {secs} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn a_killed_workers_segments_are_rescued_and_completed_ones_never_rerun() {
    let db = TestDb::new().await;
    let ids = enqueue_jobs(
        &db,
        vec![job("noop", json!({ "segments": 24, "segment_ms": 300 }))],
    )
    .await;
    let id = ids[0];
    let mut a = spawn_worker_process(&db, "doomed", &["--concurrency", "3"]);
    wait_for(30, "some segments to complete", || async {
        let n = count(
            &db,
            "SELECT count(*) FROM job_segments WHERE job_id = $1 AND status = 'completed'",
            id,
        )
        .await;
        (n >= 6).then_some(())
    })
    .await;
    signal(&a, libc::SIGKILL);
    a.wait().unwrap();
    let at_kill = segments(&db, id).await;
    let running: Vec<i32> = at_kill
        .iter()
        .filter(|(_, s)| s.0 == "running")
        .map(|(i, _)| *i)
        .collect();
    assert!(
        !running.is_empty(),
        "the worker was killed with segments in flight"
    );
    let held = count(
        &db,
        "SELECT count(*) FROM job_segments WHERE job_id = $1 AND locked_by = 'doomed'",
        id,
    )
    .await;
    assert_eq!(held as usize, running.len());

    let mut b = spawn_worker_process(&db, "rescuer", &["--concurrency", "3"]);
    wait_terminal(&db, &ids, 60).await;
    signal(&b, libc::SIGTERM);
    assert!(wait_exit(&mut b, 30).success());

    assert_eq!(status(&db, id).await, "completed");
    let after = segments(&db, id).await;
    for (index, before) in &at_kill {
        let now = &after[index];
        assert_eq!(now.0, "completed");
        if before.0 == "completed" {
            assert_eq!(
                now, before,
                "segment {index} completed before the kill was run again"
            );
            assert_eq!(now.1, 1);
        }
    }
    for index in &running {
        let now = &after[index];
        assert_eq!(now.1, 2, "segment {index} was rescued and run once more");
        assert_eq!(now.2.as_ref().unwrap()["attempt"], 2);
    }
    let leftover = count(
        &db,
        "SELECT count(*) FROM job_segments WHERE job_id = $1 AND locked_by IS NOT NULL",
        id,
    )
    .await;
    assert_eq!(leftover, 0);
}

#[tokio::test]
async fn sigterm_releases_unfinished_work_without_burning_an_attempt() {
    let db = TestDb::new().await;
    let ids = enqueue_jobs(
        &db,
        vec![job("noop", json!({ "segments": 4, "segment_ms": 60000 }))],
    )
    .await;
    let id = ids[0];
    let mut w = spawn_worker_process(
        &db,
        "stopping",
        &["--concurrency", "4", "--shutdown-grace-seconds", "1"],
    );
    wait_for(30, "segments to run", || async {
        let n = count(
            &db,
            "SELECT count(*) FROM job_segments WHERE job_id = $1 AND status = 'running'",
            id,
        )
        .await;
        (n == 4).then_some(())
    })
    .await;
    signal(&w, libc::SIGTERM);
    let exit = wait_exit(&mut w, 20);
    assert!(exit.success(), "exit status {exit:?}");
    let after = segments(&db, id).await;
    assert_released(&db, id, &after).await;
    assert_eq!(status(&db, id).await, "running");
}

#[tokio::test]
async fn sigterm_lets_in_flight_work_finish_within_the_grace_period() {
    let db = TestDb::new().await;
    let ids = enqueue_jobs(
        &db,
        vec![job("noop", json!({ "segments": 2, "segment_ms": 1500 }))],
    )
    .await;
    let id = ids[0];
    let mut w = spawn_worker_process(
        &db,
        "patient",
        &["--concurrency", "2", "--shutdown-grace-seconds", "30"],
    );
    wait_for(30, "segments to run", || async {
        let n = count(
            &db,
            "SELECT count(*) FROM job_segments WHERE job_id = $1 AND status = 'running'",
            id,
        )
        .await;
        (n == 2).then_some(())
    })
    .await;
    signal(&w, libc::SIGTERM);
    let exit = wait_exit(&mut w, 30);
    assert!(exit.success(), "exit status {exit:?}");
    let after = segments(&db, id).await;
    assert!(
        after.values().all(|s| s.0 == "completed" && s.1 == 1),
        "{after:?}"
    );
    // It stopped claiming: the finalize step was left for another worker.
    assert_eq!(status(&db, id).await, "running");
}

#[tokio::test]
async fn a_second_signal_exits_at_once() {
    let db = TestDb::new().await;
    let ids = enqueue_jobs(
        &db,
        vec![job("noop", json!({ "segments": 1, "segment_ms": 60000 }))],
    )
    .await;
    let mut w = spawn_worker_process(&db, "impatient", &["--shutdown-grace-seconds", "120"]);
    wait_for(30, "the segment to run", || async {
        let n = count(
            &db,
            "SELECT count(*) FROM job_segments WHERE job_id = $1 AND status = 'running'",
            ids[0],
        )
        .await;
        (n == 1).then_some(())
    })
    .await;
    signal(&w, libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        w.try_wait().unwrap().is_none(),
        "still waiting for its work"
    );
    signal(&w, libc::SIGINT);
    let exit = wait_exit(&mut w, 10);
    assert_eq!(exit.code(), Some(130));
}

#[tokio::test]
async fn sigterm_gives_prefetched_segments_back_without_burning_an_attempt() {
    let db = TestDb::new().await;
    // Two planned jobs: 2,000 instant segments first (priority 0) give the worker a high
    // start rate, so when they run out it claims the slow job's segments (priority 1) well
    // beyond its two slots; those wait in its prefetch queue, leased.
    let (fast, slow) = (Uuid::now_v7(), Uuid::now_v7());
    let client = db.client().await;
    for (job, priority, n, ms) in [(fast, 0i16, 2000i32, 0u64), (slow, 1, 40, 60000)] {
        client
            .execute(
                "INSERT INTO jobs (id, job_type, status, step, segments_total, priority)
                 VALUES ($1, 'noop', 'running', 'segments', $2, $3)",
                &[&job, &n, &priority],
            )
            .await
            .unwrap();
        client
            .execute(
                "INSERT INTO job_segments (id, job_id, segment_index, status, priority, input)
                 SELECT gen_random_uuid(), $1, i, 'pending', $2, $3::jsonb
                 FROM generate_series(0, $4 - 1) i",
                &[&job, &priority, &json!({ "segment_ms": ms }), &n],
            )
            .await
            .unwrap();
    }
    let mut w = spawn_worker_process(
        &db,
        "prefetching",
        &[
            "--concurrency",
            "2",
            "--shutdown-grace-seconds",
            "1",
            "--set",
            "worker.prefetch_ms=1000",
        ],
    );
    wait_for(
        30,
        "slow segments leased beyond the worker's 2 slots",
        || async {
            let n = count(
                &db,
                "SELECT count(*) FROM job_segments WHERE job_id = $1 AND status = 'running'",
                slow,
            )
            .await;
            (n > 2).then_some(())
        },
    )
    .await;
    signal(&w, libc::SIGTERM);
    let exit = wait_exit(&mut w, 20);
    assert!(exit.success(), "exit status {exit:?}");
    let after = segments(&db, slow).await;
    assert_eq!(after.len(), 40);
    assert_released(&db, slow, &after).await;
}
