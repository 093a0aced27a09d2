//! The translation pipeline's building blocks: subtitle files, media operations over
//! ffmpeg, and the speech-to-text, translation and text-to-speech engines. The job
//! handlers (plan / segment / finalize) are assembled from these, for example a dub:
//!
//! - plan: [`media::probe`], then [`media::speech_windows`] for segment windows cut in
//!   silences;
//! - segment: [`media::extract_speech`], [`engines::SpeechToText::transcribe`],
//!   [`engines::Translator::translate`], [`engines::TextToSpeech::synthesize`],
//!   [`media::fit_to_duration`] to the window's length;
//! - finalize: [`media::concat_wav`] of the fitted segments, [`subtitles::write`], and
//!   [`media::mux_video`] (or [`media::encode_audio`]).
//!
//! Every failure is a [`PipelineError`], whose [`PipelineError::is_retryable`] says whether
//! the queue should try again. External programs are killed when their future is dropped,
//! so a cancelled or timed-out attempt leaves nothing running.

pub mod engines;
pub mod error;
pub mod lang;
pub mod media;
pub mod process;
pub mod subtitles;

pub use engines::Engines;
pub use error::{PipelineError, Result, SubtitleError};
pub use lang::{Language, SourceLanguage};
