//! Dubbing, shared by `video_translation` and `audio_translation`: a segment hears its
//! window, translates each phrase, speaks the translation and fits it to the phrase's
//! slot; finalize joins the segments' dubbed windows into one track.
//!
//! Each phrase's dub starts where the phrase started and may last until the next phrase
//! (or the window's end): speech longer than that is sped up within
//! `[pipeline] min_tempo..max_tempo`, then cut; shorter speech is followed by silence.
//! So the dub follows the speaker sentence by sentence, and every window's dub is exactly
//! as long as the window, which makes the whole track exactly as long as the input.

use super::context::{Pipeline, Stopwatch, fetch, pipeline_error, scratch, store, until_cancelled};
use super::speech::{self, FitRecord, PhraseRecord, SpeechResult};
use crate::pipeline::media::{self, Clip};
use crate::storage;
use crate::worker::{HandlerError, SegmentContext};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Runs one dubbing segment; its result is a [`SpeechResult`] with the dubbed window's key.
pub async fn run_segment(p: &Pipeline, ctx: &SegmentContext) -> Result<Value, HandlerError> {
    let segment = &ctx.segment;
    let input = speech::segment_input(ctx)?;
    let target = input.target_language.ok_or_else(|| {
        HandlerError::Fatal(format!(
            "segment {} has no target language to dub into",
            segment.index
        ))
    })?;
    until_cancelled(&ctx.cancel, async {
        let name = format!("segment-{}", segment.index);
        let dir = scratch(segment.job_id, &name, segment.attempt)?;
        let mut watch = Stopwatch::start();
        let phrases = speech::hear(p, &input, dir.path(), &mut watch).await?;
        let texts: Vec<String> = phrases.iter().map(|ph| ph.text.clone()).collect();
        let translations = p
            .engines
            .translator
            .translate(&texts, input.source_language, target)
            .await
            .map_err(|e| pipeline_error(e, None))?;
        if translations.len() != texts.len() {
            return Err(HandlerError::Retryable(format!(
                "{} returned {} translations for {} texts",
                p.engines.translator.name(),
                translations.len(),
                texts.len()
            )));
        }
        watch.lap("translate");

        let length = input.window.duration_ms();
        let mut clips = Vec::new();
        let mut records = Vec::new();
        for (i, (phrase, translation)) in phrases.iter().zip(&translations).enumerate() {
            let slot_end = phrases.get(i + 1).map_or(length, |next| next.start_ms);
            let slot = slot_end.min(length).saturating_sub(phrase.start_ms);
            let mut fit = None;
            if slot > 0 && !translation.trim().is_empty() {
                let spoken = dir.path().join(format!("speech-{i}.wav"));
                p.engines
                    .text_to_speech
                    .synthesize(translation, target, &spoken)
                    .await
                    .map_err(|e| pipeline_error(e, None))?;
                watch.lap("synthesize");
                let fitted = dir.path().join(format!("fitted-{i}.wav"));
                let done = media::fit_to_duration(&spoken, slot, &p.fit_options(), &fitted)
                    .await
                    .map_err(|e| pipeline_error(e, None))?;
                watch.lap("fit");
                fit = Some(FitRecord::from(done));
                clips.push(Clip {
                    offset_ms: phrase.start_ms,
                    path: fitted,
                });
            }
            records.push(PhraseRecord {
                start_ms: input.window.start_ms + phrase.start_ms,
                end_ms: input.window.start_ms + phrase.end_ms,
                text: phrase.text.clone(),
                translation: Some(translation.clone()),
                fit,
            });
        }
        let dub = dir.path().join("dub.wav");
        media::place_clips(&clips, length, &dub)
            .await
            .map_err(|e| pipeline_error(e, None))?;
        let key = storage::segment_key(
            segment.job_id,
            segment.index,
            segment.run,
            segment.attempt,
            "dub.wav",
        );
        store(&p.storage, &key, &dub).await?;
        watch.lap("upload");
        let result = SpeechResult {
            worker: ctx.worker_id.clone(),
            attempt: segment.attempt,
            window: input.window,
            phrases: records,
            audio_key: Some(key),
            elapsed_ms: watch.laps(),
        };
        Ok(serde_json::to_value(result).expect("serializable"))
    })
    .await
}

/// Downloads the audio every segment stored (`keys`, in order) into `dir` and joins it into
/// one WAV in the working format; returns its path and duration.
pub async fn join_segments(
    p: &Pipeline,
    keys: &[&str],
    dir: &Path,
) -> Result<(PathBuf, u64), HandlerError> {
    let mut parts = Vec::with_capacity(keys.len());
    for (i, key) in keys.iter().enumerate() {
        let part = dir.join(format!("part-{i:05}.wav"));
        fetch(&p.storage, key, &part).await?;
        parts.push(part);
    }
    let joined = dir.join("joined.wav");
    let ms = media::concat_wav(&parts, &joined)
        .await
        .map_err(|e| pipeline_error(e, None))?;
    for part in parts {
        let _ = tokio::fs::remove_file(part).await;
    }
    Ok((joined, ms))
}

/// The dubbed track of a whole input: the segments' dubbed windows joined. It must last
/// exactly as long as the plan said the input does; anything else is a bug upstream.
pub async fn dubbed_track(
    p: &Pipeline,
    results: &[SpeechResult],
    duration_ms: u64,
    dir: &Path,
) -> Result<PathBuf, HandlerError> {
    let keys: Vec<&str> = results
        .iter()
        .enumerate()
        .map(|(i, r)| {
            r.audio_key.as_deref().ok_or_else(|| {
                HandlerError::Fatal(format!("segment {i}'s result has no dubbed audio"))
            })
        })
        .collect::<Result<_, _>>()?;
    let (track, ms) = join_segments(p, &keys, dir).await?;
    if ms.abs_diff(duration_ms) > 1 {
        return Err(HandlerError::Fatal(format!(
            "the dubbed segments last {ms} ms together, the input {duration_ms} ms"
        )));
    }
    Ok(track)
}
