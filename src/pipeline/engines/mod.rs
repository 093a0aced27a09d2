//! The pipeline's engines: speech-to-text, translation and text-to-speech, each a trait
//! with offline implementations (Debian programs; Whisper in a Python helper) and one
//! over an HTTP service.
//! `[engines]` in the configuration picks one of each; [`Engines::from_config`] builds
//! them and [`Engines::check`] tells a worker at start-up what is not installed.

mod apertium;
mod espeak;
mod http;
mod phrases;
mod pocketsphinx;
mod traits;
pub mod whisper;

pub use apertium::Apertium;
pub use espeak::EspeakNg;
pub(crate) use espeak::{TEST_MEDIA_WORDS_PER_MINUTE, espeak_to_wav};
pub use http::{LibreTranslate, OpenAiSpeechToText, OpenAiTextToSpeech};
pub use phrases::{Word, group_words};
pub use pocketsphinx::{Pocketsphinx, parse_pocketsphinx};
pub use traits::{Detected, Phrase, SpeechToText, TextToSpeech, Translator};
pub use whisper::{Whisper, WhisperSettings};

use super::process::{self, APERTIUM, ESPEAK, FFMPEG, FFPROBE, POCKETSPHINX, Tool};
use super::{PipelineError, Result};
use crate::config::{Config, EnginesConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

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
        let path = PathBuf::from;
        let speech_to_text: Arc<dyn SpeechToText> = match e.speech_to_text.as_str() {
            "whisper" => Arc::new(Whisper::new(WhisperSettings {
                python: path(&e.whisper_python),
                english_model: Some(&e.whisper_english_model)
                    .filter(|m| !m.trim().is_empty())
                    .map(path),
                multilingual_model: path(&e.whisper_multilingual_model),
                threads: e.whisper_threads,
                helpers: e.whisper_helpers as usize,
                beam_size: e.whisper_beam_size,
            })),
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
    /// missing and the Debian packages that provide it, or names the whisper engine's
    /// missing parts and the command that installs them; a whisper engine is left with
    /// a helper running and its English model loaded.
    pub async fn check(&self) -> Result<()> {
        self.check_programs().await?;
        self.speech_to_text.check().await
    }

    async fn check_programs(&self) -> Result<()> {
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
