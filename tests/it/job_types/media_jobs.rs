//! The job types over speech media: video_translation, audio_translation, subtitles.

use super::*;
use crate::pipeline::{ENGLISH, PAUSE_MS, SENTENCES, SPANISH_SENTENCES};
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
    let env = Env::local(30).await;
    let user = user(&env.db, 100).await;
    // Sixteen sentences of the quality benchmark's corpus, a hundred words, so the word
    // error rate says how well speech is heard rather than how one sentence was.
    let (path, info) = video(env.dir.path(), "talk.mp4", &ENGLISH[..16]).await;
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
    assert_eq!(row.metadata["files"]["video"]["key"], row.s3_key.as_str());

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
        translated += result["phrases"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["translation"].as_str().is_some_and(|t| !t.is_empty()))
            .count();
    }
    assert!(translated >= 2, "only {translated} phrases were translated");
    assert_eq!(srt.len(), translated);
    // Only the job needed them: gone once it completed.
    crate::support::wait_for(10, "the segments' files to be deleted", || async {
        env.storage
            .list(&job_prefix(job))
            .await
            .unwrap()
            .is_empty()
            .then_some(())
    })
    .await;
    let (wer, heard) = heard_wer(&env, job, &ENGLISH[..16]).await;
    assert!(wer <= 0.08, "WER {wer:.3}: heard {heard}");
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
    let (wer, heard) = heard_wer(&env, job, &SENTENCES[..3]).await;
    assert!(wer <= 0.08, "WER {wer:.3}: heard {heard}");
    // The segments' inputs and dubs went through the S3 server, and were deleted from it
    // once the job completed: the bucket holds the input and the outputs.
    for s in env.segments(job).await {
        let (input, result) = (s.input.unwrap(), s.result.unwrap());
        assert!(
            input["key"].as_str().unwrap().contains("/plan/1-1/"),
            "{input}"
        );
        assert!(
            result["audio_key"].as_str().unwrap().ends_with("/dub.wav"),
            "{result}"
        );
    }
    crate::support::wait_for(10, "the intermediates to be deleted", || async {
        let objects = env.storage.list("").await.unwrap();
        objects
            .iter()
            .all(|k| k.starts_with("media/"))
            .then_some(())
    })
    .await;
    assert_eq!(
        env.storage.list("").await.unwrap().len(),
        5,
        "input, audio, srt, vtt, transcript"
    );
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
    // The words, where they were said.
    let (wer, heard) = heard_wer(&env, job, &SENTENCES).await;
    assert!(wer <= 0.08, "WER {wer:.3}: heard {heard}");
    assert_eq!(srt.len(), SENTENCES.len(), "one cue per sentence: {srt:?}");
    for (cue, (sentence, _)) in srt.iter().zip(&speech.sentences) {
        assert!(
            cue.start_ms.abs_diff(sentence.start_ms) <= 300
                && cue.end_ms.abs_diff(sentence.end_ms) <= 300,
            "{cue:?} for the sentence at {sentence:?}"
        );
    }
    assert!(srt.last().unwrap().end_ms <= speech.duration_ms);
}

#[tokio::test]
async fn audio_translation_dubs_spanish_speech_into_english() {
    let env = Env::local(8).await;
    let user = user(&env.db, 100).await;
    let path = env.dir.path().join("habla.m4a");
    must(
        media::generate_audio(
            &SPANISH_SENTENCES,
            Language::Spanish,
            PAUSE_MS,
            AudioFormat::M4a,
            &path,
        )
        .await,
    );
    let input_ms = must(media::probe(&path).await).duration_ms;
    let input = env.upload(user, &path, "audio").await;
    let job = env
        .job(
            user,
            "audio_translation",
            Some(input),
            json!({"source_language": "es", "target_language": "en", "format": "mp3"}),
        )
        .await;
    let worker = env.worker("w1");
    env.wait(&[job], 120).await;
    worker.stop().await;

    let (row, out) = env.output(job).await;
    assert!(row.s3_key.ends_with("/habla.en.mp3"), "{}", row.s3_key);
    same_duration(must(media::probe(&out).await).duration_ms, input_ms);
    let (wer, heard) = heard_wer(&env, job, &SPANISH_SENTENCES).await;
    assert!(wer <= 0.35, "WER {wer:.3}: heard {heard}");
    // English subtitles of the Spanish speech.
    let srt = env.subtitle_file(&row, "srt").await;
    let english: String = srt.iter().map(|c| c.text.to_lowercase()).collect();
    assert!(
        ["weather", "coffee", "house", "tomorrow"]
            .iter()
            .filter(|w| english.contains(*w))
            .count()
            >= 2,
        "{srt:?}"
    );
    assert_eq!(row.metadata["source_language"], "es");
}

#[tokio::test]
async fn subtitles_detect_the_language_spoken() {
    let env = Env::local(5).await;
    let user = user(&env.db, 100).await;
    let path = env.dir.path().join("habla.wav");
    let speech = must(
        media::generate_audio(
            &SPANISH_SENTENCES,
            Language::Spanish,
            PAUSE_MS,
            AudioFormat::Wav,
            &path,
        )
        .await,
    );
    let input = env.upload(user, &path, "audio").await;
    let job = env
        .job(
            user,
            "subtitles",
            Some(input),
            json!({"source_language": "auto"}),
        )
        .await;
    let worker = env.worker("w1");
    env.wait(&[job], 90).await;
    worker.stop().await;

    let (row, _) = env.output(job).await;
    assert!(row.s3_key.ends_with("/habla.es.srt"), "{}", row.s3_key);
    assert_eq!(row.metadata["source_language"], "es");
    let probability = row.metadata["detected_probability"].as_f64().unwrap();
    assert!(probability > 0.7, "{}", row.metadata);
    let (wer, heard) = heard_wer(&env, job, &SPANISH_SENTENCES).await;
    assert!(wer <= 0.35, "WER {wer:.3}: heard {heard}");
    let srt = env.subtitle_file(&row, "srt").await;
    assert!(srt.last().unwrap().end_ms <= speech.duration_ms);
    // Every segment heard Spanish.
    for s in env.segments(job).await {
        assert_eq!(s.input.as_ref().unwrap()["source_language"], "es");
    }
}
