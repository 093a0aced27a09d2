//! `subtitle_translation`: translates an SRT or WebVTT file, keeping every cue's timing
//! exactly.
//!
//! - plan: read and parse the file ([`super::common::cues::read`]), cut the cues into batches;
//! - segment: translate a batch's cues in one call to the translator (markup such as
//!   `<i>` is dropped, and a cue's lines become one);
//! - finalize: the same cues, same timings, translated; a cue whose translation comes back
//!   empty keeps its original text rather than vanish.
//!
//! Output: SRT and WebVTT are both written; `format` (`srt` or `vtt`, by default the
//! input's) chooses the job's media row (`media_type` `subtitle`), and the row's
//! `metadata.files` lists both.

use super::common::context::{
    InputMedia, Pipeline, Stopwatch, pipeline_error, scratch, until_cancelled,
};
use super::common::cues;
use super::common::output::{Output, upload_subtitles, upload_transcript};
use crate::job::JobInfo;
use crate::job::options;
use crate::job::{JobType, MediaType, NewMedia, NewSegment};
use crate::pipeline::Language;
use crate::pipeline::subtitles::{Cue, SubtitleFormat};
use crate::worker::{Handler, HandlerError, Plan, SegmentContext, StepContext};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

pub struct SubtitleTranslation(pub Arc<Pipeline>);

const JOB_TYPE: JobType = JobType::SubtitleTranslation;

/// A segment's input: its batch of cues and the languages.
#[derive(Debug, Serialize, Deserialize)]
struct BatchInput {
    cues: Vec<Cue>,
    source_language: Language,
    target_language: Language,
}

/// A translated cue.
#[derive(Debug, Serialize, Deserialize)]
struct TranslatedCue {
    start_ms: u64,
    end_ms: u64,
    text: String,
    translation: String,
}

/// A segment's result.
#[derive(Debug, Serialize, Deserialize)]
struct BatchResult {
    worker: String,
    attempt: i32,
    cues: Vec<TranslatedCue>,
    elapsed_ms: BTreeMap<String, u64>,
}

/// The plan's data.
#[derive(Debug, Serialize, Deserialize)]
struct SubtitlePlan {
    /// `srt` or `vtt`: the input's format, the output's by default.
    input_format: String,
    cues: usize,
    duration_ms: u64,
}

#[async_trait]
impl Handler for SubtitleTranslation {
    fn job_type(&self) -> &'static str {
        JOB_TYPE.name()
    }

    async fn plan(&self, ctx: &StepContext) -> Result<Plan, HandlerError> {
        let options = options::parse(JOB_TYPE, &ctx.job.options).map_err(HandlerError::Fatal)?;
        let input = cues::read(&self.0, ctx).await?;
        let segments = cues::batches(&self.0, &input.cues)
            .into_iter()
            .map(|range| {
                let batch = &input.cues[range];
                let first = batch.first().expect("batches are not empty");
                let last = batch.last().expect("batches are not empty");
                let segment_input = BatchInput {
                    cues: batch.to_vec(),
                    source_language: options.text_source(),
                    target_language: options.target(),
                };
                Ok(NewSegment {
                    start_ms: Some(cues::ms(first.start_ms)?),
                    end_ms: Some(cues::ms(last.end_ms)?),
                    input: serde_json::to_value(segment_input).expect("serializable"),
                })
            })
            .collect::<Result<Vec<_>, HandlerError>>()?;
        let data = SubtitlePlan {
            input_format: input.format.extension().into(),
            cues: input.cues.len(),
            duration_ms: input.cues.iter().map(|c| c.end_ms).max().unwrap_or(0),
        };
        Ok(Plan {
            segments,
            data: serde_json::to_value(data).expect("serializable"),
        })
    }

    async fn run_segment(&self, ctx: &SegmentContext) -> Result<Value, HandlerError> {
        let input: BatchInput = serde_json::from_value(ctx.segment.input.clone())
            .map_err(|e| HandlerError::Fatal(format!("unreadable segment input: {e}")))?;
        let mut watch = Stopwatch::start();
        let texts: Vec<String> = input.cues.iter().map(Cue::plain_text).collect();
        let translator = &self.0.engines.translator;
        let translations = until_cancelled(&ctx.cancel, async {
            translator
                .translate(&texts, input.source_language, input.target_language)
                .await
                .map_err(|e| pipeline_error(e, None))
        })
        .await?;
        if translations.len() != texts.len() {
            return Err(HandlerError::Retryable(format!(
                "{} returned {} translations for {} cues",
                translator.name(),
                translations.len(),
                texts.len()
            )));
        }
        watch.lap("translate");
        let result = BatchResult {
            worker: ctx.worker_id.clone(),
            attempt: ctx.segment.attempt,
            cues: input
                .cues
                .iter()
                .zip(translations)
                .map(|(cue, translation)| TranslatedCue {
                    start_ms: cue.start_ms,
                    end_ms: cue.end_ms,
                    text: cue.text.clone(),
                    translation,
                })
                .collect(),
            elapsed_ms: watch.laps(),
        };
        Ok(serde_json::to_value(result).expect("serializable"))
    }

    async fn completed(&self, job: &JobInfo) {
        super::common::context::delete_intermediates(&self.0, job).await
    }

    async fn finalize(&self, ctx: &StepContext) -> Result<Option<NewMedia>, HandlerError> {
        let p = &self.0;
        let options = options::parse(JOB_TYPE, &ctx.job.options).map_err(HandlerError::Fatal)?;
        let plan: SubtitlePlan = serde_json::from_value(ctx.job.plan.clone())
            .map_err(|e| HandlerError::Fatal(format!("the job's plan is unreadable: {e}")))?;
        let (segments, results): (_, Vec<BatchResult>) =
            super::common::context::segment_results(ctx).await?;
        let input = InputMedia::load(&ctx.pool, &ctx.job).await?;
        let translated: Vec<Cue> = results
            .iter()
            .flat_map(|r| &r.cues)
            .map(|c| {
                let text = match c.translation.trim() {
                    "" => c.text.as_str(),
                    translation => translation,
                };
                Cue::new(c.start_ms, c.end_ms, text)
            })
            .collect();
        until_cancelled(&ctx.cancel, async {
            let dir = scratch(ctx.job.id, "finalize", ctx.attempt)?;
            let mut output = Output::new(&ctx.job, &input);
            let name = format!("{}.{}", input.stem(), options.target().code());
            upload_subtitles(&p.storage, &mut output, dir.path(), &translated, &name).await?;
            let main = SubtitleFormat::from_extension(options.format_or(&plan.input_format))
                .unwrap_or(SubtitleFormat::Srt);
            let metadata = json!({
                "source_language": options.text_source(),
                "target_language": options.target(),
                "input_format": plan.input_format,
                "segments": results.len(),
                "cues": translated.len(),
                "engines": { "translator": p.engines.translator.name() },
            });
            upload_transcript(&p.storage, &mut output, &segments, dir.path(), &name).await?;
            Ok(Some(output.media(
                main.extension(),
                MediaType::Subtitle,
                Some(plan.duration_ms as f64 / 1000.0),
                metadata,
            )))
        })
        .await
    }
}
