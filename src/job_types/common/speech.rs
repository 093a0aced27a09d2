//! Speech media (video and audio files), shared by `video_translation`,
//! `audio_translation` and `subtitles`: the plan that cuts a file at silences and stores
//! each window's speech, the transcription every segment starts with, what a segment
//! records, and the subtitle cues finalize builds from the records.
//!
//! The plan stores each window as 16 kHz mono WAV (what speech recognizers read, 32 KB a
//! second) under `jobs/{job}/plan/{run}-{attempt}/`, so a segment downloads only its own window,
//! never the whole file, and any worker can run it.

use super::context::{
    InputMedia, Pipeline, Stopwatch, pipeline_error, scratch, store, until_cancelled,
};
use crate::job::NewSegment;
use crate::job::options::Options;
use crate::pipeline::engines::{Detected, Phrase};
use crate::pipeline::media::{self, Window};
use crate::pipeline::subtitles::Cue;
use crate::pipeline::{Language, PipelineError, SourceLanguage};
use crate::storage;
use crate::worker::{HandlerError, Plan, SegmentContext, StepContext};
use futures_util::{StreamExt, TryStreamExt, stream};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Windows extracted and uploaded at once by a plan: ffmpeg's seeks and the uploads
/// overlap, without taking every core of a machine that runs other work too.
const EXTRACTIONS_AT_ONCE: usize = 3;

/// Language detection hears this much of the input at a time (Whisper listens to 30 s).
const DETECT_SAMPLE_MS: u64 = 30_000;
/// A detection at least this sure is taken; a less sure one has up to two more samples
/// heard, later in the input, and the surest wins.
const DETECT_SURE: f64 = 0.7;

/// A speech segment's input (`job_segments.input`): everything it needs, so running it
/// reads nothing else.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpeechInput {
    /// The window's speech, 16 kHz mono WAV.
    pub key: String,
    /// Where the window is in the input file.
    pub window: Window,
    pub source_language: Language,
    /// `None` for jobs that only transcribe.
    pub target_language: Option<Language>,
}

/// What the plan found (`jobs.metadata.plan`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpeechPlan {
    /// The input's duration: the windows cover exactly this.
    pub duration_ms: u64,
    /// ffprobe's container name.
    pub container: String,
    pub video_codec: Option<String>,
    pub audio_codec: String,
    pub segments: usize,
    pub segment_seconds: u64,
    /// The language spoken: the one given, or the one detected (absent from plans made
    /// before detection existed, whose options give it).
    #[serde(default)]
    pub source_language: Option<Language>,
    /// How sure the engine was, when the language was detected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detected_probability: Option<f64>,
}

impl SpeechPlan {
    /// The language spoken in the input.
    pub fn source(&self, options: &Options) -> Result<Language, HandlerError> {
        self.source_language
            .or(options.source.known())
            .ok_or_else(|| HandlerError::Fatal("the plan recorded no source language".into()))
    }
}

/// The language spoken in `media`, as the speech-to-text engine detects it in samples of
/// its speech.
async fn detect_language(
    p: &Pipeline,
    media: &Path,
    duration_ms: u64,
    dir: &Path,
) -> Result<Detected, PipelineError> {
    let mut best: Option<Detected> = None;
    for third in 0..3 {
        let start = duration_ms * third / 3;
        if third > 0 && start + DETECT_SAMPLE_MS / 2 > duration_ms {
            break;
        }
        let window = Window::new(start, (start + DETECT_SAMPLE_MS).min(duration_ms));
        let wav = dir.join(format!("detect-{third}.wav"));
        media::extract_speech(media, window, &wav).await?;
        let detected = p.engines.speech_to_text.detect_language(&wav).await?;
        let _ = tokio::fs::remove_file(&wav).await;
        if detected.probability >= DETECT_SURE {
            return Ok(detected);
        }
        if best.is_none_or(|b| detected.probability > b.probability) {
            best = Some(detected);
        }
    }
    Ok(best.expect("the first sample is always heard"))
}

