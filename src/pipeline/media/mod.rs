//! Media operations over ffmpeg and ffprobe: probing, speech-aware cutting, extracting,
//! time-fitting synthesized speech, assembling audio, muxing and encoding outputs, and
//! generating test media.
//!
//! Synthesized speech is handled in one working format, [`WORK_SPEC`] (24 kHz mono 16-bit
//! WAV): every fitted clip, silence and concatenation is in it, so joining pieces never
//! resamples and durations add up to the sample.

mod audio;
mod cut;
mod generate;
mod mux;
pub mod wav;

pub use audio::{
    AudioFormat, Clip, Fit, FitOptions, concat_wav, encode_audio, extract_audio, extract_speech,
    fit_to_duration, place_clips, silence, to_work_wav,
};
pub use cut::{
    CutOptions, DEFAULT_SEGMENT_MS, Silence, detect_silences, plan_windows, speech_windows,
};
pub use generate::{
    GeneratedSpeech, SAMPLE_PAUSE_MS, SAMPLE_SENTENCES, generate_audio, generate_speech_wav,
    generate_video, voice_of,
};
pub use mux::{MuxRequest, count_video_frames, mux_video};

use super::process::{self, FFMPEG, FFPROBE};
use super::{PipelineError, Result};
use serde::Deserialize;
use std::ffi::OsString;
use std::path::Path;
use wav::WavSpec;

/// The working format of synthesized speech: 24 kHz (what OpenAI-compatible TTS services
/// produce natively), mono, 16-bit.
pub const WORK_SPEC: WavSpec = WavSpec {
    sample_rate: 24_000,
    channels: 1,
};

/// A time window of a media file: from `start_ms` (included) to `end_ms` (excluded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Window {
    pub start_ms: u64,
    pub end_ms: u64,
}

impl Window {
    pub fn new(start_ms: u64, end_ms: u64) -> Self {
        Self { start_ms, end_ms }
    }

    pub fn duration_ms(&self) -> u64 {
        self.end_ms.saturating_sub(self.start_ms)
    }
}

/// What a stream carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamKind {
    Video,
    Audio,
    Subtitle,
    /// Data, attachments and anything else ffprobe reports.
    Other(String),
}

/// One stream of a media file, as ffprobe reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamInfo {
    /// The stream's index in the file (what `-map 0:N` names).
    pub index: u32,
    pub kind: StreamKind,
    /// ffmpeg's codec name: `h264`, `aac`, `pcm_s16le`, `mov_text`, ...
    pub codec: String,
    pub sample_rate: Option<u32>,
    pub channels: Option<u32>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub language: Option<String>,
    /// A still picture (cover art) rather than real video.
    pub attached_picture: bool,
}

/// What ffprobe knows about a media file.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaInfo {
    pub duration_ms: u64,
    /// ffprobe's container name, e.g. `mov,mp4,m4a,3gp,3g2,mj2` or `wav`.
    pub format_name: String,
    pub streams: Vec<StreamInfo>,
}

impl MediaInfo {
    /// The first real video stream (cover art does not count).
    pub fn video(&self) -> Option<&StreamInfo> {
        self.streams
            .iter()
            .find(|s| s.kind == StreamKind::Video && !s.attached_picture)
    }

    /// The first audio stream.
    pub fn audio(&self) -> Option<&StreamInfo> {
        self.streams.iter().find(|s| s.kind == StreamKind::Audio)
    }

    pub fn has_video(&self) -> bool {
        self.video().is_some()
    }

    pub fn has_audio(&self) -> bool {
        self.audio().is_some()
    }
}

#[derive(Deserialize)]
struct ProbeJson {
    #[serde(default)]
    streams: Vec<ProbeStream>,
    format: Option<ProbeFormat>,
}

#[derive(Deserialize)]
struct ProbeStream {
    index: u32,
    codec_type: Option<String>,
    codec_name: Option<String>,
    sample_rate: Option<String>,
    channels: Option<u32>,
    width: Option<u32>,
    height: Option<u32>,
    duration: Option<String>,
    #[serde(default)]
    disposition: std::collections::HashMap<String, i64>,
    #[serde(default)]
    tags: std::collections::HashMap<String, String>,
}

#[derive(Deserialize)]
struct ProbeFormat {
    format_name: Option<String>,
    duration: Option<String>,
}

fn seconds_to_ms(s: &str) -> Option<u64> {
    let secs: f64 = s.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| (secs * 1000.0).round() as u64)
}

