//! What stays in the store: a completed job leaves its input and outputs and nothing else;
//! a failed job keeps its intermediates for its retention, then loses them and a retry plans
//! it again; and the orphan sweep racing a job resumed after its worker was killed deletes
//! only what no attempt will read.

use super::*;
use crate::pipeline::SENTENCES;
use crate::support::{spawn_worker_process, user, wait_for};
use octavia::queue::admin;
use octavia::retention::Sweeper;
use octavia::retention::census::Kind;
use octavia::storage::{job_prefix, plan_key, segment_key};
use serde_json::json;
use std::collections::BTreeSet;

impl Env {
    fn sweeper(&self) -> Sweeper {
        Sweeper::new(
            self.db.pool.clone(),
            self.storage.clone(),
            self.config.storage.clone(),
            "test-sweeper",
        )
    }

    /// Every key in the store.
    async fn bucket(&self) -> BTreeSet<String> {
        self.storage.list("").await.unwrap().into_iter().collect()
    }

    /// The keys a completed job's input and output rows name.
    async fn kept_keys(&self, job: Uuid, input: Uuid) -> BTreeSet<String> {
        let (row, _) = self.output(job).await;
        let mut keys: BTreeSet<String> = octavia::job::output_files(&row.metadata, &row.s3_key)
            .into_iter()
            .map(|(_, f)| f.key)
            .collect();
        keys.insert(self.media(input).await.s3_key);
        keys
    }
}

#[tokio::test]
async fn a_completed_job_leaves_only_its_input_and_outputs_in_the_bucket() {
    let env = Env::s3(2).await;
    let user = user(&env.db, 100).await;
    let (path, _) = video(env.dir.path(), "talk.mp4", &SENTENCES[..3]).await;
    let input = env.upload(user, &path, "video").await;
    let job = env
        .job(
            user,
            "video_translation",
            Some(input),
            json!({"target_language": "es"}),
        )
        .await;
    let worker = env.worker("w1");
    env.wait(&[job], 120).await;
    assert!(env.segments(job).await.len() >= 2, "several segments");
    let kept = env.kept_keys(job, input).await;
    assert_eq!(
        kept.len(),
        5,
        "input, video, srt, vtt, transcript: {kept:?}"
    );
    // The worker deletes the intermediates right after the completion's commit.
    wait_for(10, "the intermediates to be deleted", || async {
        (env.bucket().await == kept).then_some(())
    })
    .await;
    worker.stop().await;
    let census = env.sweeper().census().await.unwrap();
    assert_eq!(census.orphans, [], "{census:?}");
    assert_eq!(census.kinds[&Kind::Outputs].objects, 4, "{census:?}");
    assert_eq!(census.kinds[&Kind::Uploads].objects, 1, "{census:?}");
    assert!(
        !census.kinds.contains_key(&Kind::Intermediates),
        "{census:?}"
    );
}

