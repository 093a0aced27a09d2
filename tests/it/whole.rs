//! Single-segment jobs run whole under their plan's lease (`Handler::runs_whole`): written
//! once when done, with the same rows as a job run step by step, and failures part-way
//! recorded as the steps would have recorded them.

use crate::harness::TestDb;
use crate::support::*;
use async_trait::async_trait;
use octavia::job::{NewMedia, NewSegment};
use octavia::queue::enqueue::NewJob;
use octavia::worker::{Handler, HandlerError, Plan, SegmentContext, StepContext};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// A job type run whole. Options: `segment` and `finalize`, each `"ok"`, `"fatal"` or
/// `"retryable"` (fails every attempt); `finalize_fails_once` fails the first finalize only.
#[derive(Clone, Default)]
struct Quick(Arc<Mutex<Vec<(Uuid, String, i32)>>>);

impl Quick {
    fn calls(&self, job: Uuid, what: &str) -> Vec<i32> {
        let calls = self.0.lock().unwrap();
        calls
            .iter()
            .filter(|c| c.0 == job && c.1 == what)
            .map(|c| c.2)
            .collect()
    }
}

fn outcome(options: &Value, key: &str, attempt: i32) -> Result<(), HandlerError> {
    if key == "finalize" && options["finalize_fails_once"] == json!(true) && attempt == 1 {
        return Err(HandlerError::Retryable("finalize fails once".into()));
    }
    match options[key].as_str().unwrap_or("ok") {
        "fatal" => Err(HandlerError::Fatal(format!("{key} is fatal"))),
        "retryable" => Err(HandlerError::Retryable(format!("{key} failed"))),
        _ => Ok(()),
    }
}

#[async_trait]
impl Handler for Quick {
    fn job_type(&self) -> &'static str {
        "quick"
    }

    fn runs_whole(&self, _plan: &Plan) -> bool {
        true
    }

    async fn plan(&self, ctx: &StepContext) -> Result<Plan, HandlerError> {
        Ok(Plan {
            segments: vec![NewSegment {
                start_ms: Some(0),
                end_ms: Some(1000),
                input: json!({ "options": ctx.job.options }),
            }],
            data: json!({ "planned": 1 }),
        })
    }

    async fn run_segment(&self, ctx: &SegmentContext) -> Result<Value, HandlerError> {
        let s = &ctx.segment;
        self.0
            .lock()
            .unwrap()
            .push((s.job_id, "segment".into(), s.attempt));
        outcome(&s.input["options"], "segment", s.attempt)?;
        Ok(json!({ "segment_id": s.id, "attempt": s.attempt }))
    }

    async fn finalize(&self, ctx: &StepContext) -> Result<Option<NewMedia>, HandlerError> {
        self.0
            .lock()
            .unwrap()
            .push((ctx.job.id, "finalize".into(), ctx.attempt));
        outcome(&ctx.job.options, "finalize", ctx.attempt)?;
        // What finalize reads of its segments is what the completed row will hold.
        let segments = ctx.segments().await.map_err(HandlerError::retryable)?;
        assert_eq!(ctx.job.plan, json!({ "planned": 1 }));
        Ok(Some(NewMedia {
            id: Uuid::now_v7(),
            project_id: None,
            user_id: ctx.job.user_id,
            s3_key: format!("jobs/{}/output/quick.txt", ctx.job.id),
            media_type: "text".into(),
            duration_seconds: None,
            size_bytes: 1,
            mimetype: "text/plain".into(),
            derived_from: None,
            metadata: json!({ "segments": segments.iter().map(|s| &s.result).collect::<Vec<_>>() }),
        }))
    }
}

/// Runs `jobs` on one worker in `db` until every one of them ends.
async fn run_in(db: &TestDb, quick: &Quick, jobs: Vec<NewJob>) -> Vec<Uuid> {
    let ids = enqueue_jobs(db, jobs).await;
    let mut registry = registry();
    registry.register(quick.clone()).unwrap();
    let worker = TestWorker::start(fast_config(db), registry, "whole");
    wait_terminal(db, &ids, 60).await;
    worker.stop().await;
    ids
}

/// [`run_in`] a database of its own.
async fn run(quick: &Quick, jobs: Vec<NewJob>) -> (TestDb, Vec<Uuid>) {
    let db = TestDb::new().await;
    let ids = run_in(&db, quick, jobs).await;
    (db, ids)
}

