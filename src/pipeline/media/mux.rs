//! Muxing a dubbed video: the original picture untouched, the dub as the first audio
//! track, the original audio as the second, and subtitles embedded.

use super::{FFPROBE, ensure_exists, ffmpeg, probe, secs};
use crate::pipeline::{Language, PipelineError, Result, process};
use std::ffi::OsString;
use std::path::Path;

/// What [`mux_video`] puts together.
#[derive(Debug, Clone, Copy)]
pub struct MuxRequest<'a> {
    /// The original video: its first video stream is copied, not re-encoded, and its first
    /// audio stream (if any) is kept as the second audio track.
    pub video: &'a Path,
    /// The dubbed audio, as long as the video; it becomes the first, default, audio track.
    pub dubbed_audio: &'a Path,
    pub dubbed_language: Language,
    /// The original audio's language, for its track tag; `None` keeps the file's tag.
    pub original_language: Option<Language>,
    /// An SRT or WebVTT file to embed, and its language.
    pub subtitles: Option<(&'a Path, Language)>,
    /// The output, `.mp4`/`.m4v`/`.mov` (subtitles as mov_text) or `.mkv` (as SRT).
    pub out: &'a Path,
}

/// Audio codecs an MP4 or Matroska file can carry as they are.
const COPYABLE_AUDIO: [&str; 5] = ["aac", "mp3", "ac3", "eac3", "alac"];

/// Muxes a dubbed video (see [`MuxRequest`]). The output lasts as long as the input video.
pub async fn mux_video(req: &MuxRequest<'_>) -> Result<()> {
    let ext = req
        .out
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let (subtitle_codec, mp4) = match ext.as_str() {
        "mp4" | "m4v" | "mov" => ("mov_text", true),
        "mkv" => ("srt", false),
        _ => {
            return Err(PipelineError::InvalidInput(format!(
                "{}: a dubbed video is written as .mp4, .m4v, .mov or .mkv",
                req.out.display()
            )));
        }
    };
    let info = probe(req.video).await?;
    if !info.has_video() {
        return Err(PipelineError::InvalidMedia {
            path: req.video.to_path_buf(),
            reason: "it has no video stream to dub".into(),
        });
    }
    ensure_exists(req.dubbed_audio).await?;
    let mut args: Vec<OsString> = vec![
        "-i".into(),
        req.video.into(),
        "-i".into(),
        req.dubbed_audio.into(),
    ];
    if let Some((subs, _)) = req.subtitles {
        ensure_exists(subs).await?;
        args.extend(["-i".into(), subs.into()]);
    }
    let arg = |s: &str| OsString::from(s);
    args.extend(["-map", "0:v:0", "-map", "1:a:0"].map(arg));
    let original = info.audio();
    if original.is_some() {
        args.extend(["-map", "0:a:0"].map(arg));
    }
    if req.subtitles.is_some() {
        args.extend(["-map", "2:s:0"].map(arg));
    }
    args.extend(
        [
            "-c:v", "copy", "-c:a:0", "aac", "-b:a:0", "160k", "-ar:a:0", "48000",
        ]
        .map(arg),
    );
    args.extend([
        arg("-metadata:s:a:0"),
        format!("language={}", req.dubbed_language.iso639_3()).into(),
        arg("-metadata:s:a:0"),
        format!("title={} (dubbed)", req.dubbed_language.name()).into(),
        arg("-disposition:a:0"),
        arg("default"),
    ]);
    if let Some(original) = original {
        let copy = COPYABLE_AUDIO.contains(&original.codec.as_str());
        args.extend(
            [
                "-c:a:1",
                if copy { "copy" } else { "aac" },
                "-disposition:a:1",
                "0",
            ]
            .map(arg),
        );
        let title = match req.original_language {
            Some(lang) => {
                args.extend([
                    arg("-metadata:s:a:1"),
                    format!("language={}", lang.iso639_3()).into(),
                ]);
                format!("title={} (original)", lang.name())
            }
            None => "title=Original".into(),
        };
        args.extend([arg("-metadata:s:a:1"), title.into()]);
    }
    if let Some((_, lang)) = req.subtitles {
        args.extend([
            arg("-c:s"),
            arg(subtitle_codec),
            arg("-metadata:s:s:0"),
            format!("language={}", lang.iso639_3()).into(),
        ]);
    }
    // The dub is cut to the picture's length so the output lasts as long as the input.
    args.extend([arg("-t"), secs(info.duration_ms)]);
    if mp4 {
        args.extend(["-movflags", "+faststart"].map(arg));
    }
    args.push(req.out.into());
    ffmpeg(args).await?;
    Ok(())
}

/// Counts the frames (packets) of a file's first video stream by reading it through:
/// equal counts before and after a mux show the picture was copied whole.
pub async fn count_video_frames(path: &Path) -> Result<u64> {
    ensure_exists(path).await?;
    let out = process::run(
        &FFPROBE,
        [
            OsString::from("-v"),
            "error".into(),
            "-select_streams".into(),
            "v:0".into(),
            "-count_packets".into(),
            "-show_entries".into(),
            "stream=nb_read_packets".into(),
            "-of".into(),
            "csv=p=0".into(),
            path.into(),
        ],
        None,
    )
    .await?;
    let text = String::from_utf8_lossy(&out);
    text.trim()
        .trim_end_matches(',')
        .parse()
        .map_err(|_| PipelineError::InvalidMedia {
            path: path.to_path_buf(),
            reason: format!("no video frames to count (ffprobe said `{}`)", text.trim()),
        })
}
