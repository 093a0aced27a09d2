//! The options of every job type (`jobs.metadata.options`), checked with errors that name
//! the option, so a bad request fails at once with a message the user can act on: by the
//! API and the CLI before a job is created ([`super::JobType::check_options`]), and by the
//! plan step in any case.
//!
//! `noop` takes [`NoopOptions`]; the pipeline's job types take [`Options`]:
//!
//! | job type | `source_language` | `target_language` | `format` |
//! |---|---|---|---|
//! | `video_translation` | default `en`, or `auto` | required | `mp4` (default), `mkv` |
//! | `audio_translation` | default `en`, or `auto` | required | `m4a` (default), `mp3`, `wav` |
//! | `subtitles` | default `en`, or `auto` | — | `srt` (default), `vtt` |
//! | `subtitle_translation` | default `en` | required | `srt`, `vtt` (default: the input's) |
//! | `subtitle_to_audio` | default `en` | optional: translate first | `m4a` (default), `mp3`, `wav` |
//!
//! Languages are given as `en`/`es` (or `eng`, `english`, `es-MX`, ...). `auto` has the
//! speech-to-text engine detect the language spoken (the plan does, once for the whole
//! input); jobs that read text need it given. Outputs with
//! several files (a video and its subtitles, or SRT and WebVTT) write all of them; `format`
//! chooses the one that becomes the job's output media row.

use super::JobType;
use crate::pipeline::{Language, SourceLanguage};
use serde::Deserialize;
use serde_json::{Value, json};

/// Whether a job type takes a target language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// The job translates: a target is required and must differ from the source.
    Required,
    /// The job may translate (subtitle_to_audio speaks the cues, translated if asked).
    Optional,
    /// The job does not translate.
    None,
}

/// What a job type accepts.
struct Spec {
    target: Target,
    /// Whether the input is speech, whose language can be detected.
    speech: bool,
    /// Accepted formats; the first is the default unless the job derives it from its input.
    formats: &'static [&'static str],
}

fn spec(job_type: JobType) -> Option<Spec> {
    let (target, speech, formats): (Target, bool, &'static [&'static str]) = match job_type {
        JobType::Noop => return None,
        JobType::VideoTranslation => (Target::Required, true, &["mp4", "mkv"]),
        JobType::AudioTranslation => (Target::Required, true, &["m4a", "mp3", "wav"]),
        JobType::Subtitles => (Target::None, true, &["srt", "vtt"]),
        JobType::SubtitleTranslation => (Target::Required, false, &["srt", "vtt"]),
        JobType::SubtitleToAudio => (Target::Optional, false, &["m4a", "mp3", "wav"]),
    };
    Some(Spec {
        target,
        speech,
        formats,
    })
}

/// A pipeline job's options, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The language spoken or written in the input; [`SourceLanguage::Detect`] only for
    /// job types that hear speech.
    pub source: SourceLanguage,
    /// The language to translate to; `None` when the job does not translate.
    pub target: Option<Language>,
    /// The format asked for (lowercase, one the job type accepts); `None`: the default.
    pub format: Option<String>,
}

impl Options {
    /// The language of a job type that reads text ([`parse`] refuses `auto` for them).
    pub fn text_source(&self) -> Language {
        self.source
            .known()
            .expect("options of a job type that reads text have a known source language")
    }

    /// The target language of a job type that requires one.
    pub fn target(&self) -> Language {
        self.target
            .or(self.source.known())
            .expect("a job type that requires a target has one")
    }

    /// The format asked for, or `default`.
    pub fn format_or<'a>(&'a self, default: &'a str) -> &'a str {
        self.format.as_deref().unwrap_or(default)
    }
}

