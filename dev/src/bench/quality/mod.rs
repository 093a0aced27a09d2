//! `octavia-dev bench --quality` (`bin/bench --quality`): how well each speech-to-text
//! engine hears, through the real job. The corpus ([`corpus`]) is made for the run; each
//! engine's worker process runs a `subtitles` job per recording, and the figures come
//! from what the segments recorded (`job_segments.result`): the word error rate against
//! the known text, the real-time factor of speech-to-text alone (its time in the segments
//! over the audio's length), and the share of phrases that start and end within 300 ms of
//! a sentence's voice. Then a 1-minute video is dubbed by two workers, once per engine,
//! timed from enqueue to completion.

pub mod corpus;
mod jobs;

use crate::cluster::ScratchDatabase;
use corpus::Recording;
use jobs::{EngineFigures, Run};
use octavia::error::{Error, Result};
use octavia::pipeline::Language;
use serde::Serialize;
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct QualityArgs {
    /// Speech-to-text engines to measure: pocketsphinx, whisper-tiny.en (Whisper tiny.en
    /// for English), whisper-base (Whisper base for English); Spanish is heard by
    /// whisper-base alone
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "pocketsphinx,whisper-tiny.en,whisper-base"
    )]
    pub engines: Vec<String>,
    /// Where the corpus is made
    #[arg(long, default_value = "target/bench/quality")]
    pub quality_dir: PathBuf,
    /// Where the quality report (JSON) is written
    #[arg(long, default_value = "target/bench/quality.json")]
    pub quality_json: PathBuf,
    /// Leave out the 1-minute video_translation
    #[arg(long)]
    pub no_video: bool,
}

/// Everything one run measured.
#[derive(Debug, Serialize)]
pub struct QualityReport {
    /// What the corpus holds.
    pub corpus: Vec<RecordingInfo>,
    pub engines: Vec<EngineFigures>,
    /// The 1-minute video dubbed by two workers, per engine.
    pub video_translation: Vec<jobs::VideoFigures>,
}

#[derive(Debug, Serialize)]
pub struct RecordingInfo {
    pub name: String,
    pub language: Language,
    pub voice: String,
    pub file: String,
    pub seconds: f64,
    pub sentences: usize,
}

pub async fn run(args: &QualityArgs) -> Result<()> {
    let engines: Vec<jobs::Engine> = args
        .engines
        .iter()
        .map(|name| jobs::Engine::named(name))
        .collect::<Result<_>>()?;
    eprintln!("making the corpus in {}", args.quality_dir.display());
    let recordings = corpus::build(&args.quality_dir).await?;
    let minute = corpus::minute_video(&args.quality_dir).await?;
    let mut report = QualityReport {
        corpus: recordings.iter().map(info).collect(),
        engines: Vec::new(),
        video_translation: Vec::new(),
    };
    for engine in &engines {
        let heard: Vec<&Recording> = recordings
            .iter()
            .filter(|r| engine.hears(r.language))
            .collect();
        eprintln!("{}: {} recordings", engine.name, heard.len());
        let db = ScratchDatabase::create("quality").await?;
        let mut run = Run::start(&db.url, &args.quality_dir, engine, 1, 1).await?;
        let figures = run.hear(engine, &heard).await;
        run.stop();
        db.drop().await?;
        report.engines.push(figures?);
    }
    if !args.no_video {
        for engine in &engines {
            eprintln!(
                "{}: dubbing {} s of video",
                engine.name,
                minute.duration_ms / 1000
            );
            let db = ScratchDatabase::create("quality").await?;
            let mut run = Run::start(&db.url, &args.quality_dir, engine, 2, 2).await?;
            let figures = run.dub(engine, &minute).await;
            run.stop();
            db.drop().await?;
            report.video_translation.push(figures?);
        }
    }
    let json = serde_json::to_string_pretty(&report).expect("serializable");
    if let Some(parent) = args.quality_json.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::Invalid(format!("{}: {e}", parent.display())))?;
    }
    std::fs::write(&args.quality_json, &json)
        .map_err(|e| Error::Invalid(format!("{}: {e}", args.quality_json.display())))?;
    println!("{json}");
    print_table(&report);
    Ok(())
}

fn info(r: &Recording) -> RecordingInfo {
    RecordingInfo {
        name: r.name.clone(),
        language: r.language,
        voice: r.voice.name(),
        file: r
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        seconds: r.duration_ms as f64 / 1000.0,
        sentences: r.sentences.len(),
    }
}

fn print_table(report: &QualityReport) {
    eprintln!();
    eprintln!(
        "{:<18} {:<3} {:>7} {:>8} {:>9} {:>9}",
        "engine", "", "WER", "words", "STT RTF", "timing"
    );
    for e in &report.engines {
        for l in &e.languages {
            eprintln!(
                "{:<18} {:<3} {:>6.1}% {:>8} {:>9.3} {:>8.0}%",
                e.engine,
                l.language.code(),
                l.wer * 100.0,
                l.reference_words,
                l.speech_to_text_rtf,
                l.phrases_on_time * 100.0
            );
        }
    }
    for v in &report.video_translation {
        eprintln!(
            "video_translation, {}: {:.1} s for {:.1} s of video (RTF {:.3}), 2 workers",
            v.engine, v.wall_seconds, v.video_seconds, v.rtf
        );
    }
}
