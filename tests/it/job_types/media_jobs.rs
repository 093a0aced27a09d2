//! The job types over speech media: video_translation, audio_translation, subtitles.

use super::*;
use crate::pipeline::{PAUSE_MS, SENTENCES};
use crate::support::{assert_ledger_balances, user};
use octavia::pipeline::Language;
use octavia::pipeline::media::AudioFormat;
use octavia::storage::job_prefix;
use serde_json::json;

/// The user's balance.
async fn balance(env: &Env, user: Uuid) -> i64 {
    let client = env.db.client().await;
    client
        .query_one("SELECT credits FROM users WHERE id = $1", &[&user])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn video_translation_dubs_a_video_keeping_picture_and_original_audio_with_subtitles() {
    let env = Env::local(4).await;
    let user = user(&env.db, 100).await;
    let (path, info) = video(env.dir.path(), "talk.mp4", &SENTENCES).await;
    let input = env.upload(user, &path, "video").await;
    let job = env
        .job(
            user,
            "video_translation",
            Some(input),
            json!({"source_language": "en", "target_language": "es"}),
        )
        .await;
    let worker = env.worker("w1");
    env.wait(&[job], 120).await;
    worker.stop().await;

    let (row, out) = env.output(job).await;
    assert_dubbed_video(&out, &path, &info).await;
    assert_eq!(row.media_type.as_deref(), Some("video"));
    assert_eq!(row.mimetype.as_deref(), Some("video/mp4"));
    assert_eq!(row.derived_from, Some(input));
    assert_eq!(row.user_id, Some(user));
    assert_eq!(
        row.size_bytes,
        Some(std::fs::metadata(&out).unwrap().len() as i64)
    );
    same_duration(
        (row.duration_seconds.unwrap() * 1000.0) as u64,
        info.duration_ms,
    );
    assert!(row.s3_key.ends_with("/talk.es.mp4"), "{}", row.s3_key);
    assert_eq!(row.metadata["main"], "video");
    assert_eq!(row.metadata["files"]["video"], row.s3_key.as_str());

    let srt = env.subtitle_file(&row, "srt").await;
    let vtt = env.subtitle_file(&row, "vtt").await;
    assert_eq!(srt, vtt);
    assert!(srt.last().unwrap().end_ms <= info.duration_ms);

    // Several segments, each with its dubbed window stored under its attempt.
    let segments = env.segments(job).await;
    assert!(segments.len() >= 2, "{} segments", segments.len());
    let mut translated = 0;
    for s in &segments {
        let result = s.result.as_ref().unwrap();
        assert_eq!(result["worker"], "w1");
        let key = result["audio_key"].as_str().unwrap();
        assert_eq!(
            key,
            format!(
                "{}/segments/{}/1-{}/dub.wav",
                job_prefix(job),
                s.index,
                s.attempts
            )
        );
        assert!(env.storage.head(key).await.unwrap().is_some());
        translated += result["phrases"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["translation"].as_str().is_some_and(|t| !t.is_empty()))
            .count();
    }
    assert!(translated >= 2, "only {translated} phrases were translated");
    assert_eq!(srt.len(), translated);
    assert_eq!(balance(&env, user).await, 100 - COST);
    assert_ledger_balances(&env.db).await;
}

#[tokio::test]
async fn audio_translation_dubs_an_mp3_through_s3() {
    let env = Env::s3(4).await;
    let user = user(&env.db, 100).await;
    let path = env.dir.path().join("speech.mp3");
    let speech = must(
        media::generate_audio(
            &SENTENCES[..3],
            Language::English,
            PAUSE_MS,
            AudioFormat::Mp3,
            &path,
        )
        .await,
    );
    let input_ms = must(media::probe(&path).await).duration_ms;
    same_duration(input_ms, speech.duration_ms);
    let input = env.upload(user, &path, "audio").await;
    let job = env
        .job(
            user,
            "audio_translation",
            Some(input),
            json!({"target_language": "es"}),
        )
        .await;
    let worker = env.worker("w1");
    env.wait(&[job], 120).await;
    worker.stop().await;

    let (row, out) = env.output(job).await;
    let info = must(media::probe(&out).await);
    assert!(!info.has_video());
    assert_eq!(info.audio().unwrap().codec, "aac");
    same_duration(info.duration_ms, input_ms);
    assert_eq!(row.media_type.as_deref(), Some("audio"));
    assert_eq!(row.mimetype.as_deref(), Some("audio/mp4"));
    assert!(row.s3_key.ends_with("/speech.es.m4a"), "{}", row.s3_key);
    env.subtitle_file(&row, "srt").await;
    // Everything went through the S3 server: the segments' inputs and outputs too.
    let objects = env.storage.list(&job_prefix(job)).await.unwrap();
    let plans = objects.iter().filter(|k| k.contains("/plan/1-1/")).count();
    let dubs = objects.iter().filter(|k| k.ends_with("/dub.wav")).count();
    let segments = env.segments(job).await.len();
    assert_eq!((plans, dubs), (segments, segments), "{objects:?}");
    assert_ledger_balances(&env.db).await;
}

#[tokio::test]
async fn subtitles_of_speech_are_written_as_srt_and_webvtt() {
    let env = Env::local(5).await;
    let user = user(&env.db, 100).await;
    let path = env.dir.path().join("speech.wav");
    let speech = must(
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
    let job = env
        .job(user, "subtitles", Some(input), json!({"format": "vtt"}))
        .await;
    let worker = env.worker("w1");
    env.wait(&[job], 90).await;
    worker.stop().await;

    let (row, out) = env.output(job).await;
    assert_eq!(row.media_type.as_deref(), Some("subtitle"));
    assert_eq!(row.mimetype.as_deref(), Some("text/vtt"));
    assert_eq!(row.metadata["main"], "vtt");
    assert!(row.s3_key.ends_with("/speech.en.vtt"), "{}", row.s3_key);
    same_duration(
        (row.duration_seconds.unwrap() * 1000.0) as u64,
        speech.duration_ms,
    );
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.starts_with("WEBVTT"), "{text}");
    let vtt = env.subtitle_file(&row, "vtt").await;
    let srt = env.subtitle_file(&row, "srt").await;
    assert_eq!(vtt, srt);
    // Some of the words, where they were said.
    let heard: Vec<String> = srt
        .iter()
        .flat_map(|c| c.text.split_whitespace().map(str::to_lowercase))
        .collect();
    let expected = ["weather", "like", "tomorrow", "two", "three", "four"];
    let found = expected
        .iter()
        .filter(|w| heard.contains(&w.to_string()))
        .count();
    assert!(found >= 3, "heard {heard:?}");
    let first = speech.sentences[0].0;
    assert!(
        srt[0].start_ms.abs_diff(first.start_ms) < 700,
        "first cue {:?}, first sentence {first:?}",
        srt[0]
    );
    assert!(srt.last().unwrap().end_ms <= speech.duration_ms);
}
