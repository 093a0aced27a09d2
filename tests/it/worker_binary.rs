//! The `octavia-worker` binary's settings: several runtime threads, and the metrics it
//! serves (or refuses to, at an address it cannot use).

use crate::harness::TestDb;
use crate::support::*;
use serde_json::json;

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

#[tokio::test]
async fn a_worker_says_it_is_ready_until_it_drains() {
    let db = TestDb::new().await;
    let port = octavia_dev::process::free_port().unwrap();
    let addr = format!("127.0.0.1:{port}");
    let mut w = spawn_worker_process(
        &db,
        "probed",
        &[
            "--concurrency",
            "2",
            "--metrics-listen",
            &addr,
            "--shutdown-grace-seconds",
            "30",
        ],
    );
    let http = reqwest::Client::new();
    let get = |path: &'static str| {
        let (http, addr) = (&http, &addr);
        async move {
            let r = http.get(format!("http://{addr}{path}")).send().await.ok()?;
            let status = r.status().as_u16();
            Some((status, r.json::<serde_json::Value>().await.ok()?))
        }
    };
    let (_, ready) = wait_for(10, "the worker to be ready", || async {
        get("/readyz").await.filter(|(s, _)| *s == 200)
    })
    .await;
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["worker_id"], "probed");
    assert_eq!(get("/healthz").await.map(|(s, _)| s), Some(200));

    // Segments that take seconds, so SIGTERM leaves the worker draining for a while.
    let id = enqueue_jobs(
        &db,
        vec![job("noop", json!({"segments": 2, "segment_ms": 3000}))],
    )
    .await[0];
    let running = "SELECT count(*) FROM job_segments WHERE job_id = $1 AND status = 'running'";
    wait_for(10, "the segments to run", || async {
        (count(&db, running, id).await == 2).then_some(())
    })
    .await;
    signal(&w, libc::SIGTERM);
    let (_, draining) = wait_for(2, "readiness to drop", || async {
        get("/readyz").await.filter(|(s, _)| *s == 503)
    })
    .await;
    assert_eq!(
        (draining["status"].as_str(), draining["draining"].as_bool()),
        (Some("unavailable"), Some(true)),
        "{draining}"
    );
    assert_eq!(
        get("/healthz").await.map(|(s, _)| s),
        Some(200),
        "alive while draining"
    );
    assert_eq!(
        count(&db, running, id).await,
        2,
        "still finishing its segments"
    );
    let exit = tokio::task::spawn_blocking(move || w.wait().unwrap())
        .await
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    let done = "SELECT count(*) FROM job_segments WHERE job_id = $1 AND status = 'completed'";
    assert_eq!(
        count(&db, done, id).await,
        2,
        "drained: both segments finished"
    );
}
