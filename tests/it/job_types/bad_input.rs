//! Bad inputs and options fail their job at once with an error that says what is wrong,
//! refund it, and leave the worker serving.

use super::*;
use crate::pipeline::{PAUSE_MS, SENTENCES};
use crate::support::{assert_ledger_balances, user};
use octavia::pipeline::Language;
use octavia::pipeline::media::AudioFormat;
use serde_json::json;
use std::process::Command;

/// A one-second video without an audio track.
fn silent_video(path: &Path) {
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc=size=160x120:rate=10:duration=1")
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ])
        .arg(path)
        .status()
        .expect("ffmpeg runs (apt-get install -y ffmpeg)");
    assert!(status.success());
}

#[tokio::test]
async fn bad_inputs_fail_clearly_are_refunded_and_the_worker_keeps_serving() {
    let env = Env::local(30).await;
    let user = user(&env.db, 1_000).await;
    let es = json!({"target_language": "es"});

    let notes = env
        .upload_bytes(user, "notes.mp4", b"Dear diary, not a video.\n", "video")
        .await;
    let empty = env
        .upload_bytes(user, "empty.srt", b"\r\n\r\n", "subtitle")
        .await;
    let garbage = env
        .upload_bytes(
            user,
            "essay.srt",
            b"Hello world.\nNot subtitles.\n",
            "subtitle",
        )
        .await;
    let mute_path = env.dir.path().join("mute.mp4");
    silent_video(&mute_path);
    let mute = env.upload(user, &mute_path, "video").await;
    let speech_path = env.dir.path().join("speech.wav");
    must(
        media::generate_audio(
            &SENTENCES[..1],
            Language::English,
            PAUSE_MS,
            AudioFormat::Wav,
            &speech_path,
        )
        .await,
    );
    let speech = env.upload(user, &speech_path, "audio").await;

    let cases: Vec<(Uuid, &str)> = vec![
        (
            env.job(user, "video_translation", Some(notes), es.clone())
                .await,
            "(`notes.mp4`): not a media file ffprobe can read",
        ),
        (
            env.job(user, "subtitle_translation", Some(empty), es.clone())
                .await,
            "(`empty.srt`): not a usable subtitle file: the file is empty",
        ),
        (
            env.job(user, "subtitle_to_audio", Some(garbage), json!({}))
                .await,
            "(`essay.srt`): not a usable subtitle file: not SRT or WebVTT",
        ),
        (
            env.job(user, "video_translation", Some(mute), es.clone())
                .await,
            "(`mute.mp4`): it has no audio track",
        ),
        (
            env.job(
                user,
                "audio_translation",
                Some(speech),
                json!({"target_language": "fr"}),
            )
            .await,
            "option `target_language`: unsupported language: `fr`",
        ),
        (
            env.job(user, "subtitles", Some(speech), json!({"format": "docx"}))
                .await,
            "option `format`: `docx` is not a format of subtitles (one of srt, vtt)",
        ),
        (
            env.job(user, "subtitle_translation", None, es.clone())
                .await,
            "needs an input media file",
        ),
        (
            // English speech, detected, to be translated into English: the plan says so.
            env.job(
                user,
                "audio_translation",
                Some(speech),
                json!({"source_language": "auto", "target_language": "en"}),
            )
            .await,
            "its speech is in English (detected, probability",
        ),
    ];
    let worker = env.worker("w1");
    let jobs: Vec<Uuid> = cases.iter().map(|(job, _)| *job).collect();
    env.wait(&jobs, 60).await;

    let client = env.db.client().await;
    for (job, expected) in &cases {
        let view = env.job_view(*job).await;
        let error = view.last_error.clone().unwrap_or_default();
        assert_eq!(view.status, "failed", "{job}: {error}");
        assert!(
            error.contains(expected),
            "{job}: `{error}` lacks `{expected}`"
        );
        let refunds: i64 = client
            .query_one(
                "SELECT count(*) FROM credits_history WHERE job_id = $1 AND delta = $2",
                &[job, &COST],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(refunds, 1, "{job} is refunded once");
        // Fatal: no attempt was repeated.
        for s in env.segments(*job).await {
            assert_eq!(s.attempts, 1, "{job}: segment {} retried: {error}", s.index);
        }
    }

    // The same worker goes on with good work.
    let subs = "1\n00:00:01,000 --> 00:00:02,000\nThe dog eats.\n";
    let good = env
        .upload_bytes(user, "good.srt", subs.as_bytes(), "subtitle")
        .await;
    let job = env.job(user, "subtitle_translation", Some(good), es).await;
    env.wait(&[job], 30).await;
    worker.stop().await;
    let (_, out) = env.output(job).await;
    assert!(
        std::fs::read_to_string(out)
            .unwrap()
            .contains("El perro come.")
    );

    let balance: i64 = client
        .query_one("SELECT credits FROM users WHERE id = $1", &[&user])
        .await
        .unwrap()
        .get(0);
    assert_eq!(balance, 1_000 - COST, "only the good job is paid for");
    assert_ledger_balances(&env.db).await;
}