#[tokio::test]
async fn a_job_run_whole_is_written_once_with_every_row_a_stepwise_job_has() {
    let quick = Quick::default();
    let (db, ids) = run(&quick, (0..20).map(|_| job("quick", json!({}))).collect()).await;
    let client = db.client().await;
    for id in ids {
        let job = client
            .query_one(
                "SELECT status::text, step::text, progress, segments_total, segments_done,
                        metadata->'plan', locked_by, finished_at, output_media_id
                 FROM jobs WHERE id = $1",
                &[&id],
            )
            .await
            .unwrap();
        assert_eq!(job.get::<_, String>(0), "completed");
        assert_eq!(job.get::<_, String>(1), "done");
        assert_eq!(job.get::<_, i32>(2), 100);
        assert_eq!((job.get::<_, i32>(3), job.get::<_, i32>(4)), (1, 1));
        assert_eq!(job.get::<_, Value>(5), json!({ "planned": 1 }));
        assert_eq!(job.get::<_, Option<String>>(6), None);
        let finished: chrono::DateTime<chrono::Utc> = job.get(7);
        let output: Uuid = job.get(8);
        let segment = client
            .query_one(
                "SELECT id, segment_index, status, attempts, start_ms, end_ms, result,
                        locked_by, lease_expires_at IS NULL, created_at, finished_at
                 FROM job_segments WHERE job_id = $1",
                &[&id],
            )
            .await
            .unwrap();
        let segment_id: Uuid = segment.get(0);
        assert_eq!(segment.get::<_, i32>(1), 0);
        assert_eq!(segment.get::<_, String>(2), "completed");
        assert_eq!(segment.get::<_, i32>(3), 1);
        assert_eq!(
            (segment.get::<_, i32>(4), segment.get::<_, i32>(5)),
            (0, 1000)
        );
        // The row holds the id its handler was given, and what it returned.
        assert_eq!(
            segment.get::<_, Value>(6),
            json!({ "segment_id": segment_id, "attempt": 1 })
        );
        assert_eq!(segment.get::<_, Option<String>>(7), None);
        assert!(segment.get::<_, bool>(8));
        // Inserted already completed, in the transaction that completed the job: one
        // write, not a plan, a segment completion and a finalize.
        let created: chrono::DateTime<chrono::Utc> = segment.get(9);
        let segment_finished: chrono::DateTime<chrono::Utc> = segment.get(10);
        assert_eq!(created, segment_finished);
        assert_eq!(segment_finished, finished);
        let media: Value = client
            .query_one("SELECT metadata FROM media_files WHERE id = $1", &[&output])
            .await
            .unwrap()
            .get(0);
        assert_eq!(
            media,
            json!({ "segments": [{ "segment_id": segment_id, "attempt": 1 }] })
        );
        assert_eq!(quick.calls(id, "segment"), vec![1]);
        assert_eq!(quick.calls(id, "finalize"), vec![1]);
    }
}

#[tokio::test]
async fn a_fatal_segment_of_a_job_run_whole_fails_it_and_refunds_it_once() {
    let quick = Quick::default();
    let db = TestDb::new().await;
    let owner = user(&db, 10).await;
    let mut j = job("quick", json!({ "segment": "fatal" }));
    j.user_id = Some(owner);
    j.cost_credits = 4;
    let ids = run_in(&db, &quick, vec![j]).await;
    assert_eq!(status(&db, ids[0]).await, "failed");
    let client = db.client().await;
    let segment = client
        .query_one(
            "SELECT status, attempts, last_error FROM job_segments WHERE job_id = $1",
            &[&ids[0]],
        )
        .await
        .unwrap();
    assert_eq!(segment.get::<_, String>(0), "failed");
    assert_eq!(segment.get::<_, i32>(1), 1);
    assert_eq!(segment.get::<_, String>(2), "segment is fatal");
    assert_eq!(quick.calls(ids[0], "segment"), vec![1]);
    assert!(quick.calls(ids[0], "finalize").is_empty());
    let balance: i64 = client
        .query_one("SELECT credits FROM users WHERE id = $1", &[&owner])
        .await
        .unwrap()
        .get(0);
    assert_eq!(balance, 10, "the reservation was refunded");
    assert_ledger_balances(&db).await;
}

#[tokio::test]
async fn retryable_segment_failures_of_a_job_run_whole_count_every_attempt() {
    let quick = Quick::default();
    let mut j = job("quick", json!({ "segment": "retryable" }));
    j.max_attempts = 3;
    let (db, ids) = run(&quick, vec![j]).await;
    assert_eq!(status(&db, ids[0]).await, "failed");
    let client = db.client().await;
    let segment = client
        .query_one(
            "SELECT status, attempts FROM job_segments WHERE job_id = $1",
            &[&ids[0]],
        )
        .await
        .unwrap();
    assert_eq!(segment.get::<_, String>(0), "failed");
    assert_eq!(segment.get::<_, i32>(1), 3);
    // The first attempt ran whole; the others as ordinary segment attempts.
    assert_eq!(quick.calls(ids[0], "segment"), vec![1, 2, 3]);
}

#[tokio::test]
async fn a_failed_finalize_of_a_job_run_whole_keeps_its_segment_and_retries_only_finalize() {
    let quick = Quick::default();
    let (db, ids) = run(
        &quick,
        vec![job("quick", json!({ "finalize_fails_once": true }))],
    )
    .await;
    assert_eq!(status(&db, ids[0]).await, "completed");
    let client = db.client().await;
    let row = client
        .query_one(
            "SELECT s.status, s.attempts, j.attempts, m.metadata
             FROM jobs j JOIN job_segments s ON s.job_id = j.id
             JOIN media_files m ON m.id = j.output_media_id
             WHERE j.id = $1",
            &[&ids[0]],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "completed");
    assert_eq!(row.get::<_, i32>(1), 1);
    // The finalize that failed was attempt 1; the one that completed the job, attempt 2.
    assert_eq!(row.get::<_, i32>(2), 2);
    assert_eq!(quick.calls(ids[0], "segment"), vec![1]);
    assert_eq!(quick.calls(ids[0], "finalize"), vec![1, 2]);
    // The second finalize read the segment recorded after the first one failed.
    let result = row.get::<_, Value>(3)["segments"][0].clone();
    assert_eq!(result["attempt"], json!(1));
}

#[tokio::test]
async fn a_fatal_finalize_of_a_job_run_whole_fails_the_job_with_its_segment_completed() {
    let quick = Quick::default();
    let (db, ids) = run(&quick, vec![job("quick", json!({ "finalize": "fatal" }))]).await;
    assert_eq!(status(&db, ids[0]).await, "failed");
    let client = db.client().await;
    let row = client
        .query_one(
            "SELECT s.status, j.last_error FROM jobs j JOIN job_segments s ON s.job_id = j.id
             WHERE j.id = $1",
            &[&ids[0]],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "completed");
    assert_eq!(
        row.get::<_, String>(1),
        "finalize failed: finalize is fatal"
    );
    assert_eq!(quick.calls(ids[0], "finalize"), vec![1]);
}
