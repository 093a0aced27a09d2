//! Maintenance: pruning finished segments past their retention.

use crate::harness::TestDb;
use crate::support::*;
use octavia::queue::admin;
use serde_json::json;

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
