//! Speech-aware cutting: segment windows whose boundaries fall in silences, so no word is
//! split between two segments (and so between two speech recognitions and two dubs).

use super::{Window, ffmpeg_on, secs};
use crate::pipeline::{PipelineError, Result};
use std::ffi::OsString;
use std::path::Path;

/// The segment length the pipeline aims for: long enough for whole sentences and to keep
/// per-segment overhead small, short enough to spread a long file over many workers.
pub const DEFAULT_SEGMENT_MS: u64 = 30_000;

/// A stretch of quiet audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Silence {
    pub start_ms: u64,
    pub end_ms: u64,
}

/// How to cut.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CutOptions {
    /// The window length aimed for.
    pub target_ms: u64,
    /// No window is shorter than this, except a whole file that is shorter.
    pub min_ms: u64,
    /// No window is longer than this; without a silence in reach the cut is made at the
    /// target and may split a word.
    pub max_ms: u64,
    /// Audio quieter than this (dBFS) is silence.
    pub noise_db: f64,
    /// Shorter quiet stretches are pauses inside speech, not silences.
    pub min_silence_ms: u64,
}

impl CutOptions {
    /// Windows of `target_ms`, between half and one and a half times that long.
    pub fn target(target_ms: u64) -> Self {
        Self {
            target_ms,
            min_ms: target_ms / 2,
            max_ms: target_ms + target_ms / 2,
            ..Self::default()
        }
    }
}

impl Default for CutOptions {
    fn default() -> Self {
        Self {
            target_ms: DEFAULT_SEGMENT_MS,
            min_ms: DEFAULT_SEGMENT_MS / 2,
            max_ms: DEFAULT_SEGMENT_MS * 3 / 2,
            noise_db: -35.0,
            min_silence_ms: 250,
        }
    }
}

/// Finds the silences of a file's first audio stream with ffmpeg's `silencedetect`.
/// `duration_ms` closes a silence that lasts to the end of the file.
pub async fn detect_silences(
    path: &Path,
    duration_ms: u64,
    options: &CutOptions,
) -> Result<Vec<Silence>> {
    let filter = format!(
        // ametadata prints the detector's findings to stdout as key=value lines, which
        // are steadier to parse than its log lines.
        "silencedetect=noise={}dB:d={},ametadata=mode=print:file=-",
        options.noise_db,
        secs(options.min_silence_ms).to_string_lossy()
    );
    let out = ffmpeg_on(
        path,
        [
            OsString::from("-i"),
            path.into(),
            "-map".into(),
            "0:a:0".into(),
            "-af".into(),
            filter.into(),
            "-f".into(),
            "null".into(),
            "-".into(),
        ],
    )
    .await?;
    parse_silences(&String::from_utf8_lossy(&out), duration_ms)
}

fn parse_silences(text: &str, duration_ms: u64) -> Result<Vec<Silence>> {
    let ms = |v: &str| -> Result<u64> {
        let secs: f64 = v.trim().parse().map_err(|_| PipelineError::BadOutput {
            engine: "ffmpeg silencedetect",
            message: format!("`{v}` is not a time"),
        })?;
        Ok((secs.max(0.0) * 1000.0).round() as u64)
    };
    let mut silences = Vec::new();
    let mut open: Option<u64> = None;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("lavfi.silence_start=") {
            open = Some(ms(v)?);
        } else if let Some(v) = line.strip_prefix("lavfi.silence_end=")
            && let Some(start_ms) = open.take()
        {
            silences.push(Silence {
                start_ms,
                end_ms: ms(v)?.min(duration_ms),
            });
        }
    }
    if let Some(start_ms) = open
        && start_ms < duration_ms
    {
        silences.push(Silence {
            start_ms,
            end_ms: duration_ms,
        });
    }
    Ok(silences)
}

/// Plans windows over `duration_ms` that cover it without gaps or overlaps, each cut at
/// the middle of a silence (furthest from the words either side) as close to the target
/// length as the silences allow.
pub fn plan_windows(duration_ms: u64, silences: &[Silence], options: &CutOptions) -> Vec<Window> {
    let target = options.target_ms.max(1);
    let max = options.max_ms.max(target);
    let min = options.min_ms.min(target);
    let mut windows = Vec::new();
    let mut start = 0;
    while duration_ms - start > max {
        let (lo, hi, aim) = (start + min, start + max, start + target);
        let cut = silences
            .iter()
            .map(|s| (s.start_ms + s.end_ms) / 2)
            // The last window must not be left shorter than the minimum either.
            .filter(|&mid| mid >= lo && mid <= hi && duration_ms - mid >= min.min(duration_ms - lo))
            .min_by_key(|&mid| mid.abs_diff(aim))
            .unwrap_or(aim);
        windows.push(Window::new(start, cut));
        start = cut;
    }
    if duration_ms > start || windows.is_empty() {
        windows.push(Window::new(start, duration_ms));
    }
    windows
}

/// Detects silences in `path` and plans its windows.
pub async fn speech_windows(
    path: &Path,
    duration_ms: u64,
    options: &CutOptions,
) -> Result<Vec<Window>> {
    let silences = detect_silences(path, duration_ms, options).await?;
    Ok(plan_windows(duration_ms, &silences, options))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covers(windows: &[Window], duration: u64) {
        assert_eq!(windows.first().unwrap().start_ms, 0);
        assert_eq!(windows.last().unwrap().end_ms, duration);
        for pair in windows.windows(2) {
            assert_eq!(pair[0].end_ms, pair[1].start_ms, "{windows:?}");
        }
    }

    #[test]
    fn cuts_in_the_silence_nearest_the_target() {
        let silences = [
            Silence {
                start_ms: 8_000,
                end_ms: 9_000,
            },
            Silence {
                start_ms: 29_000,
                end_ms: 31_000,
            },
            Silence {
                start_ms: 55_000,
                end_ms: 56_000,
            },
        ];
        let w = plan_windows(80_000, &silences, &CutOptions::default());
        assert_eq!(
            w,
            vec![
                Window::new(0, 30_000),
                Window::new(30_000, 55_500),
                Window::new(55_500, 80_000)
            ]
        );
    }

    #[test]
    fn without_silences_cuts_at_the_target() {
        let w = plan_windows(70_000, &[], &CutOptions::default());
        assert_eq!(w, vec![Window::new(0, 30_000), Window::new(30_000, 70_000)]);
        covers(&w, 70_000);
        let w = plan_windows(100_000, &[], &CutOptions::target(10_000));
        assert_eq!(w.len(), 10);
        covers(&w, 100_000);
    }

    #[test]
    fn short_files_are_one_window() {
        assert_eq!(
            plan_windows(5_000, &[], &CutOptions::default()),
            vec![Window::new(0, 5_000)]
        );
        assert_eq!(
            plan_windows(0, &[], &CutOptions::default()),
            vec![Window::new(0, 0)]
        );
    }

    #[test]
    fn silencedetect_output_is_parsed() {
        let text = "frame:7 pts:14336 pts_time:0.65\nlavfi.silence_start=-0.01\nlavfi.silence_end=0.75\nlavfi.silence_duration=0.76\nlavfi.silence_start=6.6\n";
        assert_eq!(
            parse_silences(text, 7_000).unwrap(),
            vec![
                Silence {
                    start_ms: 0,
                    end_ms: 750
                },
                Silence {
                    start_ms: 6_600,
                    end_ms: 7_000
                }
            ]
        );
    }
}
