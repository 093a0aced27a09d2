//! Phrases from timed words: what every speech-to-text engine that gives word timings
//! (pocketsphinx, whisper) turns them into. A phrase is what becomes one subtitle cue and
//! one translated, spoken unit of a dub: a sentence, or a readable part of a long one.

use super::traits::Phrase;
use crate::pipeline::media::wav::Wav;

/// A pause at least this long between two words ends a phrase.
const PHRASE_GAP_MS: u64 = 400;
/// A phrase grows no longer than this: a subtitle must be readable in its time.
const PHRASE_MAX_MS: u64 = 6_000;
const PHRASE_MAX_WORDS: usize = 14;

/// A recognized word and when it was spoken, from the start of the audio; `None` as
/// text marks the end of an utterance (pocketsphinx's `</s>`, a sentence for whisper).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub start_ms: u64,
    pub end_ms: u64,
    /// The word; `None` marks the end of an utterance.
    pub text: Option<String>,
}

/// Groups words into phrases: a new phrase starts after an utterance ends, after a pause
/// of 400 ms, or when a phrase would outgrow its length limits.
pub fn group_words(words: &[Word]) -> Vec<Phrase> {
    let mut phrases: Vec<Phrase> = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    let (mut start, mut end) = (0, 0);
    let mut flush = |current: &mut Vec<&str>, start: u64, end: u64| {
        if !current.is_empty() {
            phrases.push(Phrase {
                start_ms: start,
                end_ms: end.max(start + 1),
                text: current.join(" "),
            });
            current.clear();
        }
    };
    for word in words {
        let Some(text) = &word.text else {
            flush(&mut current, start, end);
            continue;
        };
        if !current.is_empty()
            && (word.start_ms.saturating_sub(end) >= PHRASE_GAP_MS
                || word.end_ms.saturating_sub(start) > PHRASE_MAX_MS
                || current.len() >= PHRASE_MAX_WORDS)
        {
            flush(&mut current, start, end);
        }
        if current.is_empty() {
            start = word.start_ms;
        }
        current.push(text);
        end = word.end_ms;
    }
    flush(&mut current, start, end);
    phrases
}

/// Frames of this length are voiced or not, for [`snap_to_speech`].
const FRAME_MS: u64 = 10;
/// A frame is voiced when its RMS level is above this (-40 dBFS).
const VOICED_RMS: f64 = 328.0;
/// How far [`snap_to_speech`] moves a phrase's start or end.
const SNAP_MAX_MS: u64 = 600;

/// Which 10 ms frames of a mono 16-bit WAV are voiced.
fn voiced_frames(wav: &Wav) -> Vec<bool> {
    let per_frame = (wav.spec.sample_rate as u64 * FRAME_MS / 1000).max(1) as usize;
    let step = wav.spec.frame_bytes();
    let samples: Vec<f64> = wav
        .data
        .chunks_exact(step)
        .map(|frame| i16::from_le_bytes([frame[0], frame[1]]) as f64)
        .collect();
    samples
        .chunks(per_frame)
        .map(|chunk| {
            let power = chunk.iter().map(|s| s * s).sum::<f64>() / chunk.len() as f64;
            power.sqrt() > VOICED_RMS
        })
        .collect()
}

