//! The options of the pipeline's job types (`jobs.metadata.options`), checked with errors
//! that name the option, so a bad request fails at once with a message the user can act
//! on: by the API and the CLI before a job is created, and by the plan step in any case.
//!
//! | job type | `source_language` | `target_language` | `format` |
//! |---|---|---|---|
//! | `video_translation` | default `en` | required | `mp4` (default), `mkv` |
//! | `audio_translation` | default `en` | required | `m4a` (default), `mp3`, `wav` |
//! | `subtitles` | default `en` | — | `srt` (default), `vtt` |
//! | `subtitle_translation` | default `en` | required | `srt`, `vtt` (default: the input's) |
//! | `subtitle_to_audio` | default `en` | optional: translate first | `m4a` (default), `mp3`, `wav` |
//!
//! Languages are given as `en`/`es` (or `eng`, `english`, `es-MX`, ...). Outputs with
//! several files (a video and its subtitles, or SRT and WebVTT) write all of them; `format`
//! chooses the one that becomes the job's output media row.

use crate::pipeline::Language;
use serde_json::Value;

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
    /// Accepted formats; the first is the default unless the job derives it from its input.
    formats: &'static [&'static str],
}

fn spec(job_type: &str) -> Option<Spec> {
    let (target, formats): (Target, &'static [&'static str]) = match job_type {
        "video_translation" => (Target::Required, &["mp4", "mkv"]),
        "audio_translation" => (Target::Required, &["m4a", "mp3", "wav"]),
        "subtitles" => (Target::None, &["srt", "vtt"]),
        "subtitle_translation" => (Target::Required, &["srt", "vtt"]),
        "subtitle_to_audio" => (Target::Optional, &["m4a", "mp3", "wav"]),
        _ => return None,
    };
    Some(Spec { target, formats })
}

/// A pipeline job's options, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The language spoken or written in the input.
    pub source: Language,
    /// The language to translate to; `None` when the job does not translate.
    pub target: Option<Language>,
    /// The format asked for (lowercase, one the job type accepts); `None`: the default.
    pub format: Option<String>,
}

impl Options {
    /// The target language of a job type that requires one.
    pub fn target(&self) -> Language {
        self.target.unwrap_or(self.source)
    }

    /// The format asked for, or `default`.
    pub fn format_or<'a>(&'a self, default: &'a str) -> &'a str {
        self.format.as_deref().unwrap_or(default)
    }
}

/// Parses and checks the options of a pipeline job type. The error names the option and
/// what is accepted.
pub fn parse(job_type: &str, options: &Value) -> Result<Options, String> {
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
    let source = language("source_language")?.unwrap_or(Language::English);
    let target = language("target_language")?;
    match (spec.target, target) {
        (Target::Required, None) => {
            return Err(format!(
                "option `target_language` is required for {job_type} (one of {})",
                Language::ALL.map(Language::code).join(", ")
            ));
        }
        (Target::Required, Some(t)) if t == source => {
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
        target: target.filter(|t| *t != source),
        format,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_and_spellings() {
        let o = parse("video_translation", &json!({"target_language": "ES"})).unwrap();
        assert_eq!(o.source, Language::English);
        assert_eq!(o.target, Some(Language::Spanish));
        assert_eq!(o.format_or("mp4"), "mp4");
        let o = parse("subtitles", &Value::Null).unwrap();
        assert_eq!((o.source, o.target), (Language::English, None));
        let o = parse(
            "subtitle_to_audio",
            &json!({"source_language": "spa", "format": ".MP3"}),
        )
        .unwrap();
        assert_eq!(o.source, Language::Spanish);
        assert_eq!(o.target, None);
        assert_eq!(o.format.as_deref(), Some("mp3"));
        // Speaking the cues in their own language is no translation.
        let o = parse(
            "subtitle_to_audio",
            &json!({"source_language": "es", "target_language": "es"}),
        )
        .unwrap();
        assert_eq!(o.target, None);
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
            let e = parse(job_type, &options).unwrap_err();
            assert!(e.contains(expected), "{job_type} {options}: {e}");
        }
    }
}
