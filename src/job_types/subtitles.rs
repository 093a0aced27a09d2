//! `subtitles`: writes subtitles of what is said in a video or audio file, in its own
//! language.
//!
//! - plan: as for dubbing ([`super::common::speech::plan`]): probe, cut at silences, store each
//!   window's speech;
//! - segment: hear the window; its result lists the phrases with their times;
//! - finalize: the phrases as cues, written as SRT and WebVTT.
//!
//! Output: both files are written; `format` (`srt`, the default, or `vtt`) chooses the one
//! that is the job's media row (`media_type` `subtitle`), and the row's `metadata.files`
//! lists both. A file in which no speech is recognized fails the job: there is nothing to
//! write.

use super::common::context::{InputMedia, Pipeline, Stopwatch, scratch, until_cancelled};
use super::common::output::{Output, upload_subtitles, upload_transcript};
use super::common::speech::{self, PhraseRecord, SpeechResult};
use crate::job::JobInfo;
use crate::job::options;
use crate::job::{JobType, MediaType, NewMedia};
use crate::pipeline::subtitles::SubtitleFormat;
use crate::worker::{Handler, HandlerError, Plan, SegmentContext, StepContext};
use async_trait::async_trait;
use serde_json::{Value, json};
use std::sync::Arc;

pub struct Subtitles(pub Arc<Pipeline>);

const JOB_TYPE: JobType = JobType::Subtitles;

#[async_trait]
impl Handler for Subtitles {
    fn job_type(&self) -> &'static str {
        JOB_TYPE.name()
    }

    async fn plan(&self, ctx: &StepContext) -> Result<Plan, HandlerError> {
        let options = options::parse(JOB_TYPE, &ctx.job.options).map_err(HandlerError::Fatal)?;
        speech::plan(&self.0, ctx, &options, false).await
    }

    async fn run_segment(&self, ctx: &SegmentContext) -> Result<Value, HandlerError> {
        let segment = &ctx.segment;
        let input = speech::segment_input(ctx)?;
        until_cancelled(&ctx.cancel, async {
            let name = format!("segment-{}", segment.index);
            let dir = scratch(segment.job_id, &name, segment.attempt)?;
            let mut watch = Stopwatch::start();
            let phrases = speech::hear(&self.0, &input, dir.path(), &mut watch).await?;
            let result = SpeechResult {
                worker: ctx.worker_id.clone(),
                attempt: segment.attempt,
                window: input.window,
                phrases: phrases
                    .into_iter()
                    .map(|ph| PhraseRecord {
                        start_ms: input.window.start_ms + ph.start_ms,
                        end_ms: input.window.start_ms + ph.end_ms,
                        text: ph.text,
                        translation: None,
                        fit: None,
                    })
                    .collect(),
                audio_key: None,
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
        let plan = speech::plan_data(ctx)?;
        let source = plan.source(&options)?;
        let (segments, results): (_, Vec<SpeechResult>) =
            super::common::context::segment_results(ctx).await?;
        let input = InputMedia::load(&ctx.pool, &ctx.job).await?;
        let cues = speech::cues(&results, false);
        if cues.is_empty() {
            return Err(HandlerError::Fatal(format!(
                "{}: no speech was recognized in it, so there are no subtitles to write",
                input.describe()
            )));
        }
        until_cancelled(&ctx.cancel, async {
            let dir = scratch(ctx.job.id, "finalize", ctx.attempt)?;
            let mut output = Output::new(&ctx.job, &input);
            let name = format!("{}.{}", input.stem(), source.code());
            upload_subtitles(&p.storage, &mut output, dir.path(), &cues, &name).await?;
            let main = SubtitleFormat::from_extension(options.format_or("srt"))
                .unwrap_or(SubtitleFormat::Srt);
            let metadata = json!({
                "source_language": source,
                "detected_probability": plan.detected_probability,
                "segments": results.len(),
                "cues": cues.len(),
                "engines": p.engine_names(),
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
