//! `[pipeline]`: how the translating job types cut and fit their work.

use super::checks::Invalid;
use serde::{Deserialize, Serialize};

/// How the job types split media and subtitles into segments and fit dubbed speech.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineConfig {
    /// The length speech media is cut into, aimed for; each cut falls in a silence, so
    /// segments last between half and one and a half times this.
    pub segment_seconds: u64,
    /// Audio quieter than this (dBFS) counts as silence when placing cuts.
    pub silence_noise_db: f64,
    /// Quiet stretches shorter than this are pauses inside speech, not places to cut.
    pub silence_min_ms: u64,
    /// Most subtitle cues in one segment.
    pub subtitle_batch_cues: u32,
    /// Most time one segment's cues span, first start to last end.
    pub subtitle_batch_seconds: u64,
    /// Slowest tempo dubbed speech is played at to fill its slot (1.0: never slowed
    /// down; short speech is followed by silence instead).
    pub min_tempo: f64,
    /// Fastest tempo dubbed speech is played at to fit its slot; speech still too long is
    /// cut at the end of the slot.
    pub max_tempo: f64,
    /// Largest subtitle file accepted as input; subtitles are read whole into memory.
    pub max_subtitle_bytes: u64,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            segment_seconds: 30,
            silence_noise_db: -35.0,
            silence_min_ms: 250,
            subtitle_batch_cues: 40,
            subtitle_batch_seconds: 300,
            min_tempo: 1.0,
            max_tempo: 2.0,
            max_subtitle_bytes: 10 * 1024 * 1024,
        }
    }
}

impl PipelineConfig {
    /// Checks ranges serde cannot; returns the offending setting and why.
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        if !(1..=600).contains(&self.segment_seconds) {
            return Err((
                "pipeline.segment_seconds",
                "must be between 1 and 600".into(),
            ));
        }
        if !(-90.0..=0.0).contains(&self.silence_noise_db) {
            return Err((
                "pipeline.silence_noise_db",
                "must be between -90 and 0 (dBFS)".into(),
            ));
        }
        if !(20..=10_000).contains(&self.silence_min_ms) {
            return Err((
                "pipeline.silence_min_ms",
                "must be between 20 and 10000".into(),
            ));
        }
        if !(1..=10_000).contains(&self.subtitle_batch_cues) {
            return Err((
                "pipeline.subtitle_batch_cues",
                "must be between 1 and 10000".into(),
            ));
        }
        if self.subtitle_batch_seconds == 0 {
            return Err((
                "pipeline.subtitle_batch_seconds",
                "must be greater than 0".into(),
            ));
        }
        // The bounds ffmpeg's chained atempo filters handle (see media::fit_to_duration).
        let tempo = 0.25..=4.0;
        if !tempo.contains(&self.min_tempo) {
            return Err(("pipeline.min_tempo", "must be between 0.25 and 4.0".into()));
        }
        if !tempo.contains(&self.max_tempo) || self.max_tempo < self.min_tempo {
            return Err((
                "pipeline.max_tempo",
                format!(
                    "must be between 0.25 and 4.0 and at least pipeline.min_tempo ({})",
                    self.min_tempo
                ),
            ));
        }
        if self.max_subtitle_bytes == 0 {
            return Err((
                "pipeline.max_subtitle_bytes",
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
    fn pipeline_settings_are_checked() {
        let empty = write("");
        let c = loader(&[
            ("OCTAVIA_PIPELINE_SEGMENT_SECONDS", "5"),
            ("OCTAVIA_PIPELINE_MAX_TEMPO", "1.5"),
        ])
        .file(Some(empty.path().into()))
        .load()
        .unwrap();
        assert_eq!(c.pipeline.segment_seconds, 5);
        assert_eq!(c.pipeline.max_tempo, 1.5);
        for (var, value, setting) in [
            (
                "OCTAVIA_PIPELINE_SEGMENT_SECONDS",
                "0",
                "pipeline.segment_seconds",
            ),
            ("OCTAVIA_PIPELINE_MAX_TEMPO", "0.9", "pipeline.max_tempo"),
            ("OCTAVIA_PIPELINE_MIN_TEMPO", "9", "pipeline.min_tempo"),
            (
                "OCTAVIA_PIPELINE_SILENCE_NOISE_DB",
                "3",
                "pipeline.silence_noise_db",
            ),
            (
                "OCTAVIA_PIPELINE_SUBTITLE_BATCH_CUES",
                "0",
                "pipeline.subtitle_batch_cues",
            ),
        ] {
            let e = err(loader(&[(var, value)]).file(Some(empty.path().into())));
            assert!(e.contains(setting) && e.contains(var), "{e}");
        }
    }
}
