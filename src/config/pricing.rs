//! `[pricing]`: what a job costs, one setting per job type.
//!
//! Every setting is a scalar so the environment and `--set` can override each one like any
//! other (`OCTAVIA_PRICING_VIDEO_TRANSLATION=12`).

use super::checks::Invalid;
use crate::job::JobType;
use serde::{Deserialize, Serialize};

/// `[pricing]`: credits per started minute of input, one setting per job type. A job's
/// price is `rate × ceil(minutes)`, at least one minute; the minutes of a subtitle input
/// are the summed durations of its cues, and a job without input counts one minute.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PricingConfig {
    pub noop: i64,
    pub video_translation: i64,
    pub audio_translation: i64,
    pub subtitles: i64,
    pub subtitle_translation: i64,
    pub subtitle_to_audio: i64,
}

impl Default for PricingConfig {
    fn default() -> Self {
        Self {
            noop: 0,
            video_translation: 10,
            audio_translation: 6,
            subtitles: 2,
            subtitle_translation: 1,
            subtitle_to_audio: 3,
        }
    }
}

impl PricingConfig {
    /// Credits per started minute of `job_type`.
    pub fn per_minute(&self, job_type: JobType) -> i64 {
        self.rate(job_type).1
    }

    /// The setting of `job_type`'s price and its value.
    fn rate(&self, job_type: JobType) -> (&'static str, i64) {
        match job_type {
            JobType::Noop => ("pricing.noop", self.noop),
            JobType::VideoTranslation => ("pricing.video_translation", self.video_translation),
            JobType::AudioTranslation => ("pricing.audio_translation", self.audio_translation),
            JobType::Subtitles => ("pricing.subtitles", self.subtitles),
            JobType::SubtitleTranslation => {
                ("pricing.subtitle_translation", self.subtitle_translation)
            }
            JobType::SubtitleToAudio => ("pricing.subtitle_to_audio", self.subtitle_to_audio),
        }
    }

    pub(super) fn validate(&self) -> Result<(), Invalid> {
        for (setting, rate) in JobType::ALL.iter().map(|t| self.rate(*t)) {
            // The cap keeps rate × minutes far from overflowing for any real input.
            if !(0..=1_000_000).contains(&rate) {
                return Err((setting, "must be between 0 and 1000000".into()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_job_type_has_a_price() {
        let pricing = PricingConfig::default();
        for job_type in JobType::ALL {
            let (setting, _) = pricing.rate(*job_type);
            assert_eq!(
                setting,
                format!("pricing.{job_type}"),
                "[pricing] names the setting of `{job_type}` after it"
            );
        }
        assert_eq!(pricing.per_minute(JobType::VideoTranslation), 10);
    }
}