/// Moves each phrase's start and end onto the edges of the speech around them. Whisper's
/// word times come from its attention, and at a phrase's edges they are often a few
/// hundred milliseconds early or late; the audio says where the voice starts and stops.
/// A start in silence moves forward to the first voiced frame, a start in speech back
/// to where that speech began; an end likewise. No edge moves more than 600 ms, past
/// the other edge, or into the neighbouring phrases.
pub fn snap_to_speech(phrases: &mut [Phrase], wav: &Wav) {
    let voiced = voiced_frames(wav);
    let frames = voiced.len() as u64;
    if frames == 0 {
        return;
    }
    let at = |ms: u64| voiced[((ms / FRAME_MS).min(frames - 1)) as usize];
    for i in 0..phrases.len() {
        let floor = if i == 0 { 0 } else { phrases[i - 1].end_ms };
        let ceiling = phrases
            .get(i + 1)
            .map_or(frames * FRAME_MS, |next| next.start_ms);
        let Phrase {
            mut start_ms,
            mut end_ms,
            ..
        } = phrases[i];
        let (start0, end0) = (start_ms, end_ms);
        if at(start_ms) {
            while start_ms >= floor + FRAME_MS
                && start0 - start_ms < SNAP_MAX_MS
                && at(start_ms - FRAME_MS)
            {
                start_ms -= FRAME_MS;
            }
        } else {
            let mut t = start_ms;
            while t + FRAME_MS < end_ms && t - start0 < SNAP_MAX_MS && !at(t) {
                t += FRAME_MS;
            }
            if at(t) {
                start_ms = t;
            }
        }
        let last = end_ms.saturating_sub(1).max(start_ms);
        if at(last) {
            while end_ms + FRAME_MS <= ceiling && end_ms - end0 < SNAP_MAX_MS && at(end_ms) {
                end_ms += FRAME_MS;
            }
        } else {
            let mut t = last;
            while t > start_ms + FRAME_MS && end0 - t < SNAP_MAX_MS && !at(t) {
                t -= FRAME_MS;
            }
            if at(t) {
                end_ms = (t / FRAME_MS + 1) * FRAME_MS;
            }
        }
        phrases[i].start_ms = start_ms;
        phrases[i].end_ms = end_ms.max(start_ms + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::media::wav::WavSpec;

    /// A 16 kHz WAV, loud in the windows given (ms), silent elsewhere.
    fn wav(length_ms: u64, loud: &[(u64, u64)]) -> Wav {
        let spec = WavSpec {
            sample_rate: 16_000,
            channels: 1,
        };
        let mut data = Vec::new();
        for n in 0..length_ms * 16 {
            let ms = n / 16;
            let on = loud.iter().any(|&(a, b)| (a..b).contains(&ms));
            let v: i16 = if on {
                if n % 2 == 0 { 3000 } else { -3000 }
            } else {
                0
            };
            data.extend_from_slice(&v.to_le_bytes());
        }
        Wav { spec, data }
    }

    fn phrase(start_ms: u64, end_ms: u64) -> Phrase {
        Phrase {
            start_ms,
            end_ms,
            text: "x".into(),
        }
    }

    #[test]
    fn edges_move_onto_the_speech() {
        let audio = wav(6_000, &[(1_200, 3_000), (4_000, 5_000)]);
        // Early start and early end; late start and late end.
        let mut phrases = vec![phrase(850, 2_810), phrase(4_200, 5_300)];
        snap_to_speech(&mut phrases, &audio);
        assert_eq!(
            (phrases[0].start_ms, phrases[0].end_ms),
            (1_200, 3_000),
            "{phrases:?}"
        );
        assert_eq!((phrases[1].start_ms, phrases[1].end_ms), (4_000, 5_000));
        // Never more than 600 ms, nor into the phrase before.
        let mut far = vec![phrase(100, 1_300), phrase(2_000, 2_500)];
        snap_to_speech(&mut far, &audio);
        assert_eq!((far[0].start_ms, far[0].end_ms), (100, 1_900), "{far:?}");
        assert_eq!((far[1].start_ms, far[1].end_ms), (1_900, 3_000), "{far:?}");
        // Silence everywhere: nothing moves.
        let mut quiet = vec![phrase(100, 900)];
        snap_to_speech(&mut quiet, &wav(2_000, &[]));
        assert_eq!((quiet[0].start_ms, quiet[0].end_ms), (100, 900));
    }

    #[test]
    fn long_speech_is_split_into_readable_phrases() {
        let words: Vec<Word> = (0..40)
            .map(|i| Word {
                start_ms: i * 300,
                end_ms: i * 300 + 250,
                text: Some(format!("w{i}")),
            })
            .collect();
        let phrases = group_words(&words);
        assert!(phrases.len() >= 3, "{phrases:?}");
        for p in &phrases {
            assert!(p.end_ms - p.start_ms <= PHRASE_MAX_MS, "{p:?}");
            assert!(p.text.split(' ').count() <= PHRASE_MAX_WORDS);
        }
        let all: Vec<String> = phrases.iter().map(|p| p.text.clone()).collect();
        assert_eq!(all.join(" ").split(' ').count(), 40);
    }
}
