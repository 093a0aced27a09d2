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
        let e = "fr".parse::<Language>().unwrap_err();
        assert!(!e.is_retryable());
        assert!(
            e.to_string().contains("`fr`") && e.to_string().contains("en, es"),
            "{e}"
        );
    }
}
