//! Audio: windows extracted for recognition, synthesized speech fitted to its time slot,
//! and the pieces assembled into one track and encoded.

use super::wav::{Wav, WavSpec, WavWriter};
use super::{WORK_SPEC, Window, ensure_exists, ffmpeg, ffmpeg_on, probe, scratch, secs};
use crate::pipeline::{PipelineError, Result};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Speech recognizers want 16 kHz mono.
const SPEECH_SPEC: WavSpec = WavSpec {
    sample_rate: 16_000,
    channels: 1,
};

/// Extracts `window` of the first audio stream through ffmpeg into a WAV of `spec`,
/// exactly as long as the window: audio ending early is padded with silence.
async fn extract(input: &Path, window: Window, spec: WavSpec, out: &Path) -> Result<()> {
    if window.duration_ms() == 0 {
        return Err(PipelineError::InvalidInput(format!(
            "empty window {}..{} ms",
            window.start_ms, window.end_ms
        )));
    }
    ensure_exists(input).await?;
    let frames = spec.frames_in(window.duration_ms());
    ffmpeg_on(
        input,
        [
            // Before -i, -ss seeks the input and decodes from there; timestamps start at 0.
            OsString::from("-ss"),
            secs(window.start_ms),
            "-i".into(),
            input.into(),
            "-map".into(),
            "0:a:0".into(),
            "-af".into(),
            format!(
                "aresample={},apad=whole_len={frames},atrim=end_sample={frames}",
                spec.sample_rate
            )
            .into(),
            "-ac".into(),
            spec.channels.to_string().into(),
            "-c:a".into(),
            "pcm_s16le".into(),
            "-f".into(),
            "wav".into(),
            out.into(),
        ],
    )
    .await?;
    Ok(())
}

/// Extracts `window` of the input's audio as 16 kHz mono 16-bit WAV, for speech recognition.
pub async fn extract_speech(input: &Path, window: Window, out: &Path) -> Result<()> {
    extract(input, window, SPEECH_SPEC, out).await
}

/// Extracts `window` of the input's audio at its own sample rate and channels as 16-bit
/// WAV (lossless for the usual 16-bit sources).
pub async fn extract_audio(input: &Path, window: Window, out: &Path) -> Result<()> {
    let info = probe(input).await?;
    let audio = info.audio().ok_or_else(|| PipelineError::InvalidMedia {
        path: input.to_path_buf(),
        reason: "it has no audio stream".into(),
    })?;
    let spec = WavSpec {
        sample_rate: audio.sample_rate.unwrap_or(48_000),
        channels: audio.channels.unwrap_or(2).clamp(1, 8) as u16,
    };
    extract(input, window, spec, out).await
}

/// Converts any audio to the working format ([`WORK_SPEC`]).
pub async fn to_work_wav(input: &Path, out: &Path) -> Result<()> {
    ensure_exists(input).await?;
    ffmpeg_on(
        input,
        [
            OsString::from("-i"),
            input.into(),
            "-map".into(),
            "0:a:0".into(),
            "-ar".into(),
            WORK_SPEC.sample_rate.to_string().into(),
            "-ac".into(),
            WORK_SPEC.channels.to_string().into(),
            "-c:a".into(),
            "pcm_s16le".into(),
            "-f".into(),
            "wav".into(),
            out.into(),
        ],
    )
    .await?;
    Ok(())
}

/// How far synthesized speech may be sped up or slowed down to fit its slot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitOptions {
    /// Slowest tempo (1.0 never slows speech down: a short dub is padded with silence).
    pub min_tempo: f64,
    /// Fastest tempo; speech still too long at this tempo is cut at the end.
    pub max_tempo: f64,
}

impl Default for FitOptions {
    fn default() -> Self {
        // Speech beyond twice its speed stops being understandable; slowed-down speech
        // sounds drunk, so a short dub gets silence instead.
        Self {
            min_tempo: 1.0,
            max_tempo: 2.0,
        }
    }
}

/// What [`fit_to_duration`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    /// The speech's duration before fitting.
    pub speech_ms: u64,
    /// The tempo applied (1.0: none).
    pub tempo: f64,
    /// Silence added at the end.
    pub padded_ms: u64,
    /// Speech cut off at the end because even `max_tempo` was not enough.
    pub trimmed_ms: u64,
}

