//! `subtitle_to_audio`: speaks an SRT or WebVTT file, each cue at its cue's time,
//! translated first when `target_language` differs from `source_language`.
//!
//! - plan: read and parse the file ([`super::common::cues::read`]), order the cues by start, and
//!   cut them into batches; batch `i` covers the time window from its first cue's start
//!   (0 for the first batch) to the next batch's, and the last one to the last cue's end;
//! - segment: (translate,) speak each cue and fit its speech to its slot, from its start
//!   to the next cue's start (or its own end, if later), then place it at its offset in
//!   the window; the window's audio is stored;
//! - finalize: the windows joined and encoded: a track as long as the subtitles, speech
//!   where the cues are and silence between.
//!
//! Output: the audio (`format` `m4a`, the default, `mp3` or `wav`) is the job's media row
//! (`media_type` `audio`). When the cues were translated, the spoken subtitles are also
//! written as SRT and WebVTT, listed with the audio in `metadata.files`.

use super::common::context::{
    InputMedia, Pipeline, Stopwatch, pipeline_error, scratch, store, until_cancelled,
};
use super::common::output::{Output, streams_of, upload_subtitles, upload_transcript};
use super::common::speech::FitRecord;
use super::common::{cues, dub};
use crate::job::JobInfo;
use crate::job::options;
use crate::job::{JobType, MediaType, NewMedia, NewSegment};
use crate::pipeline::Language;
use crate::pipeline::media::{self, AudioFormat, Clip, Window};
use crate::pipeline::subtitles::Cue;
use crate::storage;
use crate::worker::{Handler, HandlerError, Plan, SegmentContext, StepContext};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

pub struct SubtitleToAudio(pub Arc<Pipeline>);

const JOB_TYPE: JobType = JobType::SubtitleToAudio;

/// A cue to speak, and until when its speech may last.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SlotCue {
    start_ms: u64,
    end_ms: u64,
    text: String,
    slot_end_ms: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct WindowInput {
    window: Window,
    cues: Vec<SlotCue>,
    source_language: Language,
    target_language: Option<Language>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SpokenCue {
    start_ms: u64,
    end_ms: u64,
    text: String,
    /// What was said: the text without markup, translated if asked.
    spoken: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fit: Option<FitRecord>,
}

#[derive(Debug, Serialize, Deserialize)]
struct WindowResult {
    worker: String,
    attempt: i32,
    window: Window,
    cues: Vec<SpokenCue>,
    audio_key: String,
    elapsed_ms: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize, Deserialize)]
struct AudioPlan {
    duration_ms: u64,
    cues: usize,
}

/// Cuts sorted cues, batched as `batches`, into windows covering `0..total_ms`, one per
/// batch, each cue with its slot. A batch starting where the previous one does joins it,
/// so no window is empty.
fn windows(batches: Vec<Range<usize>>, cues: &[Cue], total_ms: u64) -> Vec<(Window, Vec<SlotCue>)> {
    let mut groups: Vec<(u64, Range<usize>)> = Vec::new();
    for (n, range) in batches.into_iter().enumerate() {
        let start = if n == 0 {
            0
        } else {
            cues[range.start].start_ms
        };
        match groups.last_mut() {
            Some((previous, r)) if start <= *previous => r.end = range.end,
            _ => groups.push((start, range)),
        }
    }
    let ends: Vec<u64> = groups
        .iter()
        .skip(1)
        .map(|(start, _)| *start)
        .chain([total_ms])
        .collect();
    groups
        .into_iter()
        .zip(ends)
        .map(|((start, range), end)| {
            let slots = range
                .map(|i| {
                    let cue = &cues[i];
                    let next = cues.get(i + 1).map_or(cue.end_ms, |n| n.start_ms);
                    SlotCue {
                        start_ms: cue.start_ms,
                        end_ms: cue.end_ms,
                        text: cue.plain_text(),
                        slot_end_ms: next.max(cue.end_ms).min(end),
                    }
                })
                .collect();
            (Window::new(start, end), slots)
        })
        .collect()
}