/// Probes a media file. A file that is not media, has neither audio nor video, or has no
/// duration is [`PipelineError::InvalidMedia`] (fatal); a missing file is an I/O error.
pub async fn probe(path: &Path) -> Result<MediaInfo> {
    ensure_exists(path).await?;
    let invalid = |reason: String| PipelineError::InvalidMedia {
        path: path.to_path_buf(),
        reason,
    };
    let out = process::run(
        &FFPROBE,
        [
            OsString::from("-v"),
            "error".into(),
            "-print_format".into(),
            "json".into(),
            "-show_format".into(),
            "-show_streams".into(),
            path.into(),
        ],
        None,
    )
    .await
    .map_err(|e| match e {
        // ffprobe fails only on what it cannot read: the file, not the machine, is at fault.
        PipelineError::ToolFailed { stderr, .. } => {
            invalid(format!("not a media file ffprobe can read: {stderr}"))
        }
        other => other,
    })?;
    let json: ProbeJson = serde_json::from_slice(&out).map_err(|e| PipelineError::BadOutput {
        engine: "ffprobe",
        message: e.to_string(),
    })?;
    let format = json
        .format
        .ok_or_else(|| invalid("ffprobe found no container format".into()))?;
    let streams: Vec<StreamInfo> = json
        .streams
        .iter()
        .map(|s| StreamInfo {
            index: s.index,
            kind: match s.codec_type.as_deref() {
                Some("video") => StreamKind::Video,
                Some("audio") => StreamKind::Audio,
                Some("subtitle") => StreamKind::Subtitle,
                other => StreamKind::Other(other.unwrap_or("unknown").to_string()),
            },
            codec: s.codec_name.clone().unwrap_or_default(),
            sample_rate: s.sample_rate.as_deref().and_then(|r| r.parse().ok()),
            channels: s.channels,
            width: s.width,
            height: s.height,
            language: s.tags.get("language").cloned(),
            attached_picture: s.disposition.get("attached_pic") == Some(&1),
        })
        .collect();
    let duration_ms = format
        .duration
        .as_deref()
        .and_then(seconds_to_ms)
        .or_else(|| {
            json.streams
                .iter()
                .filter_map(|s| s.duration.as_deref().and_then(seconds_to_ms))
                .max()
        })
        .unwrap_or(0);
    let info = MediaInfo {
        duration_ms,
        format_name: format.format_name.unwrap_or_default(),
        streams,
    };
    if !info.has_audio() && !info.has_video() {
        return Err(invalid(
            "not audio or video: it has no audio or video stream".into(),
        ));
    }
    if info.duration_ms == 0 {
        return Err(invalid("the media has no duration".into()));
    }
    Ok(info)
}

async fn ensure_exists(path: &Path) -> Result<()> {
    tokio::fs::metadata(path)
        .await
        .map(|_| ())
        .map_err(|e| PipelineError::io(format!("cannot read {}", path.display()), e))
}

/// Decides who is to blame for ffmpeg failing on `input`. If the input is not media or
/// has no audio, that is the input's fault and fatal ([`PipelineError::InvalidMedia`]);
/// otherwise the failure stands (retryable). Probing only after a failure keeps the
/// common path to one program run.
async fn blame_input(input: &Path, error: PipelineError) -> PipelineError {
    if !matches!(error, PipelineError::ToolFailed { .. }) {
        return error;
    }
    match probe(input).await {
        Err(invalid @ PipelineError::InvalidMedia { .. }) => invalid,
        Ok(info) if !info.has_audio() => PipelineError::InvalidMedia {
            path: input.to_path_buf(),
            reason: "it has no audio stream".into(),
        },
        _ => error,
    }
}

/// Runs ffmpeg with the options every call wants: no banner, no reading from the
/// terminal, overwrite outputs, print only errors.
async fn ffmpeg<I>(args: I) -> Result<Vec<u8>>
where
    I: IntoIterator<Item = OsString>,
{
    let mut all: Vec<OsString> = ["-hide_banner", "-nostdin", "-y", "-v", "error"]
        .map(OsString::from)
        .to_vec();
    all.extend(args);
    process::run(&FFMPEG, all, None).await
}

/// Runs ffmpeg on `input`, blaming the input for a failure when it is at fault (see
/// [`blame_input`]).
async fn ffmpeg_on<I>(input: &Path, args: I) -> Result<Vec<u8>>
where
    I: IntoIterator<Item = OsString>,
{
    match ffmpeg(args).await {
        Err(e) => Err(blame_input(input, e).await),
        ok => ok,
    }
}

/// Seconds with millisecond precision, as ffmpeg's time options take them.
fn secs(ms: u64) -> OsString {
    format!("{}.{:03}", ms / 1000, ms % 1000).into()
}

/// A scratch directory, removed when dropped.
fn scratch() -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("octavia-media-")
        .tempdir()
        .map_err(|e| PipelineError::io("creating a scratch directory", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_formatting() {
        assert_eq!(secs(61_005), OsString::from("61.005"));
        assert_eq!(seconds_to_ms("2.5374"), Some(2537));
        assert_eq!(seconds_to_ms("N/A"), None);
    }
}