/// Plans a speech job: probes the input (fatal if it is not media, has no audio, or, when
/// `need_video`, no video), cuts it at silences and stores each window's speech.
pub async fn plan(
    p: &Pipeline,
    ctx: &StepContext,
    options: &Options,
    need_video: bool,
) -> Result<Plan, HandlerError> {
    let input = InputMedia::load(&ctx.pool, &ctx.job).await?;
    let (job, run, attempt) = (ctx.job.id, ctx.job.run, ctx.attempt);
    until_cancelled(&ctx.cancel, async {
        let dir = scratch(job, "plan", attempt)?;
        let path = input.download(&p.storage, dir.path()).await?;
        let blame = |e: PipelineError| pipeline_error(e, Some(&input));
        let info = media::probe(&path).await.map_err(blame)?;
        if need_video && !info.has_video() {
            return Err(HandlerError::Fatal(format!(
                "{}: it has no video stream to dub (audio_translation dubs audio files)",
                input.describe()
            )));
        }
        let audio = info.audio().ok_or_else(|| {
            HandlerError::Fatal(format!(
                "{}: it has no audio track, so there is no speech to work on",
                input.describe()
            ))
        })?;
        let (source, detected_probability) = match options.source {
            SourceLanguage::Known(language) => (language, None),
            SourceLanguage::Detect => {
                let d = detect_language(p, &path, info.duration_ms, dir.path())
                    .await
                    .map_err(blame)?;
                (d.language, Some(d.probability))
            }
        };
        if options.target == Some(source) {
            return Err(HandlerError::Fatal(format!(
                "{}: its speech is in {} (detected, probability {:.2}), the language asked \
                 to translate it to: there is nothing to translate",
                input.describe(),
                source.name(),
                detected_probability.unwrap_or(1.0)
            )));
        }
        let windows = media::speech_windows(&path, info.duration_ms, &p.cut_options())
            .await
            .map_err(blame)?;
        let segments: Vec<NewSegment> = stream::iter(windows.iter().copied().enumerate())
            .map(|(i, window)| {
                let (path, dir, input) = (&path, dir.path(), &input);
                async move {
                    let wav = dir.join(format!("segment-{i}.wav"));
                    media::extract_speech(path, window, &wav)
                        .await
                        .map_err(|e| pipeline_error(e, Some(input)))?;
                    let key = storage::plan_key(job, run, attempt, &format!("segment-{i:05}.wav"));
                    store(&p.storage, &key, &wav).await?;
                    let _ = tokio::fs::remove_file(&wav).await;
                    let ms = |v: u64| {
                        i32::try_from(v).map_err(|_| {
                            HandlerError::Fatal(format!(
                                "{}: too long (over 596 hours)",
                                input.describe()
                            ))
                        })
                    };
                    let segment_input = SpeechInput {
                        key,
                        window,
                        source_language: source,
                        target_language: options.target,
                    };
                    Ok::<_, HandlerError>(NewSegment {
                        start_ms: Some(ms(window.start_ms)?),
                        end_ms: Some(ms(window.end_ms)?),
                        input: serde_json::to_value(segment_input).expect("serializable"),
                    })
                }
            })
            .buffered(EXTRACTIONS_AT_ONCE)
            .try_collect()
            .await?;
        let data = SpeechPlan {
            duration_ms: info.duration_ms,
            container: info.format_name.clone(),
            video_codec: info.video().map(|v| v.codec.clone()),
            audio_codec: audio.codec.clone(),
            segments: segments.len(),
            segment_seconds: p.settings.segment_seconds,
            source_language: Some(source),
            detected_probability,
        };
        Ok(Plan {
            segments,
            data: serde_json::to_value(data).expect("serializable"),
        })
    })
    .await
}

/// Reads the plan's data back in finalize.
pub fn plan_data(ctx: &StepContext) -> Result<SpeechPlan, HandlerError> {
    serde_json::from_value(ctx.job.plan.clone())
        .map_err(|e| HandlerError::Fatal(format!("the job's plan is unreadable: {e}")))
}

/// A segment's input, read.
pub fn segment_input(ctx: &SegmentContext) -> Result<SpeechInput, HandlerError> {
    serde_json::from_value(ctx.segment.input.clone()).map_err(|e| {
        HandlerError::Fatal(format!(
            "segment {} has an unreadable input: {e}",
            ctx.segment.index
        ))
    })
}

