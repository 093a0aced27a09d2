//! Speech-to-text with CMU pocketsphinx (`pocketsphinx_continuous`) and its en-us model.
//!
//! With `-time yes` it prints, for each utterance it hears, the hypothesis on one line and
//! then one line per word: `word start_seconds end_seconds confidence`, times from the
//! start of the file. Non-words are marked: `<s>` and `</s>` open and close an utterance,
//! `<sil>` is a pause, `[NOISE]`/`[SPEECH]`/`++…++` are fillers; a word's alternative
//! pronunciation carries a suffix, `probably(2)`.

use super::phrases::{Word, group_words};
use super::traits::SpeechToText;
use crate::pipeline::media::wav::Wav;
use crate::pipeline::process::{self, POCKETSPHINX};
use crate::pipeline::{Language, PipelineError, Result};
use async_trait::async_trait;
use std::ffi::OsString;
use std::path::Path;

/// Offline English speech recognition with pocketsphinx.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pocketsphinx;

/// Reads `pocketsphinx_continuous -time yes` output: the words, without markers and
/// fillers, and the ends of utterances.
pub fn parse_pocketsphinx(output: &str) -> Vec<Word> {
    let mut words = Vec::new();
    for line in output.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [token, start, end, confidence] = fields[..] else {
            continue;
        };
        let (Ok(start), Ok(end), Ok(_)) = (
            start.parse::<f64>(),
            end.parse::<f64>(),
            confidence.parse::<f64>(),
        ) else {
            // A hypothesis line of four words, not a timing line.
            continue;
        };
        let ms = |s: f64| (s.max(0.0) * 1000.0).round() as u64;
        let (start_ms, end_ms) = (ms(start), ms(end));
        if token == "</s>" {
            words.push(Word {
                start_ms,
                end_ms,
                text: None,
            });
            continue;
        }
        if token.starts_with(['<', '[', '+']) {
            continue;
        }
        // "probably(2)" is "probably" said another way.
        let word = match token.find('(') {
            Some(i) if token.ends_with(')') && i > 0 => &token[..i],
            _ => token,
        };
        words.push(Word {
            start_ms,
            end_ms,
            text: Some(word.to_string()),
        });
    }
    words
}

#[async_trait]
impl SpeechToText for Pocketsphinx {
    fn name(&self) -> &'static str {
        "pocketsphinx"
    }

    async fn transcribe(&self, wav: &Path, language: Language) -> Result<Vec<super::Phrase>> {
        if language != Language::English {
            return Err(PipelineError::UnsupportedLanguage(format!(
                "pocketsphinx recognizes English only (its en-us model), not `{language}`; \
                 set engines.speech_to_text = \"whisper\" for other languages"
            )));
        }
        // pocketsphinx reads raw samples at 16 kHz whatever the file says, so anything
        // else would be recognized as nonsense rather than refused.
        let spec = Wav::read(wav).await?.spec;
        if spec.sample_rate != 16_000 || spec.channels != 1 {
            return Err(PipelineError::InvalidInput(format!(
                "{}: pocketsphinx needs 16 kHz mono WAV, not {} Hz with {} channels",
                wav.display(),
                spec.sample_rate,
                spec.channels
            )));
        }
        let out = process::run(
            &POCKETSPHINX,
            [
                OsString::from("-infile"),
                wav.into(),
                "-time".into(),
                // Its log goes to stderr, kept for the error if it fails (`-logfn
                // /dev/null` would hide why, e.g. an unreadable file).
                "yes".into(),
            ],
            None,
        )
        .await?;
        Ok(group_words(&parse_pocketsphinx(&String::from_utf8_lossy(
            &out,
        ))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::engines::Phrase;

    const OUTPUT: &str = "we probably got\n<s> 0.000 0.230 0.999200\nwe 0.240 0.410 0.674391\n<sil> 0.420 0.530 0.999000\nprobably(2) 0.540 0.860 0.178583\n[NOISE] 0.870 0.900 0.5\ngot 0.910 1.260 0.976283\n</s> 1.270 1.610 1.000000\nthe weather is nice\n<s> 3.000 3.100 1\nthe 3.100 3.200 0.9\nweather 3.200 3.600 0.9\n<sil> 3.600 4.100 1\nis 4.100 4.200 0.9\nnice 4.200 4.500 0.9\n</s> 4.500 4.700 1\n";

    #[test]
    fn words_without_markers_fillers_or_variants() {
        let words = parse_pocketsphinx(OUTPUT);
        let texts: Vec<_> = words.iter().map(|w| w.text.as_deref()).collect();
        assert_eq!(
            texts,
            [
                Some("we"),
                Some("probably"),
                Some("got"),
                None,
                Some("the"),
                Some("weather"),
                Some("is"),
                Some("nice"),
                None
            ]
        );
        assert_eq!((words[1].start_ms, words[1].end_ms), (540, 860));
    }

    #[test]
    fn phrases_break_at_utterances_and_pauses() {
        let phrases = group_words(&parse_pocketsphinx(OUTPUT));
        assert_eq!(
            phrases,
            [
                Phrase {
                    start_ms: 240,
                    end_ms: 1260,
                    text: "we probably got".into()
                },
                Phrase {
                    start_ms: 3100,
                    end_ms: 3600,
                    text: "the weather".into()
                },
                Phrase {
                    start_ms: 4100,
                    end_ms: 4500,
                    text: "is nice".into()
                },
            ]
        );
    }
}
