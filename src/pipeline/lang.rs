//! Languages the pipeline knows, and each engine's name for them.

use super::{PipelineError, Result};
use std::fmt;
use std::str::FromStr;

/// A language of speech or text. Serialized as its ISO 639-1 code; read from any
/// spelling [`FromStr`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(into = "&'static str", try_from = "String")]
pub enum Language {
    English,
    Spanish,
}

impl Language {
    /// Every language, for listing what is supported in error messages.
    pub const ALL: [Language; 2] = [Language::English, Language::Spanish];

    /// ISO 639-1: `en`, `es` (LibreTranslate, OpenAI-compatible services, job rows).
    pub fn code(self) -> &'static str {
        match self {
            Language::English => "en",
            Language::Spanish => "es",
        }
    }

    /// ISO 639-3: `eng`, `spa` (apertium's pair names; also mp4 track language tags).
    pub fn iso639_3(self) -> &'static str {
        match self {
            Language::English => "eng",
            Language::Spanish => "spa",
        }
    }

    /// The espeak-ng voice.
    pub fn espeak_voice(self) -> &'static str {
        match self {
            Language::English => "en-us",
            Language::Spanish => "es",
        }
    }

    /// The language's name in English, for track titles and messages.
    pub fn name(self) -> &'static str {
        match self {
            Language::English => "English",
            Language::Spanish => "Spanish",
        }
    }
}

impl FromStr for Language {
    type Err = PipelineError;

    /// Accepts `en`/`eng`/`english` and `es`/`spa`/`spanish`, any case, and a region
    /// suffix (`en-US`, `es_MX`), which the engines ignore.
    fn from_str(s: &str) -> Result<Self> {
        let base = s
            .trim()
            .split(['-', '_'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        match base.as_str() {
            "en" | "eng" | "english" => Ok(Language::English),
            "es" | "spa" | "spanish" => Ok(Language::Spanish),
            _ => Err(PipelineError::UnsupportedLanguage(format!(
                "`{s}` (supported: {})",
                Language::ALL.map(Language::code).join(", ")
            ))),
        }
    }
}

/// The language of an input's speech: given, or `auto`, detected by the speech-to-text
/// engine among the languages Octavia knows. Serialized as `en`, `es` or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(into = "&'static str", try_from = "String")]
pub enum SourceLanguage {
    Known(Language),
    Detect,
}

impl SourceLanguage {
    /// The language given, `None` when it is to be detected.
    pub fn known(self) -> Option<Language> {
        match self {
            SourceLanguage::Known(language) => Some(language),
            SourceLanguage::Detect => None,
        }
    }
}

impl From<Language> for SourceLanguage {
    fn from(language: Language) -> Self {
        SourceLanguage::Known(language)
    }
}

impl FromStr for SourceLanguage {
    type Err = PipelineError;

    /// `auto` (any case), or any spelling of a [`Language`].
    fn from_str(s: &str) -> Result<Self> {
        if s.trim().eq_ignore_ascii_case("auto") {
            return Ok(SourceLanguage::Detect);
        }
        s.parse::<Language>()
            .map(SourceLanguage::Known)
            .map_err(|_| {
                PipelineError::UnsupportedLanguage(format!(
                    "`{s}` (supported: {}, or auto to detect it)",
                    Language::ALL.map(Language::code).join(", ")
                ))
            })
    }
}

impl From<SourceLanguage> for &'static str {
    fn from(language: SourceLanguage) -> Self {
        match language {
            SourceLanguage::Known(language) => language.code(),
            SourceLanguage::Detect => "auto",
        }
    }
}

impl TryFrom<String> for SourceLanguage {
    type Error = PipelineError;

    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl fmt::Display for SourceLanguage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str((*self).into())
    }
}

impl From<Language> for &'static str {
    fn from(language: Language) -> Self {
        language.code()
    }
}

impl TryFrom<String> for Language {
    type Error = PipelineError;

    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_in_every_spelling() {
        for s in ["en", "EN", "eng", "en-US", "english"] {
            assert_eq!(s.parse::<Language>().unwrap(), Language::English, "{s}");
        }
        for s in ["es", "spa", "es_MX"] {
            assert_eq!(s.parse::<Language>().unwrap(), Language::Spanish, "{s}");
        }
        assert_eq!(
            serde_json::to_string(&Language::Spanish).unwrap(),
            r#""es""#
        );
        let read: Language = serde_json::from_str(r#""eng""#).unwrap();
        assert_eq!(read, Language::English);
        assert!(serde_json::from_str::<Language>(r#""fr""#).is_err());
        assert_eq!(
            "AUTO".parse::<SourceLanguage>().unwrap(),
            SourceLanguage::Detect
        );
        assert_eq!(
            "es-MX".parse::<SourceLanguage>().unwrap(),
            SourceLanguage::Known(Language::Spanish)
        );
        let read: SourceLanguage = serde_json::from_str(r#""en""#).unwrap();
        assert_eq!(read.known(), Some(Language::English));
        assert_eq!(
            serde_json::to_string(&SourceLanguage::Detect).unwrap(),
            r#""auto""#
        );
        let e = "fr".parse::<SourceLanguage>().unwrap_err().to_string();
        assert!(e.contains("`fr`") && e.contains("auto"), "{e}");
        let e = "fr".parse::<Language>().unwrap_err();
        assert!(!e.is_retryable());
        assert!(
            e.to_string().contains("`fr`") && e.to_string().contains("en, es"),
            "{e}"
        );
    }
}
