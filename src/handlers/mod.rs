//! The job types Octavia runs, and the registry of all of them.
//!
//! Besides `noop` (a diagnostic), every job type is a translation pipeline over the
//! engines of [`crate::pipeline`], as plan / segment / finalize:
//!
//! | job type | input | segments | output media row (`media_type`) |
//! |---|---|---|---|
//! | [`video_translation`] | video with speech | windows cut at silences: hear, translate, speak, fit | the dubbed video (`video`) + SRT/WebVTT |
//! | [`audio_translation`] | audio (or video) with speech | as above | the dubbed audio (`audio`) + SRT/WebVTT |
//! | [`subtitles`] | video or audio | windows: hear | SRT or WebVTT (`subtitle`), both written |
//! | [`subtitle_translation`] | SRT or WebVTT | batches of cues: translate | SRT or WebVTT (`subtitle`), both written |
//! | [`subtitle_to_audio`] | SRT or WebVTT | batches of cues: (translate,) speak, fit | the speech (`audio`) |
//!
//! Options are in [`options`]. Where the files are:
//!
//! - a speech segment's input: `jobs/{job}/plan/{run}-{plan attempt}/segment-{index}.wav`;
//! - a segment's audio: `jobs/{job}/segments/{index}/{run}-{attempt}/…`, its key in the result;
//! - the outputs: `media/{user}/{output media id}/{input name}.{language}.{ext}`. The job's
//!   output media row is one of them; its `metadata.files` maps every file the job wrote
//!   (`video`, `audio`, `srt`, `vtt`) to its key, and `metadata.main` names the row's own.

pub mod audio_translation;
pub mod common;
pub mod cues;
pub mod dub;
pub mod noop;
pub mod options;
pub mod output;
pub mod speech;
pub mod subtitle_to_audio;
pub mod subtitle_translation;
pub mod subtitles;
pub mod video_translation;

use crate::Config;
use crate::error::Result;
use crate::worker::Registry;
pub use common::Pipeline;

/// Every job type of the product, as the API and the CLI accept them.
pub const JOB_TYPES: &[&str] = &[
    "noop",
    "video_translation",
    "audio_translation",
    "subtitles",
    "subtitle_translation",
    "subtitle_to_audio",
];

/// The job types that run the pipeline's engines: a worker that may claim one of them
/// checks at start-up that the engines' programs are installed.
pub const PIPELINE_JOB_TYPES: &[&str] = &[
    "video_translation",
    "audio_translation",
    "subtitles",
    "subtitle_translation",
    "subtitle_to_audio",
];

/// Every job type a worker can run, the pipeline's with the engines and the object store
/// `config` names. Nothing is run or checked here ([`crate::pipeline::Engines::check`]
/// does that).
pub fn registry(config: &Config) -> Result<Registry> {
    let pipeline = Pipeline::from_config(config)?;
    let mut registry = Registry::new();
    registry.register(noop::Noop)?;
    registry.register(video_translation::VideoTranslation(pipeline.clone()))?;
    registry.register(audio_translation::AudioTranslation(pipeline.clone()))?;
    registry.register(subtitles::Subtitles(pipeline.clone()))?;
    registry.register(subtitle_translation::SubtitleTranslation(pipeline.clone()))?;
    registry.register(subtitle_to_audio::SubtitleToAudio(pipeline))?;
    Ok(registry)
}

/// Checks a job's options before it is created, as its handler will: the error names the
/// option at fault. Unknown job types are the caller's to refuse.
pub fn validate_options(job_type: &str, options: &serde_json::Value) -> Result<(), String> {
    match job_type {
        "noop" => noop::NoopOptions::parse(options).map(|_| ()),
        t if PIPELINE_JOB_TYPES.contains(&t) => options::parse(t, options).map(|_| ()),
        _ => Ok(()),
    }
}
