//! The catalogue of job types: every kind of work Octavia sells, with what it takes as
//! input, whether it runs the pipeline's engines, and its options.
//!
//! Adding a job type is a variant in [`job_types!`] plus one file in `crate::job_types`;
//! every `match` on [`JobType`] (the accepted inputs, the options, the registry, the
//! price) then fails to compile until it says what the new type does.

use super::media::MediaType;
use super::options;
use serde_json::Value;

/// Declares [`JobType`] with its list and names, so neither can miss a variant.
macro_rules! job_types {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// A job type of the product (`jobs.job_type`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum JobType {
            $($(#[$doc])* $variant,)*
        }

        impl JobType {
            /// Every job type, in the order the API lists them.
            pub const ALL: &'static [JobType] = &[$(JobType::$variant,)*];

            /// The name stored in `jobs.job_type` and used by the API, the CLI and the
            /// configuration (`[pricing]`, `worker.job_types`).
            pub const fn name(self) -> &'static str {
                match self {
                    $(JobType::$variant => $name,)*
                }
            }
        }
    };
}

job_types! {
    /// A diagnostic: no work, but every step of the queue (see `crate::job_types::noop`).
    Noop => "noop",
    /// Dubs a video into another language.
    VideoTranslation => "video_translation",
    /// Dubs an audio file (or the audio of a video).
    AudioTranslation => "audio_translation",
    /// Writes subtitles of what is said in a video or audio file.
    Subtitles => "subtitles",
    /// Translates an SRT or WebVTT file, keeping its timings.
    SubtitleTranslation => "subtitle_translation",
    /// Speaks an SRT or WebVTT file, each cue at its time.
    SubtitleToAudio => "subtitle_to_audio",
}

impl JobType {
    /// The job type called `name`, if there is one.
    pub fn from_name(name: &str) -> Option<JobType> {
        JobType::ALL.iter().copied().find(|t| t.name() == name)
    }

    /// Every name, comma-separated, for messages that list them.
    pub fn names() -> String {
        JobType::ALL
            .iter()
            .map(|t| t.name())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The kinds of media file a job of this type reads; `None` for a type that takes no
    /// input.
    pub fn inputs(self) -> Option<&'static [MediaType]> {
        use MediaType::{Audio, Subtitle, Video};
        match self {
            JobType::Noop => None,
            JobType::VideoTranslation => Some(&[Video]),
            JobType::AudioTranslation | JobType::Subtitles => Some(&[Audio, Video]),
            JobType::SubtitleTranslation | JobType::SubtitleToAudio => Some(&[Subtitle]),
        }
    }

    /// Whether its handler runs the pipeline's engines (ffmpeg, speech-to-text,
    /// translation, text-to-speech): a worker that may claim it checks at start-up that
    /// their programs are installed.
    pub fn runs_pipeline(self) -> bool {
        match self {
            JobType::Noop => false,
            JobType::VideoTranslation
            | JobType::AudioTranslation
            | JobType::Subtitles
            | JobType::SubtitleTranslation
            | JobType::SubtitleToAudio => true,
        }
    }

    /// Checks a job's options as its handler will: the error names the option at fault.
    /// The API and the CLI call it before creating a job, so a job that would fail at once
    /// for its options is refused instead of charged.
    pub fn check_options(self, options: &Value) -> Result<(), String> {
        match self {
            JobType::Noop => options::NoopOptions::parse(options).map(|_| ()),
            JobType::VideoTranslation
            | JobType::AudioTranslation
            | JobType::Subtitles
            | JobType::SubtitleTranslation
            | JobType::SubtitleToAudio => options::parse(self, options).map(|_| ()),
        }
    }
}

impl std::fmt::Display for JobType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for JobType {
    type Err = String;

    fn from_str(name: &str) -> Result<JobType, String> {
        JobType::from_name(name).ok_or_else(|| {
            format!(
                "`{}` is not a job type (one of {})",
                name.escape_default(),
                JobType::names()
            )
        })
    }
}

/// In the OpenAPI document a job type is its name, one of [`JobType::ALL`].
impl utoipa::PartialSchema for JobType {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(JobType::ALL.iter().map(|t| t.name())))
            .description(Some("A job type: what the job does with its input."))
            .into()
    }
}

impl utoipa::ToSchema for JobType {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in JobType::ALL {
            assert_eq!(JobType::from_name(t.name()), Some(*t));
            assert_eq!(t.name().parse::<JobType>(), Ok(*t));
        }
        let e = "teleport".parse::<JobType>().unwrap_err();
        assert!(
            e.contains("`teleport` is not a job type (one of noop, video_translation"),
            "{e}"
        );
    }

    #[test]
    fn pipeline_types_take_an_input_and_noop_none() {
        for t in JobType::ALL {
            assert_eq!(t.inputs().is_some(), t.runs_pipeline(), "{t}");
        }
    }
}
