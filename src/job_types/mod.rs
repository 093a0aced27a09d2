//! The job types Octavia runs, one file each, and the registry of all of them: the
//! catalogue [`crate::job::JobType`] says what each type is, these files how it runs (a
//! [`crate::worker::Handler`]: plan, segment, finalize). What several of them share is in
//! [`common`].
//!
//! Besides `noop` (a diagnostic), every job type is a translation pipeline over the
//! engines of [`crate::pipeline`]:
//!
//! | job type | input | segments | output media row (`media_type`) |
//! |---|---|---|---|
//! | [`video_translation`] | video with speech | windows cut at silences: hear, translate, speak, fit | the dubbed video (`video`) + SRT/WebVTT |
//! | [`audio_translation`] | audio (or video) with speech | as above | the dubbed audio (`audio`) + SRT/WebVTT |
//! | [`subtitles`] | video or audio | windows: hear | SRT or WebVTT (`subtitle`), both written |
//! | [`subtitle_translation`] | SRT or WebVTT | batches of cues: translate | SRT or WebVTT (`subtitle`), both written |
//! | [`subtitle_to_audio`] | SRT or WebVTT | batches of cues: (translate,) speak, fit | the speech (`audio`) |
//!
//! Options are in [`crate::job::options`]. Where the files are:
//!
//! - a speech segment's input: `jobs/{job}/plan/{run}-{plan attempt}/segment-{index}.wav`;
//! - a segment's audio: `jobs/{job}/segments/{index}/{run}-{attempt}/…`, its key in the result;
//! - the outputs: `media/{user}/{output media id}/{input name}.{language}.{ext}`. The job's
//!   output media row is one of them; its `metadata.files` maps every file the job wrote
//!   (`video`, `audio`, `srt`, `vtt`) to its key, and `metadata.main` names the row's own.

pub mod audio_translation;
pub mod common;
pub mod noop;
pub mod subtitle_to_audio;
pub mod subtitle_translation;
pub mod subtitles;
pub mod video_translation;

use crate::Config;
use crate::error::Result;
use crate::job::JobType;
use crate::worker::{Handler, Registry};
pub use common::context::Pipeline;
use std::sync::Arc;

/// Every job type of the catalogue with its handler, the pipeline's with the engines and
/// the object store `config` names. Nothing is run or checked here
/// ([`crate::pipeline::Engines::check`] does that).
pub fn registry(config: &Config) -> Result<Registry> {
    registry_with(Pipeline::from_config(config)?)
}

/// Every job type of the catalogue with its handler, the pipeline's running on `pipeline`
/// (whose engines a worker checks, and so starts, before it claims).
pub fn registry_with(pipeline: Arc<Pipeline>) -> Result<Registry> {
    let mut registry = Registry::new();
    for job_type in JobType::ALL {
        let p = pipeline.clone();
        let handler: Arc<dyn Handler> = match job_type {
            JobType::Noop => Arc::new(noop::Noop),
            JobType::VideoTranslation => Arc::new(video_translation::VideoTranslation(p)),
            JobType::AudioTranslation => Arc::new(audio_translation::AudioTranslation(p)),
            JobType::Subtitles => Arc::new(subtitles::Subtitles(p)),
            JobType::SubtitleTranslation => Arc::new(subtitle_translation::SubtitleTranslation(p)),
            JobType::SubtitleToAudio => Arc::new(subtitle_to_audio::SubtitleToAudio(p)),
        };
        registry.register_shared(handler)?;
    }
    Ok(registry)
}
