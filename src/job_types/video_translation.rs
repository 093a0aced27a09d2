//! `video_translation`: dubs a video into another language.
//!
//! - plan: probe (a video with an audio track), cut at silences, store each window's
//!   speech ([`super::common::speech::plan`]);
//! - segment: hear, translate, speak and fit each phrase ([`super::common::dub::run_segment`]);
//! - finalize: join the dubbed windows, write the translated subtitles, and mux: the
//!   original video stream copied (not re-encoded), the dub as the first and default
//!   audio track, the original audio as the second, the subtitles embedded. The output
//!   lasts as long as the input.
//!
//! Output: the video (`format` `mp4`, the default, or `mkv`) is the job's media row
//! (`media_type` `video`); the subtitles are also written as separate SRT and WebVTT
//! files, listed with the video in the row's `metadata.files`.

use super::common::context::{InputMedia, Pipeline, pipeline_error, scratch, until_cancelled};
use super::common::dub;
use super::common::output::{Output, streams_of, upload_subtitles, upload_transcript};
use super::common::speech::{self, SpeechResult};
use crate::job::JobInfo;
use crate::job::options;
use crate::job::{JobType, MediaType, NewMedia};
use crate::pipeline::media::{self, MuxRequest};
use crate::worker::{Handler, HandlerError, Plan, SegmentContext, StepContext};
use async_trait::async_trait;
use serde_json::{Value, json};
use std::sync::Arc;

pub struct VideoTranslation(pub Arc<Pipeline>);

const JOB_TYPE: JobType = JobType::VideoTranslation;

#[async_trait]
impl Handler for VideoTranslation {
    fn job_type(&self) -> &'static str {
        JOB_TYPE.name()
    }

    async fn plan(&self, ctx: &StepContext) -> Result<Plan, HandlerError> {
        let options = options::parse(JOB_TYPE, &ctx.job.options).map_err(HandlerError::Fatal)?;
        speech::plan(&self.0, ctx, &options, true).await
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
            // A video without recognizable speech gets a silent dub and no subtitles.
            let subtitles = if cues.is_empty() {
                Vec::new()
            } else {
                upload_subtitles(&p.storage, &mut output, dir.path(), &cues, &name).await?
            };
            let video = input.download(&p.storage, dir.path()).await?;
            let format = options.format_or("mp4");
            let file = format!("{name}.{format}");
            let muxed = dir.path().join(&file);
            let srt = subtitles.first().map(|(_, path)| path.as_path());
            media::mux_video(&MuxRequest {
                video: &video,
                dubbed_audio: &track,
                dubbed_language: target,
                original_language: Some(source),
                subtitles: srt.map(|path| (path, target)),
                out: &muxed,
            })
            .await
            .map_err(|e| pipeline_error(e, Some(&input)))?;
            let info = media::probe(&muxed)
                .await
                .map_err(|e| pipeline_error(e, None))?;
            let mimetype = match format {
                "mkv" => "video/x-matroska",
                _ => "video/mp4",
            };
            output
                .upload(&p.storage, "video", &file, &muxed, mimetype)
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
                "video",
                MediaType::Video,
                Some(info.duration_ms as f64 / 1000.0),
                metadata,
            )))
        })
        .await
    }
}