/// Parses and checks the options of a pipeline job type. The error names the option and
/// what is accepted.
pub fn parse(job_type: JobType, options: &Value) -> Result<Options, String> {
    let spec = spec(job_type).ok_or_else(|| format!("`{job_type}` is not a pipeline job type"))?;
    let empty = serde_json::Map::new();
    let map = match options {
        Value::Null => &empty,
        Value::Object(map) => map,
        other => {
            return Err(format!(
                "options must be a JSON object such as {{\"target_language\": \"es\"}}, not `{other}`"
            ));
        }
    };
    let mut known = vec!["source_language", "format"];
    if spec.target != Target::None {
        known.push("target_language");
    }
    if let Some(unknown) = map.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(format!(
            "option `{unknown}` is not an option of {job_type} (its options: {})",
            known.join(", ")
        ));
    }
    let text = |name: &str| -> Result<Option<&str>, String> {
        match map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(other) => Err(format!("option `{name}` must be a string, not `{other}`")),
        }
    };
    let language = |name: &str| -> Result<Option<Language>, String> {
        text(name)?
            .map(|s| {
                s.parse::<Language>()
                    .map_err(|e| format!("option `{name}`: {e}"))
            })
            .transpose()
    };
    let source = match text("source_language")? {
        None => SourceLanguage::Known(Language::English),
        Some(s) => s
            .parse::<SourceLanguage>()
            .map_err(|e| format!("option `source_language`: {e}"))?,
    };
    if source == SourceLanguage::Detect && !spec.speech {
        return Err(format!(
            "option `source_language`: `auto` detects the language of speech, and {job_type} \
             reads text: give its language (one of {})",
            Language::ALL.map(Language::code).join(", ")
        ));
    }
    let target = language("target_language")?;
    match (spec.target, target) {
        (Target::Required, None) => {
            return Err(format!(
                "option `target_language` is required for {job_type} (one of {})",
                Language::ALL.map(Language::code).join(", ")
            ));
        }
        (Target::Required, Some(t)) if source == SourceLanguage::Known(t) => {
            return Err(format!(
                "options `source_language` and `target_language` are both `{t}`: \
                 there is nothing to translate"
            ));
        }
        _ => {}
    }
    let format = text("format")?
        .map(|f| {
            let f = f.trim().trim_start_matches('.').to_ascii_lowercase();
            if spec.formats.contains(&f.as_str()) {
                Ok(f)
            } else {
                Err(format!(
                    "option `format`: `{f}` is not a format of {job_type} (one of {})",
                    spec.formats.join(", ")
                ))
            }
        })
        .transpose()?;
    Ok(Options {
        source,
        target: target.filter(|t| SourceLanguage::Known(*t) != source),
        format,
    })
}

/// The most segments one noop job may ask for.
const MAX_SEGMENTS: u32 = 1_000_000;

/// `noop`'s options (see `crate::job_types::noop`).
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NoopOptions {
    pub segments: u32,
    pub segment_ms: u64,
    pub fail_rate: f64,
    pub fail_segments: Vec<i32>,
}

impl Default for NoopOptions {
    fn default() -> Self {
        NoopOptions {
            segments: 1,
            segment_ms: 0,
            fail_rate: 0.0,
            fail_segments: Vec::new(),
        }
    }
}

impl NoopOptions {
    /// The input of each segment the plan creates. Each segment carries what it needs, so
    /// running it reads nothing else; options left at their defaults are left out (a
    /// segment reads a missing one as its default), so the segments of a plain no-op job
    /// carry `{}`: every segment's input is parsed by PostgreSQL when inserted and by the
    /// worker when claimed.
    pub fn segment_input(&self) -> Value {
        let mut input = serde_json::Map::new();
        if self.segment_ms != 0 {
            input.insert("segment_ms".into(), json!(self.segment_ms));
        }
        if self.fail_rate != 0.0 {
            input.insert("fail_rate".into(), json!(self.fail_rate));
        }
        if !self.fail_segments.is_empty() {
            input.insert("fail_segments".into(), json!(self.fail_segments));
        }
        Value::Object(input)
    }

