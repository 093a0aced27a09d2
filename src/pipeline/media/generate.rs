//! Test media: English (or Spanish) speech synthesized with espeak-ng from known sentences,
//! with pauses between them, as a WAV, an audio file or a test-pattern video. The tests use
//! it to run the real engines on input whose words and timings are known; so does the demo.

use super::audio::{AudioFormat, encode_audio};
use super::wav::{Wav, WavWriter};
use super::{WORK_SPEC, Window, ffmpeg, scratch, secs, to_work_wav};
use crate::pipeline::engines::{TEST_MEDIA_WORDS_PER_MINUTE, espeak_to_wav};
use crate::pipeline::{Language, PipelineError, Result};
use std::ffi::OsString;
use std::path::Path;

/// Sentences to speak in generated media, for the tests and the demo: everyday English
/// that the whisper engine hears word for word in espeak-ng's voice (pocketsphinx gets
/// "the weather is", "I would like", "tomorrow" and "two three four" right).
pub const SAMPLE_SENTENCES: [&str; 4] = [
    "The weather is very good today.",
    "I would like a cup of coffee.",
    "Please call me tomorrow morning.",
    "One two three four five.",
];

/// A pause between generated sentences long enough for silence detection to place a cut
/// in it, short enough to keep generated media short.
pub const SAMPLE_PAUSE_MS: u64 = 1_200;

/// Generated speech and where each sentence is in it.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedSpeech {
    pub duration_ms: u64,
    /// Each sentence and the window it is spoken in.
    pub sentences: Vec<(Window, String)>,
}

impl GeneratedSpeech {
    /// The pauses between sentences (and before the first and after the last): where a
    /// speech-aware cut may fall.
    pub fn pauses(&self) -> Vec<Window> {
        let mut pauses = Vec::new();
        let mut at = 0;
        for (w, _) in &self.sentences {
            pauses.push(Window::new(at, w.start_ms));
            at = w.end_ms;
        }
        pauses.push(Window::new(at, self.duration_ms));
        pauses
    }
}

/// Synthesizes `sentences` with espeak-ng into one WAV in the working format:
/// `pause_ms` of silence, then each sentence followed by `pause_ms` of silence.
pub async fn generate_speech_wav(
    sentences: &[&str],
    language: Language,
    pause_ms: u64,
    out: &Path,
) -> Result<GeneratedSpeech> {
    if sentences.is_empty() {
        return Err(PipelineError::InvalidInput("no sentences to speak".into()));
    }
    let dir = scratch()?;
    let pause = WORK_SPEC.frames_in(pause_ms);
    let mut w = WavWriter::create(out, WORK_SPEC).await?;
    let mut placed = Vec::new();
    w.silence(pause).await?;
    for (n, sentence) in sentences.iter().enumerate() {
        let raw = dir.path().join(format!("{n}-espeak.wav"));
        let work = dir.path().join(format!("{n}.wav"));
        espeak_to_wav(
            sentence,
            language.espeak_voice(),
            TEST_MEDIA_WORDS_PER_MINUTE,
            &raw,
        )
        .await?;
        to_work_wav(&raw, &work).await?;
        let wav = Wav::read(&work).await?;
        let start = w.frames();
        w.write(voice_of(&wav.data)).await?;
        placed.push((
            Window::new(WORK_SPEC.ms_of(start), WORK_SPEC.ms_of(w.frames())),
            sentence.to_string(),
        ));
        w.silence(pause).await?;
    }
    let duration_ms = WORK_SPEC.ms_of(w.frames());
    w.finish().await?;
    Ok(GeneratedSpeech {
        duration_ms,
        sentences: placed,
    })
}

/// A sample quieter than this (about -40 dBFS) is silence around synthesized speech.
const QUIET_SAMPLE: i16 = 300;

/// Mono 16-bit samples without the silence before and after the speech, so a sentence's
/// window is where its voice is (the tests' and the quality benchmark's references).
pub fn voice_of(data: &[u8]) -> &[u8] {
    let loud = |frame: &[u8]| {
        i16::from_le_bytes([frame[0], frame[1]]).unsigned_abs() > QUIET_SAMPLE as u16
    };
    let frames: Vec<&[u8]> = data.chunks_exact(2).collect();
    let Some(first) = frames.iter().position(|f| loud(f)) else {
        return data;
    };
    let last = frames
        .iter()
        .rposition(|f| loud(f))
        .expect("a loud frame exists");
    &data[first * 2..(last + 1) * 2]
}

/// Generates an audio-only file of the spoken sentences in `format`.
pub async fn generate_audio(
    sentences: &[&str],
    language: Language,
    pause_ms: u64,
    format: AudioFormat,
    out: &Path,
) -> Result<GeneratedSpeech> {
    let dir = scratch()?;
    let wav = dir.path().join("speech.wav");
    let speech = generate_speech_wav(sentences, language, pause_ms, &wav).await?;
    encode_audio(&wav, format, out).await?;
    Ok(speech)
}

/// Generates a short MP4 video: ffmpeg's moving test pattern (H.264, 320x240, 25 fps)
/// with the spoken sentences as its AAC audio, both as long as the speech.
pub async fn generate_video(
    sentences: &[&str],
    language: Language,
    pause_ms: u64,
    out: &Path,
) -> Result<GeneratedSpeech> {
    let dir = scratch()?;
    let wav = dir.path().join("speech.wav");
    let speech = generate_speech_wav(sentences, language, pause_ms, &wav).await?;
    let duration = secs(speech.duration_ms);
    let arg = |s: &str| OsString::from(s);
    let mut args = vec![
        arg("-f"),
        arg("lavfi"),
        arg("-i"),
        format!(
            "testsrc=size=320x240:rate=25:duration={}",
            duration.to_string_lossy()
        )
        .into(),
        arg("-i"),
        wav.into(),
    ];
    args.extend(
        [
            "-map",
            "0:v:0",
            "-map",
            "1:a:0",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "96k",
            "-ar",
            "48000",
        ]
        .map(arg),
    );
    args.extend([
        arg("-t"),
        duration,
        arg("-movflags"),
        arg("+faststart"),
        out.into(),
    ]);
    ffmpeg(args).await?;
    Ok(speech)
}