/// `atempo` stages for `tempo`: each stage within 0.5–2.0, where ffmpeg's atempo blends
/// samples (above 2.0 it skips them, which is audible).
fn atempo_chain(tempo: f64) -> Vec<String> {
    let mut left = tempo;
    let mut stages = Vec::new();
    while left > 2.0 {
        stages.push(format!("atempo={:.6}", 2.0));
        left /= 2.0;
    }
    while left < 0.5 {
        stages.push(format!("atempo={:.6}", 0.5));
        left /= 0.5;
    }
    if (left - 1.0).abs() > 1e-6 {
        stages.push(format!("atempo={left:.6}"));
    }
    stages
}

/// Fits speech to exactly `target_ms`: changes its tempo within `options`' bounds so it
/// fills the slot, then pads the end with silence or cuts it (with a short fade), so the
/// output, in [`WORK_SPEC`], is exactly the target's number of samples.
pub async fn fit_to_duration(
    input: &Path,
    target_ms: u64,
    options: &FitOptions,
    out: &Path,
) -> Result<Fit> {
    if target_ms == 0 {
        return Err(PipelineError::InvalidInput(
            "fit to a duration of 0 ms".into(),
        ));
    }
    let (min, max) = (options.min_tempo, options.max_tempo);
    if !(0.25..=4.0).contains(&min) || !(0.25..=4.0).contains(&max) || min > max {
        return Err(PipelineError::InvalidInput(format!(
            "tempo bounds {min}..{max} are outside 0.25..4.0 or reversed"
        )));
    }
    let dir = scratch()?;
    let work = dir.path().join("speech.wav");
    to_work_wav(input, &work).await?;
    let speech = Wav::read(&work).await?;
    let speech_ms = speech.duration_ms();
    let tempo = if speech_ms == 0 {
        1.0
    } else {
        (speech_ms as f64 / target_ms as f64).clamp(min, max)
    };
    let target = WORK_SPEC.frames_in(target_ms);
    let fitted = (speech.frames() as f64 / tempo).round() as u64;
    let mut filters = atempo_chain(tempo);
    if fitted > target {
        // A click where speech is cut off is worse than a quick fade.
        let fade = WORK_SPEC.frames_in(30).min(target);
        filters.push(format!(
            "afade=t=out:start_sample={}:nb_samples={fade}",
            target - fade
        ));
    }
    filters.push(format!("apad=whole_len={target},atrim=end_sample={target}"));
    ffmpeg([
        OsString::from("-i"),
        work.into(),
        "-af".into(),
        filters.join(",").into(),
        "-ar".into(),
        WORK_SPEC.sample_rate.to_string().into(),
        "-ac".into(),
        "1".into(),
        "-c:a".into(),
        "pcm_s16le".into(),
        "-f".into(),
        "wav".into(),
        out.into(),
    ])
    .await?;
    Ok(Fit {
        speech_ms,
        tempo,
        padded_ms: WORK_SPEC.ms_of(target.saturating_sub(fitted)),
        trimmed_ms: WORK_SPEC.ms_of(fitted.saturating_sub(target)),
    })
}

/// Writes `ms` milliseconds of silence in the working format.
pub async fn silence(ms: u64, out: &Path) -> Result<()> {
    let mut w = WavWriter::create(out, WORK_SPEC).await?;
    w.silence(WORK_SPEC.frames_in(ms)).await?;
    w.finish().await
}

/// Reads a WAV in the working format, converting it first if it is in another.
async fn read_work(path: &Path, dir: &Path, n: usize) -> Result<Wav> {
    match Wav::read(path).await {
        Ok(wav) if wav.spec == WORK_SPEC => Ok(wav),
        _ => {
            let converted = dir.join(format!("{n}.wav"));
            to_work_wav(path, &converted).await?;
            Wav::read(&converted).await
        }
    }
}

/// Joins audio files end to end into one WAV in the working format, sample-exact:
/// the output's length is the sum of the inputs'. Returns its duration in ms.
pub async fn concat_wav(inputs: &[PathBuf], out: &Path) -> Result<u64> {
    let dir = scratch()?;
    let mut w = WavWriter::create(out, WORK_SPEC).await?;
    for (n, input) in inputs.iter().enumerate() {
        let wav = read_work(input, dir.path(), n).await?;
        w.write(&wav.data).await?;
    }
    let ms = WORK_SPEC.ms_of(w.frames());
    w.finish().await?;
    Ok(ms)
}

/// An audio clip to be placed at `offset_ms` of a track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clip {
    pub offset_ms: u64,
    pub path: PathBuf,
}

