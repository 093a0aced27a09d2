//! What a completed upload turns out to be: subtitles are read and parsed, audio and video
//! probed with ffprobe where they lie, reading only the headers it needs.

use super::error::ApiError;
use super::media::MediaRow;
use super::state::ApiState;
use crate::pipeline::process::{self, FFPROBE};
use crate::pipeline::{PipelineError, subtitles as srt};
use serde_json::{Value, json};
use std::ffi::OsString;
use std::time::Duration;

/// Largest subtitle file read whole to check and measure it.
const MAX_SUBTITLE_BYTES: u64 = 20 << 20;

/// How long ffprobe may take over an upload's headers.
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

/// Reads and parses a subtitle upload: its duration is where its last cue ends, and what
/// jobs are priced by, the total time its cues are shown, goes into metadata.
pub async fn subtitles(
    state: &ApiState,
    media: &MediaRow,
    size: u64,
) -> Result<(Option<f64>, Option<String>, Value), ApiError> {
    if size > MAX_SUBTITLE_BYTES {
        return Err(ApiError::TooLarge(format!(
            "a subtitle file may have at most {MAX_SUBTITLE_BYTES} bytes"
        )));
    }
    let bytes = state.storage.get_bytes(&media.s3_key).await?;
    let bad = |e: crate::pipeline::SubtitleError| {
        ApiError::Invalid(format!("not a subtitle file we can read: {e}"))
    };
    let text = srt::decode(&bytes).map_err(bad)?;
    let format = srt::detect(&text).map_err(bad)?;
    let cues = srt::parse_as(&text, format).map_err(bad)?;
    let end_ms = cues.iter().map(|c| c.end_ms).max().unwrap_or(0);
    let cues_ms: u64 = cues.iter().map(|c| c.duration_ms()).sum();
    Ok((
        Some(end_ms as f64 / 1000.0),
        Some(format.mime_type().to_string()),
        json!({ "cue_count": cues.len(), "cues_ms": cues_ms, "format": format.extension() }),
    ))
}

/// Probes an audio or video upload with ffprobe where it lies: the file itself in the
/// local store, or through a presigned URL, so only the headers ffprobe needs are read,
/// never the whole file.
pub async fn media(
    state: &ApiState,
    media: &MediaRow,
    kind: Option<&str>,
) -> Result<(Option<f64>, Option<String>, Value), ApiError> {
    let input: OsString = if state.storage.is_local() {
        let path = std::path::Path::new(&state.config.storage.local_dir).join(&media.s3_key);
        // `file:` keeps ffprobe from reading a name as another protocol.
        let mut input = OsString::from("file:");
        input.push(path);
        input
    } else {
        state.storage.download_url(&media.s3_key).await?.url.into()
    };
    let args: Vec<OsString> = vec![
        "-v".into(),
        "error".into(),
        // Microseconds: a store that stalls fails the probe rather than hanging it.
        "-rw_timeout".into(),
        "15000000".into(),
        "-show_entries".into(),
        "format=duration:stream=codec_type:stream_disposition=attached_pic".into(),
        "-of".into(),
        "json".into(),
        input,
    ];
    let out = tokio::time::timeout(PROBE_TIMEOUT, process::run(&FFPROBE, args, None))
        .await
        .map_err(|_| ApiError::Unavailable("ffprobe took too long".into()))?
        .map_err(|e| match e {
            PipelineError::ToolFailed { .. } => {
                ApiError::Invalid("not an audio or video file ffprobe can read".into())
            }
            other => ApiError::Internal(format!("ffprobe: {other}")),
        })?;
    let probed: Value = serde_json::from_slice(&out)
        .map_err(|e| ApiError::Internal(format!("ffprobe's output is not JSON: {e}")))?;
    let streams = probed["streams"].as_array().cloned().unwrap_or_default();
    let has = |kind: &str| {
        streams.iter().any(|s| {
            s["codec_type"] == kind && s["disposition"]["attached_pic"].as_i64() != Some(1)
        })
    };
    let (has_video, has_audio) = (has("video"), has("audio"));
    if kind == Some("video") && !has_video {
        return Err(ApiError::Invalid("the file has no video stream".into()));
    }
    if !has_audio {
        return Err(ApiError::Invalid(
            "the file has no audio stream: there is nothing to translate".into(),
        ));
    }
    let duration = probed["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse::<f64>().ok())
        .filter(|d| d.is_finite() && *d > 0.0)
        .ok_or_else(|| ApiError::Invalid("the file has no duration".into()))?;
    Ok((
        Some(duration),
        media.mimetype.clone(),
        json!({ "has_video": has_video, "has_audio": has_audio }),
    ))
}
