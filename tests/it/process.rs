//! Real `octavia-worker` processes: killed with SIGKILL mid-job, stopped with SIGTERM.

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

async fn count(db: &TestDb, sql: &str, job: Uuid) -> i64 {
    db.client()
        .await
        .query_one(sql, &[&job])
        .await
        .unwrap()
        .get(0)
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
async fn a_worker_on_several_threads_runs_jobs_to_the_end() {
    // One thread is the default (worker.threads); the multi-threaded runtime is the other
    // way a worker starts.
    let db = TestDb::new().await;
    let ids = enqueue_jobs(
        &db,
        (0..3)
            .map(|_| job("noop", json!({ "segments": 20, "segment_ms": 5 })))
            .collect(),
    )
    .await;
    let _w = spawn_worker_process(
        &db,
        "threads",
        &["--concurrency", "8", "--set", "worker.threads=4"],
    );
    for id in ids {
        wait_for(30, "the job to complete", || async {
            (status(&db, id).await == "completed").then_some(())
        })
        .await;
        let done = count(
            &db,
            "SELECT count(*) FROM job_segments WHERE job_id = $1 AND status = 'completed'",
            id,
        )
        .await;
        assert_eq!(done, 20);
    }
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

#[tokio::test]
async fn a_worker_serves_metrics_of_its_claims_writes_and_slots() {
    use octavia::telemetry::metric_sum as metric;
    let db = TestDb::new().await;
    let port = octavia_dev::process::free_port().unwrap();
    let addr = format!("127.0.0.1:{port}");
    let _w = spawn_worker_process(
        &db,
        "metered",
        &["--concurrency", "8", "--metrics-listen", &addr],
    );
    let ids = enqueue_jobs(
        &db,
        vec![
            job("noop", json!({ "segments": 40, "segment_ms": 0 })),
            job("noop", json!({ "segments": 40, "segment_ms": 0 })),
        ],
    )
    .await;
    wait_terminal(&db, &ids, 60).await;
    for id in &ids {
        assert_eq!(status(&db, *id).await, "completed");
    }
    let http = reqwest::Client::new();
    let url = format!("http://{addr}/metrics");
    // The last completion's statistics are recorded just after its statement commits.
    let text = wait_for(10, "the metrics of every segment write", || async {
        let text = http.get(&url).send().await.ok()?.text().await.ok()?;
        (metric(
            &text,
            "octavia_worker_written_rows_total",
            "kind=\"segments\"",
        ) >= 80.0)
            .then_some(text)
    })
    .await;
    // This process ran these two jobs alone: every row it claimed and wrote is theirs.
    let segments = "kind=\"segments\"";
    let claimed = metric(&text, "octavia_worker_claimed_rows_total", segments);
    let written = metric(&text, "octavia_worker_written_rows_total", segments);
    let leased_by_plans = 80.0 - claimed;
    assert!(
        (0.0..=80.0).contains(&claimed),
        "segments claimed {claimed}: at most the 80 there are (the others came leased with their plan)"
    );
    assert_eq!(written, 80.0, "each segment's result written once:\n{text}");
    assert!(
        metric(&text, "octavia_worker_claims_total", "kind=\"steps\"") >= 1.0,
        "plans and finalizes are claimed as steps:\n{text}"
    );
    // Plans and finalizes of both jobs: two of each, in one or more writes.
    assert_eq!(
        metric(&text, "octavia_worker_written_rows_total", "kind=\"plans\""),
        2.0
    );
    assert_eq!(
        metric(&text, "octavia_worker_written_rows_total", "kind=\"jobs\""),
        2.0
    );
    let writes = metric(&text, "octavia_worker_writes_total", segments);
    assert!(
        (1.0..=80.0).contains(&writes),
        "segment writes {writes} (claimed {claimed}, leased by plans {leased_by_plans})"
    );
    assert_eq!(
        metric(&text, "octavia_worker_write_seconds_count", segments),
        writes,
        "one latency sample per write"
    );
    assert_eq!(metric(&text, "octavia_worker_concurrency", ""), 8.0);
    assert_eq!(
        metric(&text, "octavia_worker_slots_busy", ""),
        0.0,
        "idle now"
    );
    assert_eq!(metric(&text, "octavia_worker_leases_in_flight", ""), 0.0);
    assert_eq!(metric(&text, "octavia_worker_outcomes_lost_total", ""), 0.0);
}

#[test]
fn a_worker_refuses_a_metrics_address_it_cannot_use() {
    let stderr = refused(
        std::process::Command::new(env!("CARGO_BIN_EXE_octavia-worker"))
            .args(["--no-migrate", "--metrics-listen", "localhost"])
            .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none"),
    );
    assert!(
        stderr.contains("worker.metrics_listen") && stderr.contains("`localhost`"),
        "names the setting and the value: {stderr}"
    );
}
