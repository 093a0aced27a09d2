//! Speech-to-text with OpenAI's Whisper, run offline by faster-whisper (CTranslate2, int8
//! on the CPU) in long-lived helper processes ([`helper`]), on models installed in a local
//! directory: nothing is fetched at run time.
//!
//! English speech goes to `engines.whisper_english_model` (Whisper tiny.en by default: on
//! the quality benchmark it heard English in half base's time, inside the error bound),
//! Spanish speech and language detection to `engines.whisper_multilingual_model`
//! (Whisper base). Words come with timestamps and become phrases as pocketsphinx's do
//! ([`super::phrases`]), breaking also where a sentence ends, and their edges are moved
//! onto the speech in the audio.
//!
//! A helper keeps its models loaded: starting one costs 0.3 s of Python imports and
//! 0.35 s (tiny.en) to 0.55 s (base) of model loading, against about 1 s to transcribe
//! 9 s of speech with one thread, so a process per segment would spend a third of its
//! time starting.

mod helper;

pub use helper::HELPER_ARG;

use super::phrases::{Word, group_words, snap_to_speech};
use super::traits::{Detected, Phrase, SpeechToText};
use crate::pipeline::media::wav::Wav;
use crate::pipeline::{Language, PipelineError, Result};
use async_trait::async_trait;
use helper::{Detect, DetectedLanguage, Heard, Load, Loaded, Pool, Transcribe};
use std::path::{Path, PathBuf};

/// How the whisper engine runs, from `[engines]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhisperSettings {
    /// The Python interpreter that has faster-whisper (the project's `.venv`).
    pub python: PathBuf,
    /// The model for English speech; `None`: the multilingual one.
    pub english_model: Option<PathBuf>,
    /// The model for other languages and for detection.
    pub multilingual_model: PathBuf,
    /// CTranslate2 threads of each helper.
    pub threads: u32,
    /// Helper processes, so transcriptions at once.
    pub helpers: usize,
    pub beam_size: u32,
}

/// Offline Whisper speech recognition: English, Spanish, and detection between them.
pub struct Whisper {
    settings: WhisperSettings,
    pool: Pool,
}

impl std::fmt::Debug for Whisper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Whisper")
            .field("settings", &self.settings)
            .finish()
    }
}

/// The files a CTranslate2 Whisper model directory holds.
const MODEL_FILES: [&str; 3] = ["model.bin", "config.json", "tokenizer.json"];

impl Whisper {
    /// Starts nothing: helpers start on first use, or in its start-up check ([`SpeechToText::check`]).
    pub fn new(settings: WhisperSettings) -> Whisper {
        let pool = Pool::new(settings.python.clone(), settings.helpers);
        Whisper { settings, pool }
    }

    /// The model that hears `language`; `None`: the one that detects languages.
    fn model_for(&self, language: Option<Language>) -> &Path {
        match (language, &self.settings.english_model) {
            (Some(Language::English), Some(english)) => english,
            _ => &self.settings.multilingual_model,
        }
    }
}

/// Speech detected as a language Octavia does not know with at least this probability
/// is refused rather than heard as the likeliest one it knows.
const UNSUPPORTED_SURE: f64 = 0.5;

/// The text Whisper is told came before the audio, in `language`. Without one, espeak-ng's
/// voice was heard without punctuation and its first words wrong ("But wherever is very
/// good today" for "The weather is very good today."); with it, word for word.
fn prompt(language: Language) -> &'static str {
    match language {
        Language::English => "Hello, how are you? I'm fine, thank you.",
        Language::Spanish => "Hola, ¿cómo estás? Muy bien, gracias.",
    }
}

/// Words ending with one of these end a sentence.
const SENTENCE_ENDS: [char; 4] = ['.', '?', '!', '…'];

/// The helper's words as [`Word`]s in milliseconds, with an utterance's end after each
/// sentence (faster-whisper's segments may end inside one, so they end nothing). A token
/// that does not start with a space continues the word before ("o" "'clock", "1" ",2").
fn words(heard: &Heard) -> Vec<Word> {
    let ms = |s: f64| (s.max(0.0) * 1000.0).round() as u64;
    let mut words: Vec<Word> = Vec::with_capacity(heard.words.len() + 8);
    let mut segment = None;
    for w in &heard.words {
        let text = w.text.trim();
        if text.is_empty() {
            continue;
        }
        let same_segment = segment == Some(w.segment);
        if !w.text.starts_with(char::is_whitespace)
            && same_segment
            && let Some(Word {
                text: Some(previous),
                end_ms,
                ..
            }) = words.last_mut()
        {
            previous.push_str(text);
            *end_ms = ms(w.end.max(w.start)).max(*end_ms);
        } else {
            words.push(Word {
                start_ms: ms(w.start),
                end_ms: ms(w.end.max(w.start)),
                text: Some(text.to_string()),
            });
        }
        segment = Some(w.segment);
        let last = words.last().expect("a word was just added");
        let ends_sentence = last.text.as_deref().is_some_and(|t| {
            t.trim_end_matches(['"', '\'', ')', '»', '”'])
                .ends_with(SENTENCE_ENDS)
        });
        if ends_sentence {
            let end_ms = last.end_ms;
            words.push(Word {
                start_ms: end_ms,
                end_ms,
                text: None,
            });
        }
    }
    words
}

