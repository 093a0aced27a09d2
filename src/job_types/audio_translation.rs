//! `audio_translation`: dubs an audio file (or the audio of a video) into another
//! language.
//!
//! Plan and segments are those of `video_translation` ([`super::common::speech::plan`],
//! [`super::common::dub::run_segment`]); finalize joins the dubbed windows and encodes them.
//!
//! Output: the dubbed audio (`format` `m4a`, the default, `mp3` or `wav`), exactly as long
//! as the input, is the job's media row (`media_type` `audio`); the translated subtitles
//! are written beside it as SRT and WebVTT, listed in the row's `metadata.files`.

use super::common::context::{InputMedia, Pipeline, pipeline_error, scratch, until_cancelled};
use super::common::dub;
use super::common::output::{Output, streams_of, upload_subtitles, upload_transcript};
use super::common::speech::{self, SpeechResult};
use crate::job::JobInfo;
use crate::job::options;
use crate::job::{JobType, MediaType, NewMedia};
use crate::pipeline::media::{self, AudioFormat};
use crate::worker::{Handler, HandlerError, Plan, SegmentContext, StepContext};
use async_trait::async_trait;
use serde_json::{Value, json};
use std::sync::Arc;

pub struct AudioTranslation(pub Arc<Pipeline>);

const JOB_TYPE: JobType = JobType::AudioTranslation;

#[async_trait]
impl Handler for AudioTranslation {
    fn job_type(&self) -> &'static str {
        JOB_TYPE.name()
    }

    async fn plan(&self, ctx: &StepContext) -> Result<Plan, HandlerError> {
        let options = options::parse(JOB_TYPE, &ctx.job.options).map_err(HandlerError::Fatal)?;
        speech::plan(&self.0, ctx, &options, false).await
    }

    async fn run_segment(&self, ctx: &SegmentContext) -> Result<Value, HandlerError> {
        dub::run_segment(&self.0, ctx).await
    }

    async fn completed(&self, job: &JobInfo) {
        super::common::context::delete_intermediates(&self.0, job).await
    }

    async fn finalize(&self, ctx: &StepContext) -> Result<Option<NewMedia>, HandlerError> {
        let p = &self.0;
        let options = options::parse(JOB_TYPE, &ctx.job.options).map_err(HandlerError::Fatal)?;

        let format = AudioFormat::from_name(options.format_or("m4a"))
            .map_err(|e| HandlerError::Fatal(format!("option `format`: {e}")))?;
        let plan = speech::plan_data(ctx)?;
        let (source, target) = (plan.source(&options)?, options.target());
        let (segments, results): (_, Vec<SpeechResult>) =
            super::common::context::segment_results(ctx).await?;
        let input = InputMedia::load(&ctx.pool, &ctx.job).await?;
        until_cancelled(&ctx.cancel, async {
            let dir = scratch(ctx.job.id, "finalize", ctx.attempt)?;
            let track = dub::dubbed_track(p, &results, plan.duration_ms, dir.path()).await?;
            let cues = speech::cues(&results, true);
            let mut output = Output::new(&ctx.job, &input);
            let name = format!("{}.{}", input.stem(), target.code());
            if !cues.is_empty() {
                upload_subtitles(&p.storage, &mut output, dir.path(), &cues, &name).await?;
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
                "source_language": source,
                "detected_probability": plan.detected_probability,
                "target_language": target,
                "segments": results.len(),
                "cues": cues.len(),
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