#[tokio::test]
async fn a_failed_job_keeps_its_intermediates_until_its_retention_then_plans_again() {
    let mut env = Env::local(2).await;
    let user = user(&env.db, 100).await;
    let (path, info) = video(env.dir.path(), "talk.mp4", &SENTENCES[..3]).await;
    let input = env.upload(user, &path, "video").await;
    let job = env
        .job(
            user,
            "video_translation",
            Some(input),
            json!({"target_language": "es"}),
        )
        .await;
    // A translation service that refuses every connection: the plan succeeds, every
    // segment fails.
    let mut broken = env.config.clone();
    broken.engines.translator = "libretranslate".into();
    broken.engines.translator_url = "http://127.0.0.1:9".into();
    broken.worker.max_attempts = 2;
    let registry = octavia::job_types::registry(&broken).unwrap();
    let worker = crate::support::TestWorker::start(broken, registry, "w-broken");
    env.wait(&[job], 60).await;
    worker.stop().await;
    let failed = env.job_view(job).await;
    assert_eq!(failed.status, "failed", "{:?}", failed.last_error);
    assert_eq!(failed.resumable(), Some(true));
    let intermediates = env.storage.list(&job_prefix(job)).await.unwrap();
    assert!(
        intermediates.len() >= 2,
        "the plan's windows: {intermediates:?}"
    );

    // Within the retention nothing of the job is touched, by either sweep.
    env.config.storage.failed_job_retention_seconds = 3600;
    let report = env.sweeper().pass(false, true).await.unwrap();
    assert_eq!(report.failed_jobs, 0);
    assert_eq!(
        env.storage.list(&job_prefix(job)).await.unwrap(),
        intermediates
    );

    // Past it, they go, and the job says a retry starts over.
    let client = env.db.client().await;
    client
        .execute(
            "UPDATE jobs SET finished_at = now() - interval '2 hours' WHERE id = $1",
            &[&job],
        )
        .await
        .unwrap();
    let report = env.sweeper().pass(false, false).await.unwrap();
    assert_eq!(report.failed_jobs, 1, "{report:?}");
    assert_eq!(report.objects_deleted as usize, intermediates.len());
    assert_eq!(
        env.storage.list(&job_prefix(job)).await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(env.job_view(job).await.resumable(), Some(false));

    let mut client = env.db.client().await;
    let retried = admin::retry(&mut client, job).await.unwrap();
    assert_eq!((retried.run, retried.replanned), (2, true));
    let view = env.job_view(job).await;
    assert_eq!((view.step.as_str(), view.segments_total), ("plan", 0));
    let worker = env.worker("w-fixed");
    env.wait(&[job], 120).await;
    worker.stop().await;
    let (row, out) = env.output(job).await;
    assert_dubbed_video(&out, &path, &info).await;
    assert!(row.s3_key.ends_with(".mp4"));
    for s in env.segments(job).await {
        let key = s.input.as_ref().unwrap()["key"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(key.contains("/plan/2-"), "planned again under run 2: {key}");
    }
}

#[tokio::test]
async fn the_orphan_sweep_racing_a_resumed_job_deletes_only_what_nobody_needs() {
    let env = Env::local(2).await;
    let user = user(&env.db, 100).await;
    let (path, info) = video(env.dir.path(), "talk.mp4", &SENTENCES[..4]).await;
    let input = env.upload(user, &path, "video").await;
    let job = env
        .job(
            user,
            "video_translation",
            Some(input),
            json!({"target_language": "es"}),
        )
        .await;
    let local_dir = format!("storage.local_dir={}", env.config.storage.local_dir);
    let args = [
        "--concurrency",
        "1",
        "--set",
        &local_dir,
        "--set",
        "pipeline.segment_seconds=2",
    ];
    let mut a = spawn_worker_process(&env.db, "pa", &args);
    wait_for(60, "two segments to complete", || async {
        let segments = env.segments(job).await;
        (segments.iter().filter(|s| s.status == "completed").count() >= 2).then_some(())
    })
    .await;
    crate::support::signal(&a, libc::SIGKILL);
    a.wait().unwrap();
    let total = env.job_view(job).await.segments_total;
    assert!(
        env.segments(job)
            .await
            .iter()
            .any(|s| s.status != "completed"),
        "the job finished before the kill; make it longer"
    );

    // What attempts that lost their lease leave behind: an attempt before each segment's
    // first, and a plan attempt that never completed.
    let mut stale = vec![plan_key(job, 1, 0, "segment-00000.wav")];
    for index in 0..total {
        stale.push(segment_key(job, index, 1, 0, "dub.wav"));
    }
    for key in &stale {
        env.storage
            .put_bytes(key, bytes::Bytes::from_static(b"RIFF stale"))
            .await
            .unwrap();
    }

    // The job resumes on another worker while the orphan sweep runs over and over.
    let mut b = spawn_worker_process(&env.db, "pb", &args);
    let sweeper = env.sweeper();
    let mut passes = 0;
    let mut deleted = BTreeSet::new();
    let started = std::time::Instant::now();
    loop {
        let census = sweeper.orphans(false).await.unwrap();
        deleted.extend(census.orphans.into_iter().map(|o| o.key));
        passes += 1;
        match crate::support::status(&env.db, job).await.as_str() {
            "completed" => break,
            "failed" | "cancelled" => {
                panic!("the job ended: {:?}", env.job_view(job).await.last_error)
            }
            _ => {}
        }
        assert!(
            started.elapsed().as_secs() < 120,
            "the job did not complete"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    env.wait(&[job], 120).await;
    let (_, out) = env.output(job).await;
    assert_dubbed_video(&out, &path, &info).await;
    for key in &stale {
        assert!(deleted.contains(key), "{key} was not swept: {deleted:?}");
    }
    let kept = env.kept_keys(job, input).await;
    assert!(
        deleted.is_disjoint(&kept),
        "the sweep deleted an input or output: {deleted:?}"
    );
    // Once done, the store holds the input and the outputs alone.
    wait_for(10, "the intermediates to be deleted", || async {
        sweeper.orphans(false).await.unwrap();
        (env.bucket().await == kept).then_some(())
    })
    .await;
    crate::support::signal(&b, libc::SIGTERM);
    b.wait().unwrap();
    assert!(passes > 1, "the sweep ran while the job ran");
}

#[tokio::test]
async fn storage_stats_counts_by_kind_and_sweep_dry_run_deletes_nothing() {
    let env = Env::local(2).await;
    let user = user(&env.db, 100).await;
    let input = env
        .upload_bytes(
            user,
            "talk.srt",
            b"1\n00:00:01,000 --> 00:00:02,000\nHi.\n",
            "subtitle",
        )
        .await;
    let job = env
        .job(
            user,
            "subtitle_translation",
            Some(input),
            json!({"target_language": "es"}),
        )
        .await;
    // A failed job's file that no segment names: what a plan attempt that failed leaves.
    env.db
        .client()
        .await
        .execute(
            "UPDATE jobs SET status = 'failed', finished_at = now() WHERE id = $1",
            &[&job],
        )
        .await
        .unwrap();
    let stray = plan_key(job, 1, 1, "segment-00000.wav");
    env.storage
        .put_bytes(&stray, bytes::Bytes::from_static(b"RIFF"))
        .await
        .unwrap();
    env.storage
        .put_bytes("backups/notes.txt", bytes::Bytes::from_static(b"mine"))
        .await
        .unwrap();

    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_octavia"))
            .arg("--no-migrate")
            .args(args)
            .env("DATABASE_URL", &env.db.url)
            .env("OCTAVIA_STORAGE_LOCAL_DIR", &env.config.storage.local_dir)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let objects_of = |stats: &str, kind: &str| -> u64 {
        let line = stats
            .lines()
            .find(|l| l.split_whitespace().next() == Some(kind))
            .unwrap_or_else(|| panic!("no {kind} line in:\n{stats}"));
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    let stats = cli(&["storage", "stats"]);
    assert_eq!(
        ["uploads", "outputs", "intermediates", "orphans", "other"].map(|k| objects_of(&stats, k)),
        [1, 0, 0, 1, 1],
        "{stats}"
    );

    let dry = cli(&["storage", "sweep", "--dry-run"]);
    assert!(
        dry.contains("orphans: 1 (4 B) would be deleted") && dry.contains(&stray),
        "{dry}"
    );
    assert!(
        env.storage.head(&stray).await.unwrap().is_some(),
        "a dry run deletes nothing"
    );

    let swept = cli(&["storage", "sweep"]);
    assert!(swept.contains("orphans: 1 (4 B) deleted"), "{swept}");
    assert!(env.storage.head(&stray).await.unwrap().is_none());
    let stats = cli(&["storage", "stats"]);
    assert_eq!(objects_of(&stats, "orphans"), 0, "{stats}");
    assert_eq!(
        objects_of(&stats, "other"),
        1,
        "a key outside the layout is never touched"
    );
}

#[tokio::test]
async fn a_job_whose_input_was_deleted_as_it_was_created_fails_at_once_and_is_refunded() {
    let env = Env::local(2).await;
    let user = user(&env.db, 100).await;
    let srt = b"1\n00:00:01,000 --> 00:00:02,000\nHello.\n";
    let input = env.upload_bytes(user, "talk.srt", srt, "subtitle").await;
    let job = env
        .job(
            user,
            "subtitle_translation",
            Some(input),
            json!({"target_language": "es"}),
        )
        .await;
    // What DELETE /api/media/{id} leaves when it wins the race with the job's creation.
    env.db
        .client()
        .await
        .execute(
            "UPDATE media_files SET deleted_at = now() WHERE id = $1",
            &[&input],
        )
        .await
        .unwrap();
    let worker = env.worker("w1");
    env.wait(&[job], 30).await;
    worker.stop().await;
    let view = env.job_view(job).await;
    assert_eq!(view.status, "failed");
    let error = view.last_error.unwrap_or_default();
    assert!(
        error.contains("was deleted") && !error.contains("attempts"),
        "{error}"
    );
    crate::support::assert_ledger_balances(&env.db).await;
    let client = env.db.client().await;
    let credits: i64 = client
        .query_one("SELECT credits FROM users WHERE id = $1", &[&user])
        .await
        .unwrap()
        .get(0);
    assert_eq!(credits, 100, "refunded");
}
