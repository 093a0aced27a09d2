//! Text-to-speech with espeak-ng.

use super::traits::TextToSpeech;
use crate::pipeline::media::{self, WORK_SPEC, wav::Wav};
use crate::pipeline::process::{self, ESPEAK};
use crate::pipeline::{Language, Result};
use async_trait::async_trait;
use std::ffi::OsString;
use std::path::Path;

/// Offline speech synthesis with espeak-ng.
#[derive(Debug, Clone, Copy)]
pub struct EspeakNg {
    words_per_minute: u32,
}

impl EspeakNg {
    pub fn new(words_per_minute: u32) -> Self {
        Self { words_per_minute }
    }
}

/// The rate the generated test media speak at: a little slower than espeak-ng's 175,
/// which pocketsphinx recognizes better.
pub(crate) const TEST_MEDIA_WORDS_PER_MINUTE: u32 = 150;

/// Runs espeak-ng: `text` spoken by `voice` into `out` (its own 22.05 kHz mono WAV).
/// The text goes in on stdin, so nothing in it is read as an option.
pub(crate) async fn espeak_to_wav(
    text: &str,
    voice: &str,
    words_per_minute: u32,
    out: &Path,
) -> Result<()> {
    process::run(
        &ESPEAK,
        [
            OsString::from("-v"),
            voice.into(),
            "-s".into(),
            words_per_minute.to_string().into(),
            "-w".into(),
            out.into(),
            "--stdin".into(),
        ],
        Some(text.as_bytes().to_vec()),
    )
    .await?;
    Ok(())
}

#[async_trait]
impl TextToSpeech for EspeakNg {
    fn name(&self) -> &'static str {
        "espeak-ng"
    }

    async fn synthesize(&self, text: &str, language: Language, out: &Path) -> Result<()> {
        // espeak-ng writes no file at all for empty input.
        if text.trim().is_empty() {
            return Wav {
                spec: WORK_SPEC,
                data: Vec::new(),
            }
            .write(out)
            .await;
        }
        let dir = tempfile::Builder::new()
            .prefix("octavia-espeak-")
            .tempdir()
            .map_err(|e| crate::pipeline::PipelineError::io("creating a scratch directory", e))?;
        let raw = dir.path().join("espeak.wav");
        espeak_to_wav(text, language.espeak_voice(), self.words_per_minute, &raw).await?;
        media::to_work_wav(&raw, out).await
    }
}
