//! Subtitles: SRT and WebVTT read and written, checked, and batched into segments.
//!
//! Parsing is strict about structure (every error names the line and what is wrong) and
//! lenient about what real files contain: a UTF-8 byte order mark, CRLF line ends, a
//! missing final newline, extra blank lines, WebVTT headers, `NOTE`/`STYLE`/`REGION`
//! blocks and cue settings, hours left out of a timestamp, a comma or a dot before the
//! milliseconds, and Latin-1 files that are not UTF-8.

mod cue;
mod parse;

use super::error::SubtitleError;
use std::ops::Range;

pub use cue::Cue;
pub use parse::{format_timestamp, parse_timestamp};

/// A subtitle file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubtitleFormat {
    Srt,
    WebVtt,
}

impl SubtitleFormat {
    /// The file extension, without a dot.
    pub fn extension(self) -> &'static str {
        match self {
            SubtitleFormat::Srt => "srt",
            SubtitleFormat::WebVtt => "vtt",
        }
    }

    /// The format of a file extension (`srt`, `vtt`; any case, with or without a dot).
    pub fn from_extension(ext: &str) -> Option<Self> {
        match ext.trim_start_matches('.').to_ascii_lowercase().as_str() {
            "srt" => Some(SubtitleFormat::Srt),
            "vtt" | "webvtt" => Some(SubtitleFormat::WebVtt),
            _ => None,
        }
    }

    /// The media type to serve the file with.
    pub fn mime_type(self) -> &'static str {
        match self {
            SubtitleFormat::Srt => "application/x-subrip",
            SubtitleFormat::WebVtt => "text/vtt",
        }
    }
}

/// Decodes a subtitle file's bytes: UTF-8 (with or without a byte order mark), or, when
/// that fails, Latin-1, which older SRT files often are. Binary data is refused.
pub fn decode(bytes: &[u8]) -> Result<String, SubtitleError> {
    if bytes.contains(&0) {
        return Err(SubtitleError::file(
            "binary data, not a subtitle file (SRT or WebVTT)",
        ));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    Ok(match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => bytes.iter().map(|&b| b as char).collect(),
    })
}

/// Which format `text` is in: WebVTT if it starts with `WEBVTT`, SRT if it has a cue
/// timing line; anything else is refused.
pub fn detect(text: &str) -> Result<SubtitleFormat, SubtitleError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let Some(first) = text.lines().find(|l| !l.trim().is_empty()) else {
        return Err(SubtitleError::file("the file is empty"));
    };
    if parse::is_vtt_signature(first.trim()) {
        return Ok(SubtitleFormat::WebVtt);
    }
    if text.lines().any(|l| l.contains("-->")) {
        return Ok(SubtitleFormat::Srt);
    }
    Err(SubtitleError::file(
        "not SRT or WebVTT: no `WEBVTT` header and no cue timing line \
         such as `00:00:01,000 --> 00:00:02,500`",
    ))
}

/// Parses SRT or WebVTT, whichever `text` is. Returns at least one cue.
pub fn parse(text: &str) -> Result<Vec<Cue>, SubtitleError> {
    parse_as(text, detect(text)?)
}

/// Parses `text` as `format`. Returns at least one cue.
pub fn parse_as(text: &str, format: SubtitleFormat) -> Result<Vec<Cue>, SubtitleError> {
    match format {
        SubtitleFormat::Srt => parse::srt(text),
        SubtitleFormat::WebVtt => parse::vtt(text),
    }
}

/// Writes cues as `format`. Blank lines inside a cue's text are dropped (they would end
/// the cue), and in WebVTT `-->` in text becomes `->` (it would start a new one).
pub fn write(cues: &[Cue], format: SubtitleFormat) -> String {
    let mut out = String::new();
    let separator = match format {
        SubtitleFormat::Srt => ',',
        SubtitleFormat::WebVtt => {
            out.push_str("WEBVTT\n\n");
            '.'
        }
    };
    for (i, cue) in cues.iter().enumerate() {
        if format == SubtitleFormat::Srt {
            out.push_str(&format!("{}\n", i + 1));
        }
        out.push_str(&format!(
            "{} --> {}\n",
            format_timestamp(cue.start_ms, separator),
            format_timestamp(cue.end_ms, separator)
        ));
        for line in cue.text.lines().filter(|l| !l.trim().is_empty()) {
            match format {
                SubtitleFormat::Srt => out.push_str(line.trim_end()),
                SubtitleFormat::WebVtt => out.push_str(&line.trim_end().replace("-->", "->")),
            }
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

/// Checks that every cue ends after it starts and that cues are in order without
/// overlapping: what the pipeline's own subtitle outputs must satisfy.
pub fn validate(cues: &[Cue]) -> Result<(), SubtitleError> {
    if cues.is_empty() {
        return Err(SubtitleError::file("no cues"));
    }
    for (i, cue) in cues.iter().enumerate() {
        if cue.end_ms <= cue.start_ms {
            return Err(SubtitleError::file(format!(
                "cue {} ends at {} but starts at {}",
                i + 1,
                format_timestamp(cue.end_ms, ','),
                format_timestamp(cue.start_ms, ',')
            )));
        }
        if let Some(prev) = i.checked_sub(1).map(|p| &cues[p])
            && cue.start_ms < prev.end_ms
        {
            return Err(SubtitleError::file(format!(
                "cue {} starts at {}, before cue {} ends at {}",
                i + 1,
                format_timestamp(cue.start_ms, ','),
                i,
                format_timestamp(prev.end_ms, ',')
            )));
        }
    }
    Ok(())
}

/// Splits cues into consecutive batches, one per segment: a batch holds at most
/// `max_cues` cues and spans at most `max_span_ms` from its first cue's start to its last
/// cue's end (a single longer cue still gets a batch of its own). The ranges index `cues`
/// and cover all of it in order.
pub fn batch(cues: &[Cue], max_cues: usize, max_span_ms: u64) -> Vec<Range<usize>> {
    let max_cues = max_cues.max(1);
    let mut batches = Vec::new();
    let mut start = 0;
    for (i, cue) in cues.iter().enumerate() {
        let span = cue.end_ms.saturating_sub(cues[start].start_ms);
        if i > start && (i - start >= max_cues || span > max_span_ms) {
            batches.push(start..i);
            start = i;
        }
    }
    if start < cues.len() {
        batches.push(start..cues.len());
    }
    batches
}

#[cfg(test)]
mod tests;
