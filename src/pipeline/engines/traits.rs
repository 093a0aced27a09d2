//! What each kind of engine does: the traits every implementation of `[engines]` has,
//! and the phrases speech-to-text gives.

use crate::pipeline::subtitles::Cue;
use crate::pipeline::{Language, PipelineError, Result};
use async_trait::async_trait;
use std::path::Path;

/// A stretch of recognized speech.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Phrase {
    /// From the start of the transcribed audio.
    pub start_ms: u64,
    pub end_ms: u64,
    pub text: String,
}

impl Phrase {
    /// The phrase as a subtitle cue, moved by `offset_ms` (its segment's start in the file).
    pub fn to_cue(&self, offset_ms: u64) -> Cue {
        Cue::new(
            offset_ms + self.start_ms,
            offset_ms + self.end_ms,
            self.text.clone(),
        )
    }
}

/// The language a speech-to-text engine detected in a file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detected {
    pub language: Language,
    /// The engine's confidence, 0 to 1 (1 from engines that do not say).
    pub probability: f64,
}

/// Turns speech into timed text.
#[async_trait]
pub trait SpeechToText: Send + Sync {
    /// The engine's name, for logs and errors.
    fn name(&self) -> &'static str;

    /// Transcribes a 16 kHz mono 16-bit WAV (as [`crate::pipeline::media::extract_speech`]
    /// writes) spoken in `language`, as phrases in order. Silence gives no phrases.
    async fn transcribe(&self, wav: &Path, language: Language) -> Result<Vec<Phrase>>;

    /// Checks, at a worker's start-up, what the engine needs beyond the programs
    /// [`super::Engines::check`] looks for (the whisper engine: its Python and models, and a
    /// helper started with a model loaded). Most engines need nothing more.
    async fn check(&self) -> Result<()> {
        Ok(())
    }

    /// The language spoken in a WAV of the same format, the most likely of
    /// [`Language::ALL`]. Engines that cannot tell answer
    /// [`PipelineError::UnsupportedLanguage`].
    async fn detect_language(&self, wav: &Path) -> Result<Detected> {
        let _ = wav;
        Err(PipelineError::UnsupportedLanguage(format!(
            "{} cannot detect the language spoken: give source_language, or set \
             engines.speech_to_text = \"whisper\"",
            self.name()
        )))
    }
}

/// Translates text.
#[async_trait]
pub trait Translator: Send + Sync {
    fn name(&self) -> &'static str;

    /// Translates each of `texts` from `from` to `to`: one output per input, in order, in as
    /// few calls to the engine as it allows. Line breaks inside a text are not kept.
    async fn translate(
        &self,
        texts: &[String],
        from: Language,
        to: Language,
    ) -> Result<Vec<String>>;
}

/// Turns text into speech.
#[async_trait]
pub trait TextToSpeech: Send + Sync {
    fn name(&self) -> &'static str;

    /// Speaks `text` in `language` into `out`, a WAV in the working format
    /// ([`crate::pipeline::media::WORK_SPEC`]). Empty text gives an empty WAV.
    async fn synthesize(&self, text: &str, language: Language, out: &Path) -> Result<()>;
}
