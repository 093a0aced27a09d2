//! The quality benchmark's corpus: sentences with known text, spoken by two synthesizers
//! (espeak-ng and flite) at two speeds, joined with pauses into the media users send (a
//! video, an mp3), with where each sentence's voice is.

use octavia::error::{Error, Result};
use octavia::pipeline::Language;
use octavia::pipeline::media::wav::{Wav, WavSpec};
use octavia::pipeline::media::{self, Window};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Everyday English sentences; numbers are written as words (Whisper writes digits: the
/// word error rate counts "10" and "ten" as the same word).
pub const ENGLISH: [&str; 40] = [
    "The weather is very good today.",
    "I would like a cup of coffee.",
    "Please call me tomorrow morning.",
    "The meeting starts at nine in the morning.",
    "Please send me the report before Friday.",
    "My sister lives in a small house near the river.",
    "We need three more chairs for the kitchen.",
    "The train to the city leaves every twenty minutes.",
    "Can you turn off the lights when you leave?",
    "I have been working here for ten years.",
    "The children are playing in the garden.",
    "Our team will present the new design next week.",
    "It is going to rain this afternoon.",
    "He bought a new car last month.",
    "The museum is closed on Mondays.",
    "Where is the nearest train station?",
    "She reads a book every evening before bed.",
    "The restaurant opens at seven o'clock.",
    "Thank you very much for your help.",
    "We are flying to London on Tuesday.",
    "The doctor will see you in five minutes.",
    "Could you speak a little more slowly?",
    "My phone battery is almost empty.",
    "The store sells fresh bread every morning.",
    "I forgot my keys at the office.",
    "They painted the walls of the living room white.",
    "The bus was late again this morning.",
    "Please write your name at the top of the page.",
    "We watched a movie together last night.",
    "The price of the ticket is fifty dollars.",
    "My brother plays the guitar in a band.",
    "The library has thousands of old books.",
    "Do not forget to water the plants.",
    "The hotel room has a view of the sea.",
    "I usually walk to work when it is sunny.",
    "The package will arrive in two days.",
    "Our neighbors have a big black dog.",
    "The lesson begins after the short break.",
    "Please close the window because it is cold.",
    "We will meet again at the end of the month.",
];

/// Spanish sentences, spoken by espeak-ng's `es` voice (flite has no Spanish voice).
pub const SPANISH: [&str; 16] = [
    "El tiempo está muy bueno hoy.",
    "Me gustaría tomar un café con leche.",
    "Por favor, llámame mañana por la mañana.",
    "La casa está cerca del río.",
    "Mi hermana vive en una ciudad pequeña.",
    "El tren sale de la estación a las nueve.",
    "Necesitamos comprar pan y fruta para la cena.",
    "Los niños juegan en el parque todos los días.",
    "¿Dónde está la biblioteca de la universidad?",
    "Hace mucho frío en el norte durante el invierno.",
    "Mañana vamos a visitar a nuestros abuelos.",
    "El museo está cerrado los lunes.",
    "Gracias por tu ayuda con el proyecto.",
    "La reunión empieza después del almuerzo.",
    "Quiero aprender a tocar la guitarra.",
    "El restaurante tiene una terraza muy bonita.",
];

/// A synthesizer at a speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Voice {
    /// espeak-ng at this many words per minute.
    Espeak(u32),
    /// flite's kal voice, its durations stretched by this many percent (100: its own pace).
    Flite(u32),
}

impl Voice {
    pub fn name(self) -> String {
        match self {
            Voice::Espeak(wpm) => format!("espeak-ng {wpm} wpm"),
            Voice::Flite(stretch) => format!("flite {stretch} % durations"),
        }
    }

    /// Speaks `text` in `language` into a WAV of the synthesizer's own format.
    fn speak(self, text: &str, language: Language, out: &Path) -> Result<()> {
        let mut command = match self {
            Voice::Espeak(wpm) => {
                let mut c = Command::new("espeak-ng");
                c.args(["-v", language.espeak_voice(), "-s", &wpm.to_string(), "-w"])
                    .arg(out)
                    .arg(text);
                c
            }
            Voice::Flite(stretch) => {
                let mut c = Command::new("flite");
                c.args([
                    "--setf",
                    &format!("duration_stretch={}", stretch as f64 / 100.0),
                ])
                .args(["-t", text, "-o"])
                .arg(out);
                c
            }
        };
        run(&mut command)
    }
}

/// One file of the corpus: its sentences, where each one's voice is, and the file.
#[derive(Debug, Clone)]
pub struct Recording {
    pub name: String,
    pub language: Language,
    pub voice: Voice,
    pub path: PathBuf,
    pub duration_ms: u64,
    /// Each sentence and its voice's window in the file.
    pub sentences: Vec<(Window, String)>,
}

/// The container a recording is sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    Mp4,
    Mp3,
}

/// The pauses between sentences, in turn: people do not pause evenly.
const PAUSES_MS: [u64; 5] = [900, 1_400, 700, 1_100, 1_800];

/// The working format of a recording before it is encoded: what speech-to-text hears.
const SPEC: WavSpec = WavSpec {
    sample_rate: 16_000,
    channels: 1,
};

