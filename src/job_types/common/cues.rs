//! Subtitle inputs, shared by `subtitle_translation` and `subtitle_to_audio`: the file
//! read and parsed (strictly enough to refuse garbage with the line at fault, leniently
//! enough for real-world files), and its cues cut into batches, one per segment.
//!
//! A batch's cues travel in its segment's `input` (a few kilobytes of text), so unlike
//! speech media nothing per segment is stored in the object store.

use super::context::{InputMedia, Pipeline, retryable, until_cancelled};
use crate::pipeline::subtitles::{self, Cue, SubtitleFormat};
use crate::worker::{HandlerError, StepContext};
use std::ops::Range;

/// A job's subtitle input, read.
pub struct SubtitleInput {
    pub media: InputMedia,
    pub format: SubtitleFormat,
    /// In the file's order; at least one.
    pub cues: Vec<Cue>,
}

/// Reads and parses the job's input. Anything but a subtitle file (too large, binary,
/// empty, malformed) is fatal, with the line at fault when there is one.
pub async fn read(p: &Pipeline, ctx: &StepContext) -> Result<SubtitleInput, HandlerError> {
    let media = InputMedia::load(&ctx.pool, &ctx.job).await?;
    until_cancelled(&ctx.cancel, async {
        let max = p.settings.max_subtitle_bytes;
        let size = match p.storage.head(&media.s3_key).await {
            Ok(Some(info)) => info.size,
            Ok(None) => {
                return Err(HandlerError::Fatal(format!(
                    "{}: the store has no object at `{}` (was the upload completed?)",
                    media.describe(),
                    media.s3_key
                )));
            }
            Err(e) => return Err(retryable(&format!("reading {}", media.describe()), e)),
        };
        // Checked before downloading: a video uploaded as subtitles is not read whole.
        if size > max {
            return Err(HandlerError::Fatal(format!(
                "{}: {size} bytes is more than a subtitle file may be \
                 ({max}, pipeline.max_subtitle_bytes)",
                media.describe()
            )));
        }
        let (got, bytes) = p
            .storage
            .get_bytes_info(&media.s3_key)
            .await
            .map_err(|e| retryable(&format!("downloading {}", media.describe()), e))?;
        media.check_sealed(&got)?;
        let invalid = |e: crate::pipeline::SubtitleError| {
            HandlerError::Fatal(format!(
                "{}: not a usable subtitle file: {e}",
                media.describe()
            ))
        };
        let text = subtitles::decode(&bytes).map_err(invalid)?;
        let format = subtitles::detect(&text).map_err(invalid)?;
        let cues = subtitles::parse_as(&text, format).map_err(invalid)?;
        Ok(SubtitleInput {
            media: media.clone(),
            format,
            cues,
        })
    })
    .await
}

/// The batches of `cues` as `[pipeline]` sizes them.
pub fn batches(p: &Pipeline, cues: &[Cue]) -> Vec<Range<usize>> {
    subtitles::batch(
        cues,
        p.settings.subtitle_batch_cues as usize,
        p.settings.subtitle_batch_seconds * 1000,
    )
}

/// A cue's time as a segment row's `start_ms`/`end_ms`.
pub fn ms(v: u64) -> Result<i32, HandlerError> {
    i32::try_from(v)
        .map_err(|_| HandlerError::Fatal(format!("a cue at {v} ms is beyond 596 hours")))
}
