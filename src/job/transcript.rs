//! A job's transcript: what its segments heard and what they made of it, read from their
//! results (`job_segments.result`) in order. Speech jobs record `phrases` (the heard text,
//! and its `translation` when they translate); subtitle jobs record `cues` (the cue's
//! text, and its `translation`).

use super::SegmentView;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// The role of the transcript file among a job output's files (`metadata.files`):
/// `{"lines": [TranscriptLine, …]}`, written by finalize, kept with the output.
pub const ROLE: &str = "transcript";

/// One phrase (or cue) of a transcript, its times in the input file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TranscriptLine {
    /// The segment that recorded it.
    pub segment: i32,
    pub start_ms: u64,
    pub end_ms: u64,
    /// What was heard (speech) or read (subtitles).
    pub text: String,
    /// Its translation, for jobs that translate.
    pub translation: Option<String>,
}

/// The lines of the segments that have a result, in the order of the input.
pub fn lines(segments: &[SegmentView]) -> Vec<TranscriptLine> {
    let mut sorted: Vec<&SegmentView> = segments.iter().collect();
    sorted.sort_by_key(|s| s.index);
    let mut lines = Vec::new();
    for segment in sorted {
        let Some(result) = &segment.result else {
            continue;
        };
        let items = result
            .get("phrases")
            .or_else(|| result.get("cues"))
            .and_then(Value::as_array);
        for item in items.into_iter().flatten() {
            let (Some(start_ms), Some(end_ms), Some(text)) = (
                item["start_ms"].as_u64(),
                item["end_ms"].as_u64(),
                item["text"].as_str(),
            ) else {
                continue;
            };
            lines.push(TranscriptLine {
                segment: segment.index,
                start_ms,
                end_ms,
                text: text.to_string(),
                translation: item["translation"].as_str().map(String::from),
            });
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::SegmentStatus;
    use serde_json::json;
    use uuid::Uuid;

    fn segment(index: i32, result: Option<Value>) -> SegmentView {
        SegmentView {
            id: Uuid::nil(),
            index,
            status: SegmentStatus::Completed,
            attempts: 1,
            max_attempts: 5,
            start_ms: None,
            end_ms: None,
            locked_by: None,
            last_error: None,
            input: None,
            result,
            finished_at: None,
        }
    }

    #[test]
    fn speech_phrases_and_subtitle_cues_in_the_input_s_order() {
        let speech = json!({"phrases": [
            {"start_ms": 5000, "end_ms": 6000, "text": "Hola.", "translation": "Hello."}
        ]});
        let subtitles = json!({"cues": [
            {"start_ms": 100, "end_ms": 900, "text": "Hi", "translation": "Hola"},
            {"end_ms": 1, "text": "no start: not a line"}
        ]});
        let heard = json!({"phrases": [{"start_ms": 7000, "end_ms": 8000, "text": "Bye."}]});
        let lines = lines(&[
            segment(1, Some(speech)),
            segment(0, Some(subtitles)),
            segment(2, None),
            segment(3, Some(heard)),
        ]);
        let texts: Vec<(i32, &str, Option<&str>)> = lines
            .iter()
            .map(|l| (l.segment, l.text.as_str(), l.translation.as_deref()))
            .collect();
        assert_eq!(
            texts,
            [
                (0, "Hi", Some("Hola")),
                (1, "Hola.", Some("Hello.")),
                (3, "Bye.", None)
            ]
        );
        assert_eq!((lines[1].start_ms, lines[1].end_ms), (5000, 6000));
    }
}
