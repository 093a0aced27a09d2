//! The pipeline's building blocks against the real programs (ffmpeg, espeak-ng, whisper,
//! pocketsphinx, apertium) on media generated for each test, and the HTTP engines against
//! a small local server with the services' endpoint shapes. A missing program fails its
//! test with the command that installs it.

mod engines;
mod http;
mod media;

use octavia::pipeline::Result;
use octavia::pipeline::media::wav::Wav;
use std::path::Path;

/// The sentences of the generated test media, and the pause between them.
pub use octavia::pipeline::media::{SAMPLE_PAUSE_MS as PAUSE_MS, SAMPLE_SENTENCES as SENTENCES};

/// The quality benchmark's sentences, with known text, for the speech-to-text tests.
pub use octavia_dev::bench::quality::corpus::{ENGLISH, SPANISH};

/// The first Spanish sentences.
pub const SPANISH_SENTENCES: [&str; 4] = [SPANISH[0], SPANISH[1], SPANISH[2], SPANISH[3]];

/// The word error rate of `phrases` heard for `sentences`.
pub fn wer_of(sentences: &[&str], heard: &[String]) -> f64 {
    octavia_dev::wer::word_errors(&sentences.join(" "), &heard.join(" ")).rate()
}

/// The value of a pipeline result, or a panic with the error's message (which, for a
/// missing program, says how to install it).
#[track_caller]
pub fn must<T>(result: Result<T>) -> T {
    result.unwrap_or_else(|e| panic!("{e}"))
}

/// A scratch directory of the test's own, removed when dropped.
pub fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("octavia-it-")
        .tempdir()
        .expect("a scratch directory")
}

/// A WAV's duration and sample rate.
pub async fn wav_of(path: &Path) -> Wav {
    must(Wav::read(path).await)
}