/// Downloads a segment's speech into `dir` and transcribes it. Phrases are relative to
/// the window and kept inside it.
pub async fn hear(
    p: &Pipeline,
    input: &SpeechInput,
    dir: &Path,
    watch: &mut Stopwatch,
) -> Result<Vec<Phrase>, HandlerError> {
    let wav = dir.join("speech.wav");
    super::context::fetch(&p.storage, &input.key, &wav).await?;
    watch.lap("download");
    let phrases = p
        .engines
        .speech_to_text
        .transcribe(&wav, input.source_language)
        .await
        .map_err(|e| pipeline_error(e, None))?;
    watch.lap("transcribe");
    let length = input.window.duration_ms();
    Ok(phrases
        .into_iter()
        .filter(|ph| ph.start_ms < length && !ph.text.trim().is_empty())
        .map(|ph| Phrase {
            end_ms: ph.end_ms.min(length),
            ..ph
        })
        .collect())
}

/// How dubbed speech was fitted to its slot (see [`media::Fit`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FitRecord {
    pub speech_ms: u64,
    pub tempo: f64,
    pub padded_ms: u64,
    pub trimmed_ms: u64,
}

impl From<media::Fit> for FitRecord {
    fn from(f: media::Fit) -> Self {
        FitRecord {
            speech_ms: f.speech_ms,
            tempo: (f.tempo * 1000.0).round() / 1000.0,
            padded_ms: f.padded_ms,
            trimmed_ms: f.trimmed_ms,
        }
    }
}

/// A recognized phrase, with its place in the input file (not the window).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhraseRecord {
    pub start_ms: u64,
    pub end_ms: u64,
    /// What was heard.
    pub text: String,
    /// Its translation, for jobs that translate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub translation: Option<String>,
    /// How its dub was fitted, for jobs that dub.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit: Option<FitRecord>,
}

/// A speech segment's result (`job_segments.result`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpeechResult {
    /// The worker that ran the attempt, and the attempt.
    pub worker: String,
    pub attempt: i32,
    pub window: Window,
    pub phrases: Vec<PhraseRecord>,
    /// The dubbed window (24 kHz mono WAV, exactly the window long), for jobs that dub.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_key: Option<String>,
    /// Milliseconds per stage: download, transcribe, translate, synthesize, fit, upload.
    pub elapsed_ms: BTreeMap<String, u64>,
}

/// The cues of every segment's phrases, in order and never overlapping: the heard text,
/// or with `translated` the translation. Empty texts are left out.
pub fn cues(results: &[SpeechResult], translated: bool) -> Vec<Cue> {
    let mut cues: Vec<Cue> = Vec::new();
    for result in results {
        for phrase in &result.phrases {
            let text = match translated {
                true => phrase.translation.as_deref().unwrap_or(""),
                false => &phrase.text,
            }
            .trim();
            let start = phrase
                .start_ms
                .max(cues.last().map_or(0, |c: &Cue| c.end_ms));
            let end = phrase.end_ms.min(result.window.end_ms);
            if text.is_empty() || end <= start {
                continue;
            }
            cues.push(Cue::new(start, end, text));
        }
    }
    cues
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phrase(start_ms: u64, end_ms: u64, text: &str, translation: &str) -> PhraseRecord {
        PhraseRecord {
            start_ms,
            end_ms,
            text: text.into(),
            translation: Some(translation.into()),
            fit: None,
        }
    }

    #[test]
    fn cues_are_ordered_and_never_overlap() {
        let result = |window: Window, phrases| SpeechResult {
            worker: "w".into(),
            attempt: 1,
            window,
            phrases,
            audio_key: None,
            elapsed_ms: BTreeMap::new(),
        };
        let results = [
            result(
                Window::new(0, 5_000),
                vec![
                    phrase(500, 1_500, "hello", "hola"),
                    phrase(1_400, 2_000, "there", "allí"),
                    phrase(2_100, 2_500, "um", ""),
                    phrase(4_000, 5_600, "late", "tarde"),
                ],
            ),
            result(
                Window::new(5_000, 9_000),
                vec![phrase(5_000, 6_000, "x", "y")],
            ),
        ];
        let spanish = cues(&results, true);
        assert_eq!(
            spanish,
            vec![
                Cue::new(500, 1_500, "hola"),
                Cue::new(1_500, 2_000, "allí"),
                Cue::new(4_000, 5_000, "tarde"),
                Cue::new(5_000, 6_000, "y"),
            ]
        );
        crate::pipeline::subtitles::validate(&spanish).unwrap();
        assert_eq!(cues(&results, false)[2].text, "um");
    }
}
