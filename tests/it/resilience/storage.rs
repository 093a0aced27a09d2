//! The object store going away under a pipeline job: a real S3 server (s3s-fs) stopped
//! after the plan and started again on the same port and directory, or never again.
//! Storage errors are the environment's fault: attempts that meet them are retried with
//! backoff, and when the attempts run out the job fails with its refund.

use crate::job_types::{COST, Env};
use crate::pipeline::must;
use crate::support::{assert_ledger_balances, enqueue_jobs, user, wait_for};
use octavia::pipeline::media::wav::Wav;
use octavia::queue::enqueue::NewJob;
use serde_json::json;
use std::time::{Duration, Instant};
use uuid::Uuid;

const SRT: &str = "1\n00:00:01,000 --> 00:00:02,500\nGood morning.\n\n\
                   2\n00:00:03,000 --> 00:00:04,500\nThank you.\n\n\
                   3\n00:00:05,000 --> 00:00:06,500\nSee you tomorrow.\n";

/// A `subtitle_to_audio` job of three one-cue segments with `max_attempts`, on s3s-fs,
/// and its user (100 credits before the job). The workers' S3 client tries each request
/// once, so an attempt that meets the outage fails at once and the queue's backoff
/// (200 ms doubling, at most 1 s) is what rides it out.
async fn job_on_s3(max_attempts: i32) -> (Env, Uuid, Uuid) {
    let mut env = Env::s3(30).await;
    env.config.pipeline.subtitle_batch_cues = 1;
    env.config.storage.s3_max_retries = 0;
    env.config.storage.s3_retry_timeout_seconds = 1;
    env.config.worker.concurrency = 1;
    env.config.worker.backoff_base_ms = 200;
    env.config.worker.backoff_max_ms = 1000;
    let user = user(&env.db, 100).await;
    let input = env
        .upload_bytes(user, "greetings.srt", SRT.as_bytes(), "subtitle")
        .await;
    let job = NewJob {
        user_id: Some(user),
        input_media_id: Some(input),
        cost_credits: COST,
        max_attempts,
        ..NewJob::new(
            "subtitle_to_audio",
            json!({"source_language": "en", "format": "wav"}),
        )
    };
    let job = enqueue_jobs(&env.db, vec![job]).await[0];
    (env, user, job)
}

/// Waits for the plan to be recorded (the segments exist), then stops the S3 server:
/// the segments, run one at a time, all still have their speech to upload.
async fn stop_storage_after_the_plan(env: &mut Env, job: Uuid) {
    wait_for(60, "the plan", || async {
        (env.segments(job).await.len() == 3).then_some(())
    })
    .await;
    env.s3.as_mut().unwrap().stop();
}

async fn balance_and_reasons(env: &Env, user: Uuid) -> (i64, Vec<String>) {
    let client = env.db.client().await;
    let balance: i64 = client
        .query_one("SELECT credits FROM users WHERE id = $1", &[&user])
        .await
        .unwrap()
        .get(0);
    let reasons = client
        .query(
            "SELECT reason FROM credits_history WHERE user_id = $1 AND job_id IS NOT NULL ORDER BY created_at",
            &[&user],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    (balance, reasons)
}

#[tokio::test]
async fn a_storage_outage_longer_than_an_attempt_is_retried_until_the_job_completes() {
    let (mut env, user, job) = job_on_s3(12).await;
    let worker = env.worker("w1");
    stop_storage_after_the_plan(&mut env, job).await;
    let down = Instant::now();
    // An attempt meets the outage, fails retryably with the store's error, and waits.
    let error = wait_for(30, "an attempt to fail on the store", || async {
        env.segments(job)
            .await
            .into_iter()
            .find_map(|s| s.last_error)
    })
    .await;
    assert!(
        error.contains("uploading `jobs/") && error.contains("storage:"),
        "{error}"
    );
    // Down for longer than several attempts, then back on the same port and directory.
    tokio::time::sleep(Duration::from_millis(2500).saturating_sub(down.elapsed())).await;
    env.s3.as_mut().unwrap().resume().unwrap();
    env.wait(&[job], 60).await;
    worker.stop().await;

    let (_, out) = env.output(job).await;
    let wav = must(Wav::read(&out).await);
    assert_eq!(wav.duration_ms(), 6_500, "as long as the subtitles");
    let segments = env.segments(job).await;
    assert!(segments.iter().all(|s| s.status == "completed"));
    assert!(
        segments.iter().any(|s| s.attempts > 1),
        "an attempt was retried: {segments:?}"
    );
    // Charged once, never refunded.
    let (balance, reasons) = balance_and_reasons(&env, user).await;
    assert_eq!(balance, 100 - COST);
    assert_eq!(reasons, ["job_reserve"]);
    assert_ledger_balances(&env.db).await;
}

#[tokio::test]
async fn storage_down_until_the_attempts_run_out_fails_the_job_cleanly_with_its_refund() {
    let (mut env, user, job) = job_on_s3(3).await;
    let worker = env.worker("w1");
    stop_storage_after_the_plan(&mut env, job).await;
    env.wait(&[job], 60).await;
    // The worker is still serving: it stops gracefully.
    worker.stop().await;

    let view = env.job_view(job).await;
    assert_eq!(view.status, "failed");
    let error = view.last_error.unwrap_or_default();
    assert!(
        error.starts_with("segment ")
            && error.contains("failed after 3 attempts: uploading `jobs/")
            && error.contains("storage:"),
        "{error}"
    );
    let segments = env.segments(job).await;
    assert!(
        segments
            .iter()
            .all(|s| matches!(s.status.as_str(), "failed" | "cancelled")),
        "nothing is left running or pending: {segments:?}"
    );
    let (balance, reasons) = balance_and_reasons(&env, user).await;
    assert_eq!(balance, 100, "the reservation came back");
    assert_eq!(reasons, ["job_reserve", "job_refund"]);
    assert_ledger_balances(&env.db).await;
}