    /// Parses and checks options; the message names the bad option.
    pub fn parse(options: &Value) -> Result<NoopOptions, String> {
        let parsed: NoopOptions = if options.is_null() {
            NoopOptions::default()
        } else {
            serde_json::from_value(options.clone()).map_err(|e| format!("noop options: {e}"))?
        };
        if parsed.segments > MAX_SEGMENTS {
            return Err(format!(
                "noop options: segments must be at most {MAX_SEGMENTS}"
            ));
        }
        if !(0.0..=1.0).contains(&parsed.fail_rate) {
            return Err("noop options: fail_rate must be between 0 and 1".into());
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_and_spellings() {
        let o = parse(JobType::VideoTranslation, &json!({"target_language": "ES"})).unwrap();
        assert_eq!(o.source, Language::English.into());
        assert_eq!(o.target, Some(Language::Spanish));
        assert_eq!(o.format_or("mp4"), "mp4");
        let o = parse(JobType::Subtitles, &Value::Null).unwrap();
        assert_eq!((o.source, o.target), (Language::English.into(), None));
        let o = parse(
            JobType::SubtitleToAudio,
            &json!({"source_language": "spa", "format": ".MP3"}),
        )
        .unwrap();
        assert_eq!(o.text_source(), Language::Spanish);
        assert_eq!(o.target, None);
        assert_eq!(o.format.as_deref(), Some("mp3"));
        // Speaking the cues in their own language is no translation.
        let o = parse(
            JobType::SubtitleToAudio,
            &json!({"source_language": "es", "target_language": "es"}),
        )
        .unwrap();
        assert_eq!(o.target, None);
        // Speech jobs detect the language they hear.
        let o = parse(
            JobType::AudioTranslation,
            &json!({"source_language": "Auto", "target_language": "en"}),
        )
        .unwrap();
        assert_eq!(o.source, SourceLanguage::Detect);
        assert_eq!(o.target(), Language::English);
        let o = parse(JobType::Subtitles, &json!({"source_language": "auto"})).unwrap();
        assert_eq!((o.source, o.target), (SourceLanguage::Detect, None));
    }

    #[test]
    fn errors_name_the_option() {
        let cases = [
            (
                "audio_translation",
                json!({}),
                "`target_language` is required",
            ),
            (
                "audio_translation",
                json!({"target_language": "fr"}),
                "option `target_language`: unsupported language: `fr`",
            ),
            (
                "audio_translation",
                json!({"target_language": "en"}),
                "both `en`",
            ),
            (
                "subtitle_translation",
                json!({"source_language": "auto", "target_language": "es"}),
                "option `source_language`: `auto` detects the language of speech, and \
                 subtitle_translation reads text",
            ),
            (
                "subtitles",
                json!({"source_language": "fr"}),
                "option `source_language`: unsupported language: `fr` (supported: en, es, or auto",
            ),
            (
                "video_translation",
                json!({"target_language": "es", "format": "avi"}),
                "option `format`: `avi` is not a format of video_translation (one of mp4, mkv)",
            ),
            (
                "subtitles",
                json!({"target_language": "es"}),
                "option `target_language` is not an option of subtitles",
            ),
            (
                "subtitle_translation",
                json!({"target_language": 3}),
                "option `target_language` must be a string",
            ),
            ("subtitles", json!([1]), "options must be a JSON object"),
            ("noop", json!({}), "not a pipeline job type"),
        ];
        for (job_type, options, expected) in cases {
            let job_type: JobType = job_type.parse().unwrap();
            let e = parse(job_type, &options).unwrap_err();
            assert!(e.contains(expected), "{job_type} {options}: {e}");
        }
    }

    #[test]
    fn segment_input_carries_only_options_off_their_defaults() {
        assert_eq!(NoopOptions::default().segment_input(), json!({}));
        let options = NoopOptions::parse(&json!({
            "segments": 3, "segment_ms": 5, "fail_rate": 0.5, "fail_segments": [2]
        }))
        .unwrap();
        assert_eq!(
            options.segment_input(),
            json!({ "segment_ms": 5, "fail_rate": 0.5, "fail_segments": [2] })
        );
        let sleepy = NoopOptions::parse(&json!({ "segment_ms": 7 })).unwrap();
        assert_eq!(sleepy.segment_input(), json!({ "segment_ms": 7 }));
    }
}