/// Builds a track of exactly `total_ms` with each clip starting at its offset and silence
/// between them (for subtitle_to_audio: each cue's speech at its cue's time). A clip that
/// runs into the next clip's offset, or past the end, is cut there: fit clips to their
/// slots first to avoid that. Returns the milliseconds cut off.
pub async fn place_clips(clips: &[Clip], total_ms: u64, out: &Path) -> Result<u64> {
    let dir = scratch()?;
    let mut order: Vec<&Clip> = clips.iter().collect();
    order.sort_by_key(|c| c.offset_ms);
    let total = WORK_SPEC.frames_in(total_ms);
    let frame = WORK_SPEC.frame_bytes();
    let mut w = WavWriter::create(out, WORK_SPEC).await?;
    let mut cut_frames = 0;
    for (n, clip) in order.iter().enumerate() {
        let start = WORK_SPEC.frames_in(clip.offset_ms).min(total);
        let limit = order
            .get(n + 1)
            .map(|next| WORK_SPEC.frames_in(next.offset_ms).min(total))
            .unwrap_or(total);
        let wav = read_work(&clip.path, dir.path(), n).await?;
        // An earlier clip may have been placed past this offset only if offsets repeat.
        let start = start.max(w.frames());
        w.silence(start - w.frames()).await?;
        let room = limit.saturating_sub(start);
        let take = wav.frames().min(room);
        cut_frames += wav.frames() - take;
        w.write(&wav.data[..take as usize * frame]).await?;
    }
    let written = w.frames();
    w.silence(total - written).await?;
    w.finish().await?;
    Ok(WORK_SPEC.ms_of(cut_frames))
}

/// An audio output format a job can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioFormat {
    /// AAC in an MP4 container.
    M4a,
    Mp3,
    /// 16-bit PCM.
    Wav,
}

impl AudioFormat {
    /// The format named by a file extension or a request (`m4a`, `aac`, `mp3`, `wav`).
    pub fn from_name(name: &str) -> Result<Self> {
        match name.trim_start_matches('.').to_ascii_lowercase().as_str() {
            "m4a" | "aac" | "mp4" => Ok(AudioFormat::M4a),
            "mp3" => Ok(AudioFormat::Mp3),
            "wav" => Ok(AudioFormat::Wav),
            other => Err(PipelineError::InvalidInput(format!(
                "`{other}` is not an audio format (m4a, mp3 or wav)"
            ))),
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            AudioFormat::M4a => "m4a",
            AudioFormat::Mp3 => "mp3",
            AudioFormat::Wav => "wav",
        }
    }

    pub fn mime_type(self) -> &'static str {
        match self {
            AudioFormat::M4a => "audio/mp4",
            AudioFormat::Mp3 => "audio/mpeg",
            AudioFormat::Wav => "audio/wav",
        }
    }

    /// ffmpeg's codec, muxer and sample rate options for this format.
    fn ffmpeg_options(self) -> [&'static str; 8] {
        match self {
            // 48 kHz and 44.1 kHz are what every player expects of AAC and MP3.
            AudioFormat::M4a => ["-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-f", "ipod"],
            AudioFormat::Mp3 => [
                "-c:a",
                "libmp3lame",
                "-b:a",
                "128k",
                "-ar",
                "44100",
                "-f",
                "mp3",
            ],
            AudioFormat::Wav => ["-c:a", "pcm_s16le", "-ar", "24000", "-ac", "1", "-f", "wav"],
        }
    }
}

/// Encodes audio as `format`.
pub async fn encode_audio(input: &Path, format: AudioFormat, out: &Path) -> Result<()> {
    ensure_exists(input).await?;
    let mut args: Vec<OsString> = vec!["-i".into(), input.into(), "-map".into(), "0:a:0".into()];
    args.extend(format.ffmpeg_options().map(OsString::from));
    if format == AudioFormat::M4a {
        // The index at the front lets a player start before the download ends.
        args.extend(["-movflags", "+faststart"].map(OsString::from));
    }
    args.push(out.into());
    ffmpeg_on(input, args).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tempo_chains_stay_within_atempo_s_blending_range() {
        assert!(atempo_chain(1.0).is_empty());
        assert_eq!(atempo_chain(1.5), vec!["atempo=1.500000"]);
        assert_eq!(atempo_chain(3.0), ["atempo=2.000000", "atempo=1.500000"]);
        assert_eq!(atempo_chain(4.0), ["atempo=2.000000", "atempo=2.000000"]);
        assert_eq!(atempo_chain(0.3), ["atempo=0.500000", "atempo=0.600000"]);
    }

    #[test]
    fn audio_formats_by_name() {
        assert_eq!(AudioFormat::from_name(".MP3").unwrap(), AudioFormat::Mp3);
        assert_eq!(AudioFormat::from_name("aac").unwrap(), AudioFormat::M4a);
        assert!(!AudioFormat::from_name("flac").unwrap_err().is_retryable());
    }
}
