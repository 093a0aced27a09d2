//! The options of every job type as the OpenAPI document describes them: one object with
//! every option typed and documented (which ones a type takes is said on each). The checks
//! themselves are [`super::options::parse`]'s and the noop handler's; this is their
//! description, and a test keeps the two in step.

use serde::Serialize;
use utoipa::ToSchema;

/// A language: ISO 639-1.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LanguageCode {
    En,
    Es,
}

/// The language of the input: a language, or `auto` to have speech detected (types that
/// hear speech only).
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SourceLanguageCode {
    En,
    Es,
    Auto,
}

/// An output format.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    Mp4,
    Mkv,
    M4a,
    Mp3,
    Wav,
    Srt,
    Vtt,
}

/// A job's options. Unknown options are refused (422), naming the ones the type takes.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobOptions {
    /// Every type but `noop`: the language of the input (default `en`).
    pub source_language: Option<SourceLanguageCode>,
    /// `video_translation`, `audio_translation`, `subtitle_translation` (required) and
    /// `subtitle_to_audio` (optional: speak the cues translated): the language to
    /// translate to, other than the source.
    pub target_language: Option<LanguageCode>,
    /// The main output's format: `mp4` (default) or `mkv` for `video_translation`; `m4a`
    /// (default), `mp3` or `wav` for `audio_translation` and `subtitle_to_audio`; `srt` or
    /// `vtt` for `subtitles` (default `srt`) and `subtitle_translation` (default: the
    /// input's). Every format is written; this one is the job's media row.
    pub format: Option<OutputFormat>,
    /// `noop`: segments to run (default 1).
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub segments: Option<u32>,
    /// `noop`: milliseconds each segment takes (default 0).
    #[schema(minimum = 0)]
    pub segment_ms: Option<u64>,
    /// `noop`: the chance a segment attempt fails, retryably (default 0).
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub fail_rate: Option<f64>,
    /// `noop`: the segments that always fail.
    pub fail_segments: Option<Vec<i32>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::JobType;
    use crate::pipeline::Language;
    use serde_json::json;
    use std::collections::BTreeSet;

    fn values<T: Serialize>(all: &[T]) -> BTreeSet<String> {
        all.iter()
            .map(|v| {
                serde_json::to_value(v)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    }

    /// What the document says is what the checks accept: each option it lists is accepted
    /// by some job type, and every language and format the checks accept is listed.
    #[test]
    fn the_documented_options_are_the_checked_ones() {
        let codes: BTreeSet<String> = Language::ALL.iter().map(|l| l.code().to_string()).collect();
        assert_eq!(values(&[LanguageCode::En, LanguageCode::Es]), codes);
        let formats = values(&[
            OutputFormat::Mp4,
            OutputFormat::Mkv,
            OutputFormat::M4a,
            OutputFormat::Mp3,
            OutputFormat::Wav,
            OutputFormat::Srt,
            OutputFormat::Vtt,
        ]);
        let schema = serde_json::to_value(<JobOptions as utoipa::PartialSchema>::schema()).unwrap();
        let properties: Vec<String> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        for name in &properties {
            let value = match name.as_str() {
                "source_language" => json!("en"),
                "target_language" => json!("es"),
                "format" => json!("srt"),
                "segments" | "segment_ms" => json!(2),
                "fail_rate" => json!(0.5),
                "fail_segments" => json!([1]),
                other => panic!("an option the test does not know: {other}"),
            };
            let taken = JobType::ALL.iter().any(|t| {
                t.check_options(&json!({ name.as_str(): value.clone() }))
                    .is_ok()
            });
            assert!(taken, "no job type takes the documented option `{name}`");
        }
        // Every format some job type takes is documented, and no other.
        let mut accepted = BTreeSet::new();
        for t in JobType::ALL {
            for f in &formats {
                if t.check_options(&json!({"format": f, "target_language": "es"}))
                    .is_ok()
                {
                    accepted.insert(f.clone());
                }
            }
            assert!(t.check_options(&json!({"format": "avi"})).is_err());
        }
        assert_eq!(accepted, formats);
    }
}