#[async_trait]
impl Handler for SubtitleToAudio {
    fn job_type(&self) -> &'static str {
        JOB_TYPE.name()
    }

    async fn plan(&self, ctx: &StepContext) -> Result<Plan, HandlerError> {
        let options = options::parse(JOB_TYPE, &ctx.job.options).map_err(HandlerError::Fatal)?;
        let mut input = cues::read(&self.0, ctx).await?;
        // Speech is laid out in time; files list cues in time order almost always.
        input.cues.sort_by_key(|c| c.start_ms);
        let total_ms = input.cues.iter().map(|c| c.end_ms).max().unwrap_or(0);
        if total_ms == 0 {
            return Err(HandlerError::Fatal(format!(
                "{}: every cue ends at 0 ms: there is no time to speak in",
                input.media.describe()
            )));
        }
        let batches = cues::batches(&self.0, &input.cues);
        let segments = windows(batches, &input.cues, total_ms)
            .into_iter()
            .map(|(window, slots)| {
                Ok(NewSegment {
                    start_ms: Some(cues::ms(window.start_ms)?),
                    end_ms: Some(cues::ms(window.end_ms)?),
                    input: serde_json::to_value(WindowInput {
                        window,
                        cues: slots,
                        source_language: options.text_source(),
                        target_language: options.target,
                    })
                    .expect("serializable"),
                })
            })
            .collect::<Result<Vec<_>, HandlerError>>()?;
        let data = AudioPlan {
            duration_ms: total_ms,
            cues: input.cues.len(),
        };
        Ok(Plan {
            segments,
            data: serde_json::to_value(data).expect("serializable"),
        })
    }

    async fn run_segment(&self, ctx: &SegmentContext) -> Result<Value, HandlerError> {
        let p = &self.0;
        let segment = &ctx.segment;
        let input: WindowInput = serde_json::from_value(segment.input.clone())
            .map_err(|e| HandlerError::Fatal(format!("unreadable segment input: {e}")))?;
        until_cancelled(&ctx.cancel, async {
            let name = format!("segment-{}", segment.index);
            let dir = scratch(segment.job_id, &name, segment.attempt)?;
            let mut watch = Stopwatch::start();
            let texts: Vec<String> = input.cues.iter().map(|c| c.text.clone()).collect();
            let language = input.target_language.unwrap_or(input.source_language);
            let spoken = match input.target_language {
                Some(target) => {
                    let done = p
                        .engines
                        .translator
                        .translate(&texts, input.source_language, target)
                        .await
                        .map_err(|e| pipeline_error(e, None))?;
                    watch.lap("translate");
                    if done.len() != texts.len() {
                        return Err(HandlerError::Retryable(format!(
                            "{} returned {} translations for {} cues",
                            p.engines.translator.name(),
                            done.len(),
                            texts.len()
                        )));
                    }
                    done
                }
                None => texts,
            };
            let window = input.window;
            let mut clips = Vec::new();
            let mut records = Vec::new();
            for (i, (cue, text)) in input.cues.iter().zip(spoken).enumerate() {
                let slot = cue.slot_end_ms.saturating_sub(cue.start_ms);
                let mut fit = None;
                if slot > 0 && !text.trim().is_empty() {
                    let speech = dir.path().join(format!("speech-{i}.wav"));
                    p.engines
                        .text_to_speech
                        .synthesize(&text, language, &speech)
                        .await
                        .map_err(|e| pipeline_error(e, None))?;
                    watch.lap("synthesize");
                    let fitted = dir.path().join(format!("fitted-{i}.wav"));
                    let done = media::fit_to_duration(&speech, slot, &p.fit_options(), &fitted)
                        .await
                        .map_err(|e| pipeline_error(e, None))?;
                    watch.lap("fit");
                    fit = Some(FitRecord::from(done));
                    clips.push(Clip {
                        offset_ms: cue.start_ms.saturating_sub(window.start_ms),
                        path: fitted,
                    });
                }
                records.push(SpokenCue {
                    start_ms: cue.start_ms,
                    end_ms: cue.end_ms,
                    text: cue.text.clone(),
                    spoken: text,
                    fit,
                });
            }
            let audio = dir.path().join("speech.wav");
            media::place_clips(&clips, window.duration_ms(), &audio)
                .await
                .map_err(|e| pipeline_error(e, None))?;
            let key = storage::segment_key(
                segment.job_id,
                segment.index,
                segment.run,
                segment.attempt,
                "speech.wav",
            );
            store(&p.storage, &key, &audio).await?;
            watch.lap("upload");
            let result = WindowResult {
                worker: ctx.worker_id.clone(),
                attempt: segment.attempt,
                window,
                cues: records,
                audio_key: key,
                elapsed_ms: watch.laps(),
            };
            Ok(serde_json::to_value(result).expect("serializable"))
        })
        .await
    }

    async fn completed(&self, job: &JobInfo) {
        super::common::context::delete_intermediates(&self.0, job).await
    }

    async fn finalize(&self, ctx: &StepContext) -> Result<Option<NewMedia>, HandlerError> {
        let p = &self.0;
        let options = options::parse(JOB_TYPE, &ctx.job.options).map_err(HandlerError::Fatal)?;
        let format = AudioFormat::from_name(options.format_or("m4a"))
            .map_err(|e| HandlerError::Fatal(format!("option `format`: {e}")))?;
        let plan: AudioPlan = serde_json::from_value(ctx.job.plan.clone())
            .map_err(|e| HandlerError::Fatal(format!("the job's plan is unreadable: {e}")))?;
        let (segments, results): (_, Vec<WindowResult>) =
            super::common::context::segment_results(ctx).await?;
        let input = InputMedia::load(&ctx.pool, &ctx.job).await?;
        let language = options.target.unwrap_or(options.text_source());
        until_cancelled(&ctx.cancel, async {
            let dir = scratch(ctx.job.id, "finalize", ctx.attempt)?;
            let keys: Vec<&str> = results.iter().map(|r| r.audio_key.as_str()).collect();
            let (track, ms) = dub::join_segments(p, &keys, dir.path()).await?;
            if ms.abs_diff(plan.duration_ms) > 1 {
                return Err(HandlerError::Fatal(format!(
                    "the spoken windows last {ms} ms together, the subtitles {} ms",
                    plan.duration_ms
                )));
            }
            let mut output = Output::new(&ctx.job, &input);
            let name = format!("{}.{}", input.stem(), language.code());
            if options.target.is_some() {
                let spoken: Vec<Cue> = results
                    .iter()
                    .flat_map(|r| &r.cues)
                    .filter(|c| !c.spoken.trim().is_empty() && c.end_ms > c.start_ms)
                    .map(|c| Cue::new(c.start_ms, c.end_ms, c.spoken.clone()))
                    .collect();
                upload_subtitles(&p.storage, &mut output, dir.path(), &spoken, &name).await?;
            }
            let file = format!("{name}.{}", format.extension());
            let encoded = dir.path().join(&file);
            media::encode_audio(&track, format, &encoded)
                .await
                .map_err(|e| pipeline_error(e, None))?;
            let info = media::probe(&encoded)
                .await
                .map_err(|e| pipeline_error(e, None))?;
            output
                .upload(&p.storage, "audio", &file, &encoded, format.mime_type())
                .await?;
            let metadata = json!({
                "source_language": options.text_source(),
                "language": language,
                "segments": results.len(),
                "cues": plan.cues,
                "engines": p.engine_names(),
                "streams": streams_of(&info),
            });
            upload_transcript(&p.storage, &mut output, &segments, dir.path(), &name).await?;
            Ok(Some(output.media(
                "audio",
                MediaType::Audio,
                Some(info.duration_ms as f64 / 1000.0),
                metadata,
            )))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cover_the_subtitles_and_slots_reach_the_next_cue() {
        let cues = [
            Cue::new(0, 1_000, "a"),
            Cue::new(2_000, 3_000, "<i>b</i>"),
            // Overlaps the cue before: its slot is its own time, cut by the next cue.
            Cue::new(2_500, 4_000, "c"),
            Cue::new(5_000, 6_000, "d"),
        ];
        let w = windows(vec![0..1, 1..3, 3..4], &cues, 6_000);
        let spans: Vec<Window> = w.iter().map(|(w, _)| *w).collect();
        assert_eq!(
            spans,
            [
                Window::new(0, 2_000),
                Window::new(2_000, 5_000),
                Window::new(5_000, 6_000)
            ]
        );
        let slots: Vec<(u64, u64, &str)> = w
            .iter()
            .flat_map(|(_, s)| s)
            .map(|c| (c.start_ms, c.slot_end_ms, c.text.as_str()))
            .collect();
        assert_eq!(
            slots,
            [
                (0, 2_000, "a"),
                (2_000, 3_000, "b"),
                (2_500, 5_000, "c"),
                (5_000, 6_000, "d")
            ]
        );
        // A batch that starts at 0, like the first, joins it: no empty window.
        let at_zero = [Cue::new(0, 500, "x"), Cue::new(0, 800, "y")];
        let w = windows(vec![0..1, 1..2], &at_zero, 800);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].0, Window::new(0, 800));
        assert_eq!(w[0].1.len(), 2);
    }
}
