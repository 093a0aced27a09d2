//! `[engines]`: which implementation of each pipeline engine runs, and how to reach the
//! HTTP ones.

use super::checks::{Invalid, is_http};
use serde::{Deserialize, Serialize};

/// The pipeline's engines: which implementation of each, and how to reach HTTP ones.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EnginesConfig {
    /// `whisper` (offline, faster-whisper), `pocketsphinx` (offline, English only) or
    /// `openai` (an OpenAI-compatible transcription server).
    pub speech_to_text: String,
    pub speech_to_text_url: String,
    pub speech_to_text_model: String,
    pub speech_to_text_api_key: String,
    /// The Python interpreter that has faster-whisper.
    pub whisper_python: String,
    /// The model directory for English speech; empty: the multilingual model.
    pub whisper_english_model: String,
    /// The model directory for other languages and language detection.
    pub whisper_multilingual_model: String,
    /// CTranslate2 threads of each whisper helper process.
    pub whisper_threads: u32,
    /// Whisper helper processes per worker: transcriptions at once.
    pub whisper_helpers: u32,
    /// Beam search width (1 is greedy decoding).
    pub whisper_beam_size: u32,
    /// `apertium` or `libretranslate`.
    pub translator: String,
    pub translator_url: String,
    pub translator_api_key: String,
    /// `espeak-ng` or `openai` (an OpenAI-compatible speech server).
    pub text_to_speech: String,
    pub text_to_speech_url: String,
    pub text_to_speech_model: String,
    pub text_to_speech_voice: String,
    pub text_to_speech_api_key: String,
    /// espeak-ng's speaking rate.
    pub espeak_words_per_minute: u32,
    /// Limit on one request to an HTTP engine, connection included.
    pub http_timeout_seconds: u64,
}

impl Default for EnginesConfig {
    fn default() -> Self {
        Self {
            speech_to_text: "whisper".into(),
            speech_to_text_url: String::new(),
            speech_to_text_model: "whisper-1".into(),
            speech_to_text_api_key: String::new(),
            whisper_python: ".venv/bin/python".into(),
            whisper_english_model: ".venv/models/whisper-tiny.en".into(),
            whisper_multilingual_model: ".venv/models/whisper-base".into(),
            whisper_threads: 1,
            whisper_helpers: 1,
            whisper_beam_size: 5,
            translator: "apertium".into(),
            translator_url: String::new(),
            translator_api_key: String::new(),
            text_to_speech: "espeak-ng".into(),
            text_to_speech_url: String::new(),
            text_to_speech_model: "tts-1".into(),
            text_to_speech_voice: "alloy".into(),
            text_to_speech_api_key: String::new(),
            espeak_words_per_minute: 160,
            http_timeout_seconds: 120,
        }
    }
}

impl EnginesConfig {
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        // Each engine: its setting, the choices, the one that is HTTP, and its URL setting.
        let engines: [(_, _, &[&str], _, _, _); 3] = [
            (
                "engines.speech_to_text",
                &self.speech_to_text,
                &["whisper", "pocketsphinx", "openai"],
                "openai",
                "engines.speech_to_text_url",
                &self.speech_to_text_url,
            ),
            (
                "engines.translator",
                &self.translator,
                &["apertium", "libretranslate"],
                "libretranslate",
                "engines.translator_url",
                &self.translator_url,
            ),
            (
                "engines.text_to_speech",
                &self.text_to_speech,
                &["espeak-ng", "openai"],
                "openai",
                "engines.text_to_speech_url",
                &self.text_to_speech_url,
            ),
        ];
        for (setting, value, choices, http, url_setting, url) in engines {
            if !choices.contains(&value.as_str()) {
                return Err((
                    setting,
                    format!("`{value}` is not one of {}", choices.join(", ")),
                ));
            }
            if value == http && !is_http(url) {
                return Err((
                    url_setting,
                    format!("`{url}` is not an http(s) URL, and {setting} = \"{value}\" needs one"),
                ));
            }
        }
        if !(80..=450).contains(&self.espeak_words_per_minute) {
            return Err((
                "engines.espeak_words_per_minute",
                "must be between 80 and 450".into(),
            ));
        }
        if self.speech_to_text == "whisper" {
            for (setting, value) in [
                ("engines.whisper_python", &self.whisper_python),
                (
                    "engines.whisper_multilingual_model",
                    &self.whisper_multilingual_model,
                ),
            ] {
                if value.trim().is_empty() {
                    return Err((setting, "must name a path".into()));
                }
            }
        }
        for (setting, value, max) in [
            ("engines.whisper_threads", self.whisper_threads, 64),
            ("engines.whisper_helpers", self.whisper_helpers, 64),
            ("engines.whisper_beam_size", self.whisper_beam_size, 16),
        ] {
            if !(1..=max).contains(&value) {
                return Err((setting, format!("must be between 1 and {max}")));
            }
        }
        if self.http_timeout_seconds == 0 {
            return Err((
                "engines.http_timeout_seconds",
                "must be greater than 0".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::loader::testing::{err, loader, write};

    #[test]
    fn engine_choices_and_their_urls_are_checked() {
        let empty = write("");
        let e = err(
            loader(&[("OCTAVIA_ENGINES_TRANSLATOR", "google")]).file(Some(empty.path().into()))
        );
        assert!(
            e.contains("engines.translator") && e.contains("google"),
            "{e}"
        );
        let e =
            err(loader(&[("OCTAVIA_ENGINES_SPEECH_TO_TEXT", "openai")])
                .file(Some(empty.path().into())));
        assert!(e.contains("engines.speech_to_text_url"), "{e}");
        let c = loader(&[
            ("OCTAVIA_ENGINES_TEXT_TO_SPEECH", "openai"),
            ("OCTAVIA_ENGINES_TEXT_TO_SPEECH_URL", "http://tts:8000"),
        ])
        .file(Some(empty.path().into()))
        .load()
        .unwrap();
        assert_eq!(c.engines.text_to_speech, "openai");
        let e = err(loader(&[("OCTAVIA_ENGINES_ESPEAK_WORDS_PER_MINUTE", "20")])
            .file(Some(empty.path().into())));
        assert!(e.contains("engines.espeak_words_per_minute"), "{e}");
        let e = err(
            loader(&[("OCTAVIA_ENGINES_WHISPER_HELPERS", "0")]).file(Some(empty.path().into()))
        );
        assert!(e.contains("engines.whisper_helpers"), "{e}");
        let e =
            err(loader(&[("OCTAVIA_ENGINES_WHISPER_PYTHON", " ")]).file(Some(empty.path().into())));
        assert!(e.contains("engines.whisper_python"), "{e}");
        let c = loader(&[("OCTAVIA_ENGINES_SPEECH_TO_TEXT", "pocketsphinx")])
            .file(Some(empty.path().into()))
            .load()
            .unwrap();
        assert_eq!(c.engines.speech_to_text, "pocketsphinx");
    }
}
