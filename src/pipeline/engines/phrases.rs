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
/// A frame is voiced when its RMS level is above this (about -47 dBFS): the quiet
/// consonants at a sentence's edges are.
const VOICED_RMS: f64 = 150.0;
/// How far [`snap_to_speech`] moves an edge across speech.
const SNAP_MAX_MS: u64 = 600;
/// A pause this short inside speech (a stop consonant's closure) does not end it.
const SNAP_GAP_MS: u64 = 150;

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
/// An edge in silence moves across the silence to the voice inside the phrase; an edge in
/// speech moves outwards to where that speech (pauses under 150 ms included) begins or
/// ends, at most 600 ms, and never into the neighbouring phrases.
///
/// A phrase with no voiced frame at all is left out: Whisper heard words in a pause (a
/// "Thank you." in the silence at a window's end). Audio with no voiced frame anywhere is
/// too quiet to tell, and keeps its phrases as they are.
pub fn snap_to_speech(mut phrases: Vec<Phrase>, wav: &Wav) -> Vec<Phrase> {
    let voiced = voiced_frames(wav);
    if !voiced.contains(&true) {
        return phrases;
    }
    let mut voiceless = vec![false; phrases.len()];
    // Frame indexes from here on.
    let last_frame = voiced.len() as u64 - 1;
    let frame = |ms: u64| (ms / FRAME_MS).min(last_frame);
    let (max_move, max_gap) = (SNAP_MAX_MS / FRAME_MS, SNAP_GAP_MS / FRAME_MS);
    let on = |f: u64| voiced[f as usize];
    for i in 0..phrases.len() {
        let floor = if i == 0 {
            0
        } else {
            frame(phrases[i - 1].end_ms)
        };
        let ceiling = phrases
            .get(i + 1)
            .map_or(last_frame, |next| frame(next.start_ms).saturating_sub(1));
        let (mut first, mut last) = (
            frame(phrases[i].start_ms),
            frame(phrases[i].end_ms.saturating_sub(1)),
        );
        if last < first {
            continue;
        }
        if !(first..=last).any(on) {
            voiceless[i] = true;
            continue;
        }
        if on(first) {
            let mut earliest = first;
            let mut f = first;
            while f > floor && first - f < max_move && earliest - f <= max_gap {
                f -= 1;
                if on(f) {
                    earliest = f;
                }
            }
            first = earliest;
        } else if let Some(f) = (first..=last).find(|&f| on(f)) {
            first = f;
        }
        if on(last) {
            let mut latest = last;
            let mut f = last;
            while f < ceiling && f - last < max_move && f - latest <= max_gap {
                f += 1;
                if on(f) {
                    latest = f;
                }
            }
            last = latest;
        } else if let Some(f) = (first..=last).rev().find(|&f| on(f)) {
            last = f;
        }
        phrases[i].start_ms = first * FRAME_MS;
        phrases[i].end_ms = (last + 1) * FRAME_MS;
    }
    let mut keep = voiceless.iter().map(|v| !v);
    phrases.retain(|_| keep.next().expect("one flag per phrase"));
    phrases
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
        let phrases = snap_to_speech(vec![phrase(850, 2_810), phrase(4_200, 5_300)], &audio);
        assert_eq!(
            (phrases[0].start_ms, phrases[0].end_ms),
            (1_200, 3_000),
            "{phrases:?}"
        );
        assert_eq!((phrases[1].start_ms, phrases[1].end_ms), (4_000, 5_000));
        // Across any silence inside the phrase; across speech, 600 ms at most and never
        // into the phrase before.
        let far = vec![
            phrase(100, 1_300),
            phrase(2_000, 2_500),
            phrase(3_500, 5_900),
        ];
        let far = snap_to_speech(far, &audio);
        assert_eq!((far[0].start_ms, far[0].end_ms), (1_200, 1_900), "{far:?}");
        assert_eq!((far[1].start_ms, far[1].end_ms), (1_900, 3_000), "{far:?}");
        assert_eq!((far[2].start_ms, far[2].end_ms), (4_000, 5_000), "{far:?}");
        // A short pause inside speech is crossed, a long one is not.
        let stops = wav(4_000, &[(1_000, 1_500), (1_600, 2_000), (2_500, 3_000)]);
        let p = snap_to_speech(vec![phrase(1_600, 2_700)], &stops);
        assert_eq!((p[0].start_ms, p[0].end_ms), (1_000, 3_000), "{p:?}");
        let p = snap_to_speech(vec![phrase(1_800, 1_900)], &stops);
        assert_eq!((p[0].start_ms, p[0].end_ms), (1_200, 2_000), "{p:?}");
        // Words heard in a pause are left out.
        let p = snap_to_speech(vec![phrase(3_100, 3_300), phrase(4_200, 5_300)], &audio);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!((p[0].start_ms, p[0].end_ms), (4_000, 5_000));
        // Silence everywhere: nothing moves.
        let quiet = snap_to_speech(vec![phrase(100, 900)], &wav(2_000, &[]));
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
