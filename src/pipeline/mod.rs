//! The translation pipeline's building blocks: subtitle files, media operations over
//! ffmpeg, and the speech-to-text, translation and text-to-speech engines. The job
//! handlers (plan / segment / finalize) are assembled from these.

pub mod engines;
pub mod error;
pub mod lang;
pub mod media;
pub mod process;
pub mod subtitles;

pub use engines::Engines;
pub use error::{PipelineError, Result, SubtitleError};
pub use lang::Language;
