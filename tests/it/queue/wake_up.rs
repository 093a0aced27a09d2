//! Waking idle workers: NOTIFY well before the poll interval, and polling when the
//! listener is broken or off.

use crate::harness::TestDb;
use crate::support::*;
use serde_json::json;
use std::time::{Duration, Instant};

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
