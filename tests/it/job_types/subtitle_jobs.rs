//! The job types over subtitle files: subtitle_translation, subtitle_to_audio.

use super::*;
use crate::support::user;
use octavia::pipeline::media::wav::Wav;
use octavia::pipeline::subtitles::SubtitleFormat;
use serde_json::json;
use std::process::Command;

/// English cues as a real-world file has them: a byte order mark, CRLF line ends, a cue
/// on two lines, markup, and no final newline.
const ENGLISH_SRT: &str = "\u{feff}1\r\n00:00:01,000 --> 00:00:02,500\r\nThe weather is very good today.\r\n\r\n\
2\r\n00:00:03,000 --> 00:00:05,250\r\nI live in a small house\r\nnear the river.\r\n\r\n\
3\r\n00:00:05,300 --> 00:00:06,000\r\n<i>The dog eats.</i>\r\n\r\n\
4\r\n00:00:07,000 --> 00:00:09,999\r\nPlease call me tomorrow morning.\r\n\r\n\
5\r\n00:01:00,000 --> 00:01:02,000\r\nI would like a cup of coffee.";

/// What apertium itself says of `text`, run on its own.
fn apertium(text: &str) -> String {
    let mut child = Command::new("apertium")
        .args(["-u", "eng-spa"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("apertium runs (apt-get install -y apertium apertium-eng-spa)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::test]
async fn subtitle_translation_is_what_apertium_says_with_timings_untouched() {
    let mut env = Env::local(30).await;
    // Two cues a segment: three segments for five cues.
    env.config.pipeline.subtitle_batch_cues = 2;
    let user = user(&env.db, 100).await;
    let input = env
        .upload_bytes(user, "talk.srt", ENGLISH_SRT.as_bytes(), "subtitle")
        .await;
    let job = env
        .job(
            user,
            "subtitle_translation",
            Some(input),
            json!({"target_language": "es"}),
        )
        .await;
    let worker = env.worker("w1");
    env.wait(&[job], 60).await;
    worker.stop().await;

    let (row, out) = env.output(job).await;
    assert_eq!(row.media_type.as_deref(), Some("subtitle"));
    assert_eq!(row.metadata["main"], "srt", "the input's format by default");
    assert_eq!(
        row.mimetype.as_deref(),
        Some(SubtitleFormat::Srt.mime_type())
    );
    assert!(row.s3_key.ends_with("/talk.es.srt"), "{}", row.s3_key);
    assert_eq!(row.duration_seconds, Some(62.0));
    let english = subtitles::parse(ENGLISH_SRT).unwrap();
    let spanish = subtitles::parse(&std::fs::read_to_string(out).unwrap()).unwrap();
    assert_eq!(spanish.len(), english.len());
    for (en, es) in english.iter().zip(&spanish) {
        assert_eq!(
            (es.start_ms, es.end_ms),
            (en.start_ms, en.end_ms),
            "timings untouched"
        );
        assert_eq!(es.text, apertium(&en.plain_text()), "{en:?}");
    }
    assert_eq!(spanish[0].text, "El tiempo es muy bien hoy.");
    assert_eq!(env.subtitle_file(&row, "vtt").await, spanish);
    assert_eq!(env.segments(job).await.len(), 3);
}

/// The loudest sample of `wav` between `from` and `to` ms.
fn peak(wav: &Wav, from: u64, to: u64) -> u16 {
    let frames = |ms: u64| (wav.spec.frames_in(ms) as usize).min(wav.frames() as usize);
    wav.data[frames(from) * 2..frames(to) * 2]
        .chunks_exact(2)
        .map(|s| i16::from_le_bytes([s[0], s[1]]).unsigned_abs())
        .max()
        .unwrap_or(0)
}

#[tokio::test]
async fn subtitle_to_audio_speaks_each_cue_at_its_time() {
    let mut env = Env::local(30).await;
    env.config.pipeline.subtitle_batch_cues = 2;
    let user = user(&env.db, 100).await;
    let srt = "1\n00:00:01,000 --> 00:00:03,000\nHello.\n\n\
               2\n00:00:04,500 --> 00:00:06,500\nGood morning.\n\n\
               3\n00:00:08,000 --> 00:00:09,500\nThank you.\n";
    let input = env
        .upload_bytes(user, "greetings.srt", srt.as_bytes(), "subtitle")
        .await;
    let job = env
        .job(
            user,
            "subtitle_to_audio",
            Some(input),
            json!({"source_language": "en", "target_language": "es", "format": "wav"}),
        )
        .await;
    let worker = env.worker("w1");
    env.wait(&[job], 60).await;
    worker.stop().await;

    let (row, out) = env.output(job).await;
    assert_eq!(row.media_type.as_deref(), Some("audio"));
    assert_eq!(row.mimetype.as_deref(), Some("audio/wav"));
    let info = must(media::probe(&out).await);
    same_duration(info.duration_ms, 9_500);
    let wav = must(Wav::read(&out).await);
    assert_eq!(
        wav.duration_ms(),
        9_500,
        "as long as the subtitles, exactly"
    );
    assert!(peak(&wav, 0, 1_000) < 100, "silence before the first cue");
    for start in [1_000, 4_500, 8_000] {
        assert!(
            peak(&wav, start - 300, start) < 100,
            "silence just before the cue at {start} ms"
        );
        assert!(
            peak(&wav, start, start + 700) > 2_000,
            "speech at the cue at {start} ms"
        );
    }
    // Translated first: the spoken Spanish is written as subtitles beside the audio.
    let spoken = env.subtitle_file(&row, "srt").await;
    let times: Vec<(u64, u64)> = spoken.iter().map(|c| (c.start_ms, c.end_ms)).collect();
    assert_eq!(times, [(1_000, 3_000), (4_500, 6_500), (8_000, 9_500)]);
    assert_eq!(spoken[0].text, apertium("Hello."));
    let segments = env.segments(job).await;
    assert_eq!(segments.len(), 2);
    assert_eq!(
        (segments[0].start_ms, segments[0].end_ms),
        (Some(0), Some(8_000))
    );
}
