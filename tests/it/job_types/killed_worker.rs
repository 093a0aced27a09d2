//! Pipeline jobs on real `octavia-worker` processes: two sharing one long job, one
//! killed in the middle of one, whose completed segments the other never redoes, and one
//! whose whisper helper is killed in the middle of a segment.

use super::*;
use crate::pipeline::{PAUSE_MS, SENTENCES};
use crate::support::{Process, spawn_worker_process, user, wait_for};
use octavia::pipeline::Language;
use octavia::pipeline::media::AudioFormat;
use serde_json::json;
use std::collections::BTreeMap;

/// A worker process on `env`'s store and pipeline settings, running one thing at a time,
/// with `settings` (`section.key=value`) on top.
fn worker_process(env: &Env, id: &str, settings: &[&str]) -> Process {
    let local_dir = format!("storage.local_dir={}", env.config.storage.local_dir);
    let segment = format!(
        "pipeline.segment_seconds={}",
        env.config.pipeline.segment_seconds
    );
    let mut args = vec!["--concurrency", "1", "--set", &local_dir, "--set", &segment];
    for setting in settings {
        args.extend(["--set", setting]);
    }
    spawn_worker_process(&env.db, id, &args)
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
    let _a = worker_process(&env, "pa", &[]);
    let _b = worker_process(&env, "pb", &[]);
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
    let mut a = worker_process(&env, "pa", &[]);
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

    let _b = worker_process(&env, "pb", &[]);
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

/// The pids of the whisper helpers `parent` started.
fn whisper_helpers_of(parent: u32) -> Vec<i32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let (Ok(stat), Ok(cmdline)) = (
            std::fs::read_to_string(entry.path().join("stat")),
            std::fs::read(entry.path().join("cmdline")),
        ) else {
            continue;
        };
        // The parent pid is the second field after the parenthesised program name.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        let named = String::from_utf8_lossy(&cmdline)
            .split('\0')
            .any(|arg| arg == octavia::pipeline::engines::whisper::HELPER_ARG);
        if ppid == Some(parent) && named {
            pids.push(pid);
        }
    }
    pids
}

#[tokio::test]
async fn a_whisper_helper_killed_mid_segment_fails_only_that_attempt() {
    let env = Env::local(60).await;
    let user = user(&env.db, 100).await;
    let path = env.dir.path().join("speech.wav");
    let sentences = [SENTENCES, SENTENCES].concat();
    must(
        media::generate_audio(
            &sentences,
            Language::English,
            PAUSE_MS,
            AudioFormat::Wav,
            &path,
        )
        .await,
    );
    let input = env.upload(user, &path, "audio").await;
    let job = env.job(user, "subtitles", Some(input), json!({})).await;
    // One segment, heard by the slower model: the kill lands while it is being heard.
    let worker = worker_process(
        &env,
        "pw",
        &[
            "engines.whisper_english_model=.venv/models/whisper-base",
            "worker.backoff_base_ms=3000",
        ],
    );
    let pid = worker.id();
    // The worker started its helper before claiming anything.
    let helpers = wait_for(30, "the worker's whisper helper", || async {
        let pids = whisper_helpers_of(pid);
        (!pids.is_empty()).then_some(pids)
    })
    .await;
    assert_eq!(helpers.len(), 1, "{helpers:?}");
    wait_for(60, "the segment to run", || async {
        let segments = env.segments(job).await;
        segments.iter().any(|s| s.status == "running").then_some(())
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    // SAFETY: kill(2) on a pid this test found as the worker's child.
    unsafe {
        libc::kill(helpers[0], libc::SIGKILL);
    }
    // The attempt failed, to be retried after its backoff (completion clears the error).
    let error = wait_for(30, "the killed attempt's error", || async {
        let segments = env.segments(job).await;
        segments.first()?.last_error.clone()
    })
    .await;
    assert!(
        error.contains("whisper helper") && error.contains("signal: 9"),
        "{error}"
    );
    env.wait(&[job], 120).await;

    let (row, _) = env.output(job).await;
    env.subtitle_file(&row, "srt").await;
    let segments = env.segments(job).await;
    assert_eq!(segments.len(), 1);
    assert_eq!(
        segments[0].attempts, 2,
        "the kill failed the first attempt, the second completed: {:?}",
        segments[0]
    );
    // A new helper took the dead one's place.
    let now = whisper_helpers_of(pid);
    assert!(now.len() == 1 && now[0] != helpers[0], "{now:?}");
    drop(worker);
}
