//! The job types Octavia runs, and the registry of all of them.

pub mod noop;

use crate::error::Result;
use crate::worker::Registry;

/// Every job type of the product, as the API and the CLI accept them.
pub const JOB_TYPES: &[&str] = &[
    "noop",
    "video_translation",
    "audio_translation",
    "subtitles",
    "subtitle_translation",
    "subtitle_to_audio",
];

/// Every job type a worker can run.
pub fn registry() -> Result<Registry> {
    let mut registry = Registry::new();
    registry.register(noop::Noop)?;
    Ok(registry)
}
