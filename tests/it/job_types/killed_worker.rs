//! Pipeline jobs on real `octavia-worker` processes: two sharing one long job, and one
//! killed in the middle of one, whose completed segments the other never redoes.

use super::*;
use crate::pipeline::{PAUSE_MS, SENTENCES};
use crate::support::{Process, spawn_worker_process, user, wait_for};
use octavia::pipeline::Language;
use octavia::pipeline::media::AudioFormat;
use serde_json::json;
use std::collections::BTreeMap;

/// A worker process on `env`'s store and pipeline settings, running one thing at a time.
fn worker_process(env: &Env, id: &str) -> Process {
    let local_dir = format!("storage.local_dir={}", env.config.storage.local_dir);
    let segment = format!(
        "pipeline.segment_seconds={}",
        env.config.pipeline.segment_seconds
    );
    spawn_worker_process(
        &env.db,
        id,
        &["--concurrency", "1", "--set", &local_dir, "--set", &segment],
    )
}

#[tokio::test]
async fn two_worker_processes_share_one_long_job() {
    let env = Env::local(2).await;
    let user = user(&env.db, 100).await;
    let path = env.dir.path().join("speech.wav");
    must(
        media::generate_audio(
            &SENTENCES,
            Language::English,
            PAUSE_MS,
            AudioFormat::Wav,
            &path,
        )
        .await,
    );
    let input = env.upload(user, &path, "audio").await;
    let job = env.job(user, "subtitles", Some(input), json!({})).await;
    let _a = worker_process(&env, "pa");
    let _b = worker_process(&env, "pb");
    env.wait(&[job], 120).await;

    let (row, _) = env.output(job).await;
    env.subtitle_file(&row, "srt").await;
    let segments = env.segments(job).await;
    assert!(segments.len() >= 5, "{} segments", segments.len());
    assert_eq!(
        workers_of(&segments),
        ["pa", "pb"],
        "both workers ran segments of the job"
    );
}

#[tokio::test]
async fn a_killed_worker_s_completed_segments_are_not_redone() {
    let env = Env::local(2).await;
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
    let mut a = worker_process(&env, "pa");
    let done = |s: &SegmentView| s.status == "completed";
    wait_for(60, "two segments to complete", || async {
        let segments = env.segments(job).await;
        (segments.iter().filter(|s| done(s)).count() >= 2).then_some(())
    })
    .await;
    crate::support::signal(&a, libc::SIGKILL);
    a.wait().unwrap();
    let before: BTreeMap<i32, (i32, Value)> = env
        .segments(job)
        .await
        .into_iter()
        .filter(done)
        .map(|s| (s.index, (s.attempts, s.result.unwrap())))
        .collect();
    let total = env.job_view(job).await.segments_total as usize;
    assert!(
        before.len() < total,
        "the job finished before the kill; make it longer"
    );

    let _b = worker_process(&env, "pb");
    env.wait(&[job], 120).await;
    let (_, out) = env.output(job).await;
    assert_dubbed_video(&out, &path, &info).await;
    let after = env.segments(job).await;
    for s in &after {
        if let Some((attempts, result)) = before.get(&s.index) {
            assert_eq!(s.attempts, *attempts, "segment {} was run again", s.index);
            assert_eq!(s.result.as_ref(), Some(result), "segment {}", s.index);
            assert_eq!(result["worker"], "pa");
        } else {
            assert_eq!(s.result.as_ref().unwrap()["worker"], "pb");
        }
    }
}