/// Speaks `sentences` with `voice` and joins them into `dir/{name}.{mp4|mp3}`.
pub async fn record(
    dir: &Path,
    name: &str,
    sentences: &[&str],
    language: Language,
    voice: Voice,
    container: Container,
) -> Result<Recording> {
    let mut data: Vec<u8> = Vec::new();
    let silence = |data: &mut Vec<u8>, ms: u64| {
        data.extend(std::iter::repeat_n(0u8, (ms * 16 * 2) as usize));
    };
    let ms_at = |data: &Vec<u8>| data.len() as u64 / 32;
    let mut placed = Vec::new();
    silence(&mut data, 600);
    for (i, sentence) in sentences.iter().enumerate() {
        let raw = dir.join(format!("{name}-{i}-raw.wav"));
        let wav = dir.join(format!("{name}-{i}.wav"));
        voice.speak(sentence, language, &raw)?;
        run(Command::new("ffmpeg")
            .args(["-nostdin", "-loglevel", "error", "-y", "-i"])
            .arg(&raw)
            .args(["-ar", "16000", "-ac", "1", "-c:a", "pcm_s16le"])
            .arg(&wav))?;
        // Read as a WAV, not past a fixed 44-byte header: ffmpeg adds a LIST chunk.
        let spoken = Wav::read(&wav)
            .await
            .map_err(|e| Error::Invalid(format!("{}: {e}", wav.display())))?;
        let voice_part = media::voice_of(&spoken.data);
        let start = ms_at(&data);
        data.extend_from_slice(voice_part);
        placed.push((Window::new(start, ms_at(&data)), sentence.to_string()));
        silence(&mut data, PAUSES_MS[i % PAUSES_MS.len()]);
        let _ = std::fs::remove_file(&raw);
        let _ = std::fs::remove_file(&wav);
    }
    let duration_ms = ms_at(&data);
    let joined = dir.join(format!("{name}.wav"));
    Wav { spec: SPEC, data }
        .write(&joined)
        .await
        .map_err(|e| Error::Invalid(format!("{}: {e}", joined.display())))?;
    let path = match container {
        Container::Mp3 => {
            let path = dir.join(format!("{name}.mp3"));
            run(Command::new("ffmpeg")
                .args(["-nostdin", "-loglevel", "error", "-y", "-i"])
                .arg(&joined)
                .args(["-c:a", "libmp3lame", "-b:a", "64k"])
                .arg(&path))?;
            path
        }
        Container::Mp4 => {
            let path = dir.join(format!("{name}.mp4"));
            let seconds = format!("{:.3}", duration_ms as f64 / 1000.0);
            run(Command::new("ffmpeg")
                .args(["-nostdin", "-loglevel", "error", "-y"])
                .args(["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-i"])
                .arg(&joined)
                .args(["-t", &seconds, "-c:v", "libx264", "-preset", "ultrafast"])
                .args(["-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k"])
                .arg(&path))?;
            path
        }
    };
    let _ = std::fs::remove_file(&joined);
    Ok(Recording {
        name: name.to_string(),
        language,
        voice,
        path,
        duration_ms,
        sentences: placed,
    })
}

fn run(command: &mut Command) -> Result<()> {
    let program = command.get_program().to_string_lossy().into_owned();
    let out = command.output().map_err(|e| {
        Error::Invalid(format!(
            "cannot run {program} ({e}): bin/deps installs it (apt-get install -y espeak-ng flite ffmpeg)"
        ))
    })?;
    if !out.status.success() {
        return Err(Error::Invalid(format!(
            "{program} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::Invalid(format!("{}: {e}", path.display()))
}

/// The corpus: the English sentences split between four (synthesizer, speed) voices so
/// each sentence is spoken by both synthesizers, half of them in videos and half in
/// mp3s; the Spanish ones spoken at two speeds.
pub async fn build(dir: &Path) -> Result<Vec<Recording>> {
    std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    let half = |parity: usize| -> Vec<&str> {
        ENGLISH
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 2 == parity)
            .map(|(_, s)| *s)
            .collect()
    };
    let english = Language::English;
    let spanish = Language::Spanish;
    let recordings = [
        (
            "en-espeak-150",
            half(0),
            english,
            Voice::Espeak(150),
            Container::Mp4,
        ),
        (
            "en-espeak-190",
            half(1),
            english,
            Voice::Espeak(190),
            Container::Mp3,
        ),
        (
            "en-flite-100",
            half(1),
            english,
            Voice::Flite(100),
            Container::Mp4,
        ),
        (
            "en-flite-130",
            half(0),
            english,
            Voice::Flite(130),
            Container::Mp3,
        ),
        (
            "es-espeak-150",
            SPANISH.to_vec(),
            spanish,
            Voice::Espeak(150),
            Container::Mp4,
        ),
        (
            "es-espeak-190",
            SPANISH.to_vec(),
            spanish,
            Voice::Espeak(190),
            Container::Mp3,
        ),
    ];
    let mut made = Vec::new();
    for (name, sentences, language, voice, container) in recordings {
        made.push(record(dir, name, &sentences, language, voice, container).await?);
    }
    Ok(made)
}

/// A video of about a minute of English speech (espeak-ng at 160 words per minute), for
/// timing a whole `video_translation`.
pub async fn minute_video(dir: &Path) -> Result<Recording> {
    record(
        dir,
        "minute",
        &ENGLISH[..18],
        Language::English,
        Voice::Espeak(160),
        Container::Mp4,
    )
    .await
}
