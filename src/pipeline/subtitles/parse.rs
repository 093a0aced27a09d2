//! The line-by-line parser behind SRT and WebVTT, and their timestamps.

use super::cue::Cue;
use crate::pipeline::error::SubtitleError;

/// Parses a timestamp: `HH:MM:SS,mmm`, `HH:MM:SS.mmm`, or `MM:SS.mmm` (hours left out,
/// as WebVTT allows). Hours may exceed 99; the fraction may have one to three digits.
pub fn parse_timestamp(s: &str) -> Result<u64, String> {
    let bad = |why: &str| format!("bad timestamp `{s}`: {why}");
    let (clock, fraction) = s
        .rsplit_once([',', '.'])
        .ok_or_else(|| bad("expected HH:MM:SS,mmm"))?;
    let fields: Vec<&str> = clock.split(':').collect();
    let number = |f: &str| -> Result<u64, String> {
        if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) || f.len() > 9 {
            return Err(bad("expected HH:MM:SS,mmm"));
        }
        Ok(f.parse().expect("digits"))
    };
    let (hours, minutes, seconds) = match fields.as_slice() {
        [h, m, s] => (number(h)?, number(m)?, number(s)?),
        [m, s] => (0, number(m)?, number(s)?),
        _ => return Err(bad("expected HH:MM:SS,mmm")),
    };
    if minutes >= 60 || seconds >= 60 {
        return Err(bad("minutes and seconds must be below 60"));
    }
    if fraction.is_empty() || fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("expected one to three digits of milliseconds"));
    }
    // ",5" is half a second, not five milliseconds.
    let millis: u64 = format!("{fraction:0<3}").parse().expect("digits");
    Ok(((hours * 60 + minutes) * 60 + seconds) * 1000 + millis)
}

/// Formats milliseconds as `HH:MM:SS<sep>mmm` (`,` for SRT, `.` for WebVTT).
pub fn format_timestamp(ms: u64, separator: char) -> String {
    let (h, rest) = (ms / 3_600_000, ms % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    let (s, milli) = (rest / 1000, rest % 1000);
    format!("{h:02}:{m:02}:{s:02}{separator}{milli:03}")
}

/// `WEBVTT` alone or followed by a space or tab and a header text.
pub(super) fn is_vtt_signature(line: &str) -> bool {
    line.strip_prefix("WEBVTT")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
}

/// A WebVTT block that is not a cue: a comment, a style sheet or a region definition.
fn is_vtt_block(line: &str) -> bool {
    ["NOTE", "STYLE", "REGION"].iter().any(|kw| {
        line.strip_prefix(kw)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
    })
}

/// The lines of a file without a byte order mark, whatever its line ends.
fn lines(text: &str) -> Vec<&str> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // `str::lines` handles "\n" and "\r\n"; a lone "\r" (old Mac files) does not occur in
    // practice alongside them, so split on it only when there is no "\n" at all.
    if !text.contains('\n') && text.contains('\r') {
        text.split('\r').collect()
    } else {
        text.lines().collect()
    }
}

fn blank(line: &str) -> bool {
    line.trim().is_empty()
}

/// Start and end of a timing line (`start --> end [settings]`); 1-based `number` for errors.
fn timing(line: &str, number: usize) -> Result<(u64, u64), SubtitleError> {
    let (left, right) = line.split_once("-->").ok_or_else(|| {
        SubtitleError::at(
            number,
            format!("expected a timing line, found `{}`", line.trim()),
        )
    })?;
    let start = parse_timestamp(left.trim()).map_err(|m| SubtitleError::at(number, m))?;
    let end_text = right.split_whitespace().next().unwrap_or("");
    let end = parse_timestamp(end_text).map_err(|m| SubtitleError::at(number, m))?;
    if end < start {
        return Err(SubtitleError::at(
            number,
            format!(
                "the cue ends ({}) before it starts ({})",
                end_text,
                left.trim()
            ),
        ));
    }
    Ok((start, end))
}

/// Parses SRT: blocks of a cue number, a timing line and text lines, separated by blank
/// lines.
pub(super) fn srt(text: &str) -> Result<Vec<Cue>, SubtitleError> {
    let lines = lines(text);
    if lines.iter().all(|l| blank(l)) {
        return Err(SubtitleError::file("the file is empty"));
    }
    cues(&lines, 0, false)
}

/// Parses WebVTT: the `WEBVTT` line and its header, then cues with optional identifiers,
/// with `NOTE`, `STYLE` and `REGION` blocks skipped.
pub(super) fn vtt(text: &str) -> Result<Vec<Cue>, SubtitleError> {
    let lines = lines(text);
    let Some(first) = lines.iter().position(|l| !blank(l)) else {
        return Err(SubtitleError::file("the file is empty"));
    };
    if !is_vtt_signature(lines[first].trim()) {
        return Err(SubtitleError::at(
            first + 1,
            format!("expected `WEBVTT`, found `{}`", lines[first].trim()),
        ));
    }
    // The header runs to the first blank line; a timing line ends it too, for files that
    // leave out that blank line.
    let mut i = first + 1;
    while i < lines.len() && !blank(lines[i]) && !lines[i].contains("-->") {
        i += 1;
    }
    cues(&lines, i, true)
}

fn cues(lines: &[&str], mut i: usize, vtt: bool) -> Result<Vec<Cue>, SubtitleError> {
    let mut cues = Vec::new();
    while i < lines.len() {
        let line = lines[i].trim();
        if line.is_empty() {
            i += 1;
            continue;
        }
        if vtt && is_vtt_block(line) {
            while i < lines.len() && !blank(lines[i]) {
                i += 1;
            }
            continue;
        }
        let timing_at = if line.contains("-->") {
            i
        } else {
            // An identifier: SRT's is the cue number, WebVTT's any text.
            if !vtt && !line.bytes().all(|b| b.is_ascii_digit()) {
                return Err(SubtitleError::at(
                    i + 1,
                    format!(
                        "expected a cue number or a timing line such as \
                         `00:00:01,000 --> 00:00:02,500`, found `{line}`"
                    ),
                ));
            }
            if i + 1 >= lines.len() || !lines[i + 1].contains("-->") {
                return Err(SubtitleError::at(
                    i + 2,
                    format!("expected a timing line after cue identifier `{line}`"),
                ));
            }
            i + 1
        };
        let (start_ms, end_ms) = timing(lines[timing_at], timing_at + 1)?;
        let mut text: Vec<&str> = Vec::new();
        let mut j = timing_at + 1;
        while j < lines.len() && !blank(lines[j]) {
            // A timing line inside the text means the blank line before the next cue is
            // missing; in SRT the line before it was that cue's number.
            if lines[j].contains("-->") && timing(lines[j], j + 1).is_ok() {
                if !vtt
                    && text
                        .last()
                        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
                {
                    text.pop();
                    j -= 1;
                }
                break;
            }
            text.push(lines[j].trim_end());
            j += 1;
        }
        cues.push(Cue {
            start_ms,
            end_ms,
            text: text.join("\n"),
        });
        i = j;
    }
    if cues.is_empty() {
        return Err(SubtitleError::file("the file has no cues"));
    }
    Ok(cues)
}