#[async_trait]
impl SpeechToText for Whisper {
    fn name(&self) -> &'static str {
        "whisper"
    }

    /// The interpreter and the models are there, faster-whisper imports, and the English
    /// model loads: a helper is left running with it, ready for the first segment. The
    /// error names what is missing and the command that installs it.
    async fn check(&self) -> Result<()> {
        let mut missing = Vec::new();
        if !self.settings.python.is_file() {
            missing.push(format!(
                "the Python interpreter {} (engines.whisper_python)",
                self.settings.python.display()
            ));
        }
        let mut models = vec![(
            "engines.whisper_multilingual_model",
            &self.settings.multilingual_model,
        )];
        if let Some(english) = &self.settings.english_model {
            models.push(("engines.whisper_english_model", english));
        }
        for (setting, dir) in models {
            let absent: Vec<&str> = MODEL_FILES
                .into_iter()
                .filter(|f| !dir.join(f).is_file())
                .collect();
            if !absent.is_empty() {
                missing.push(format!(
                    "the model {} ({setting}; no {})",
                    dir.display(),
                    absent.join(", ")
                ));
            }
        }
        if !missing.is_empty() {
            return Err(PipelineError::EngineMissing {
                engine: "whisper",
                missing: missing.join(", "),
                install: helper::INSTALL,
            });
        }
        let model = self.model_for(Some(Language::English));
        let loaded: Loaded = self
            .pool
            .call(&Load {
                load: model,
                threads: self.settings.threads,
            })
            .await?;
        if loaded.loaded != model {
            return Err(PipelineError::BadOutput {
                engine: "whisper",
                message: format!(
                    "asked to load {}, loaded {}",
                    model.display(),
                    loaded.loaded.display()
                ),
            });
        }
        Ok(())
    }

    #[tracing::instrument(name = "engine", skip_all, fields(otel.name = "whisper", engine = "whisper", language = %language))]
    async fn transcribe(&self, wav: &Path, language: Language) -> Result<Vec<Phrase>> {
        let heard: Heard = self
            .pool
            .call(&Transcribe {
                wav,
                model: self.model_for(Some(language)),
                language: Some(language.code()),
                languages: vec![language.code()],
                prompt: Some(prompt(language)),
                beam_size: self.settings.beam_size,
                threads: self.settings.threads,
            })
            .await?;
        let phrases = group_words(&words(&heard));
        Ok(snap_to_speech(phrases, &Wav::read(wav).await?))
    }

    async fn detect_language(&self, wav: &Path) -> Result<Detected> {
        let detected: DetectedLanguage = self
            .pool
            .call(&Detect {
                detect: wav,
                model: self.model_for(None),
                languages: Language::ALL.map(Language::code).to_vec(),
                threads: self.settings.threads,
            })
            .await?;
        if detected.top_language != detected.language
            && detected.top_probability >= UNSUPPORTED_SURE
        {
            return Err(PipelineError::UnsupportedLanguage(format!(
                "the speech is in `{}` (whisper, probability {:.2}), which Octavia does not \
                 translate (supported: {})",
                detected.top_language,
                detected.top_probability,
                Language::ALL.map(Language::code).join(", ")
            )));
        }
        let language =
            detected
                .language
                .parse::<Language>()
                .map_err(|_| PipelineError::BadOutput {
                    engine: "whisper",
                    message: format!("detected `{}`, not one of those asked", detected.language),
                })?;
        Ok(Detected {
            language,
            probability: detected.probability,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::helper::HeardWord;
    use super::*;

    fn heard(words: &[(f64, f64, &str, usize)]) -> Heard {
        Heard {
            language: "en".into(),
            probability: 1.0,
            words: words
                .iter()
                .map(|&(start, end, text, segment)| HeardWord {
                    start,
                    end,
                    text: text.into(),
                    segment,
                })
                .collect(),
        }
    }

    #[test]
    fn sentences_end_phrases_and_split_tokens_are_joined() {
        let h = heard(&[
            (0.0, 0.3, " The", 0),
            (0.3, 0.6, " weather", 0),
            (0.6, 1.0, " is nice.", 0),
            (1.1, 1.3, " I", 0),
            (1.3, 1.6, " would", 0),
            (1.6, 1.9, " like", 1),
            (1.9, 2.2, " \"tea?\"", 1),
            (2.2, 2.5, " ", 1),
            (2.3, 2.6, " Yes", 1),
            (2.6, 2.8, " at", 1),
            (2.8, 2.9, " 7", 1),
            (2.9, 3.0, " o", 1),
            (3.0, 3.3, "'clock", 1),
        ]);
        let phrases = group_words(&words(&h));
        let texts: Vec<&str> = phrases.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "The weather is nice.",
                "I would like \"tea?\"",
                "Yes at 7 o'clock"
            ]
        );
        assert_eq!(phrases[2].end_ms, 3300);
        assert_eq!(
            phrases[0],
            Phrase {
                start_ms: 0,
                end_ms: 1000,
                text: "The weather is nice.".into()
            }
        );
    }

    #[test]
    fn english_goes_to_the_english_model_the_rest_to_the_multilingual_one() {
        let settings = WhisperSettings {
            python: "python".into(),
            english_model: Some("tiny.en".into()),
            multilingual_model: "base".into(),
            threads: 1,
            helpers: 1,
            beam_size: 5,
        };
        let w = Whisper::new(settings.clone());
        assert_eq!(w.model_for(Some(Language::English)), Path::new("tiny.en"));
        assert_eq!(w.model_for(Some(Language::Spanish)), Path::new("base"));
        assert_eq!(w.model_for(None), Path::new("base"));
        let w = Whisper::new(WhisperSettings {
            english_model: None,
            ..settings
        });
        assert_eq!(w.model_for(Some(Language::English)), Path::new("base"));
    }
}
