//! The pipeline's engines: speech-to-text, translation and text-to-speech, each a trait
//! with an offline implementation over a Debian program and one over an HTTP service.
//! `[engines]` in the configuration picks one of each; [`Engines::from_config`] builds
//! them and [`Engines::check`] tells a worker at start-up what is not installed.

mod apertium;
mod espeak;
mod http;
mod pocketsphinx;

pub use apertium::Apertium;
pub use espeak::EspeakNg;
pub(crate) use espeak::{TEST_MEDIA_WORDS_PER_MINUTE, espeak_to_wav};
pub use http::{LibreTranslate, OpenAiSpeechToText, OpenAiTextToSpeech};
pub use pocketsphinx::{Pocketsphinx, Word, group_words, parse_pocketsphinx};

use super::process::{self, APERTIUM, ESPEAK, FFMPEG, FFPROBE, POCKETSPHINX, Tool};
use super::subtitles::Cue;
use super::{Language, PipelineError, Result};
use crate::config::{Config, EnginesConfig};
use async_trait::async_trait;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

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

/// Turns speech into timed text.
#[async_trait]
pub trait SpeechToText: Send + Sync {
    /// The engine's name, for logs and errors.
    fn name(&self) -> &'static str;

    /// Transcribes a 16 kHz mono 16-bit WAV (as [`crate::pipeline::media::extract_speech`]
    /// writes) spoken in `language`, as phrases in order. Silence gives no phrases.
    async fn transcribe(&self, wav: &Path, language: Language) -> Result<Vec<Phrase>>;
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

/// One engine of each kind, as configured.
#[derive(Clone)]
pub struct Engines {
    pub speech_to_text: Arc<dyn SpeechToText>,
    pub translator: Arc<dyn Translator>,
    pub text_to_speech: Arc<dyn TextToSpeech>,
    config: EnginesConfig,
}

impl std::fmt::Debug for Engines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engines")
            .field("speech_to_text", &self.speech_to_text.name())
            .field("translator", &self.translator.name())
            .field("text_to_speech", &self.text_to_speech.name())
            .finish()
    }
}

/// Where the en-us acoustic model of the `pocketsphinx-en-us` package is.
const POCKETSPHINX_MODEL: &str = "/usr/share/pocketsphinx/model/en-us/en-us";

impl Engines {
    /// Builds the engines `config.engines` names. The configuration has been validated,
    /// so the names are known ones.
    pub fn from_config(config: &Config) -> Result<Engines> {
        let e = &config.engines;
        let timeout = Duration::from_secs(e.http_timeout_seconds);
        let speech_to_text: Arc<dyn SpeechToText> = match e.speech_to_text.as_str() {
            "openai" => Arc::new(OpenAiSpeechToText::new(
                &e.speech_to_text_url,
                &e.speech_to_text_model,
                &e.speech_to_text_api_key,
                timeout,
            )?),
            _ => Arc::new(Pocketsphinx),
        };
        let translator: Arc<dyn Translator> = match e.translator.as_str() {
            "libretranslate" => Arc::new(LibreTranslate::new(
                &e.translator_url,
                &e.translator_api_key,
                timeout,
            )?),
            _ => Arc::new(Apertium),
        };
        let text_to_speech: Arc<dyn TextToSpeech> = match e.text_to_speech.as_str() {
            "openai" => Arc::new(OpenAiTextToSpeech::new(
                &e.text_to_speech_url,
                &e.text_to_speech_model,
                &e.text_to_speech_voice,
                &e.text_to_speech_api_key,
                timeout,
            )?),
            _ => Arc::new(EspeakNg::new(e.espeak_words_per_minute)),
        };
        Ok(Engines {
            speech_to_text,
            translator,
            text_to_speech,
            config: e.clone(),
        })
    }

    /// Checks that the programs and data the configured engines need are installed, so a
    /// worker refuses to start instead of failing every job. The error lists everything
    /// missing and the Debian packages that provide it.
    pub async fn check(&self) -> Result<()> {
        let mut tools: Vec<Tool> = vec![FFMPEG, FFPROBE];
        let mut files: Vec<(&str, &'static str)> = Vec::new();
        if self.config.speech_to_text == "pocketsphinx" {
            tools.push(POCKETSPHINX);
            files.push((POCKETSPHINX_MODEL, "pocketsphinx-en-us"));
        }
        if self.config.text_to_speech == "espeak-ng" {
            tools.push(ESPEAK);
        }
        let apertium = self.config.translator == "apertium";
        if apertium {
            tools.push(APERTIUM);
        }
        let mut missing: Vec<String> = Vec::new();
        let mut packages: Vec<&'static str> = Vec::new();
        let mut need = |what: String, package: &'static str| {
            missing.push(what);
            if !packages.contains(&package) {
                packages.push(package);
            }
        };
        for tool in &tools {
            if !process::installed(tool) {
                need(format!("the program `{}`", tool.program), tool.package);
            }
        }
        for (path, package) in files {
            if !Path::new(path).exists() {
                need(format!("the pocketsphinx model {path}"), package);
            }
        }
        if apertium && process::installed(&APERTIUM) {
            for pair in apertium::missing_pairs().await? {
                need(format!("the apertium pair `{pair}`"), "apertium-eng-spa");
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        Err(PipelineError::EnginesUnavailable {
            missing: missing.join(", "),
            packages: packages.join(" "),
        })
    }
}
