//! The quality benchmark's jobs: worker processes with one speech-to-text engine, the
//! corpus uploaded and run through `subtitles` (and one `video_translation`), and the
//! figures read back from what the segments recorded.

use super::corpus::Recording;
use crate::bench::WorkerSet;
use crate::wer::{WordErrors, word_errors};
use octavia::error::{Error, Result};
use octavia::job::{JobStatus, NewMedia};
use octavia::pipeline::Language;
use octavia::pipeline::media::Window;
use octavia::queue::enqueue::{self, NewJob};
use octavia::queue::{admin, complete};
use octavia::storage::{Storage, media_key};
use serde::Serialize;
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// A phrase is on time when its start and its end are this close to a sentence's voice.
const ON_TIME_MS: u64 = 300;

/// The job types the quality benchmark enqueues, and its workers serve.
const JOB_TYPES: &[&str] = &["subtitles", "video_translation"];

/// A speech-to-text engine as the benchmark configures a worker for it.
#[derive(Debug, Clone)]
pub struct Engine {
    pub name: String,
    settings: Vec<String>,
    spanish: bool,
}

impl Engine {
    pub fn named(name: &str) -> Result<Engine> {
        let whisper = |english: &str, spanish: bool| Engine {
            name: name.to_string(),
            settings: vec![
                "engines.speech_to_text=whisper".into(),
                format!("engines.whisper_english_model=.venv/models/{english}"),
            ],
            spanish,
        };
        Ok(match name {
            "pocketsphinx" => Engine {
                name: name.into(),
                settings: vec!["engines.speech_to_text=pocketsphinx".into()],
                spanish: false,
            },
            "whisper-tiny.en" => whisper("whisper-tiny.en", false),
            "whisper-base" => whisper("whisper-base", true),
            other => {
                return Err(Error::Invalid(format!(
                    "--engines: `{other}` is not one of pocketsphinx, whisper-tiny.en, whisper-base"
                )));
            }
        })
    }

    /// Whether the benchmark has this engine hear `language` (Spanish goes to Whisper
    /// base whatever the English model, so one engine measures it).
    pub fn hears(&self, language: Language) -> bool {
        language == Language::English || self.spanish
    }
}

/// One engine's figures.
#[derive(Debug, Serialize)]
pub struct EngineFigures {
    pub engine: String,
    pub languages: Vec<LanguageFigures>,
    /// Every recording's own figures and what was heard.
    pub recordings: Vec<RecordingFigures>,
}

#[derive(Debug, Serialize)]
pub struct LanguageFigures {
    pub language: Language,
    /// (substitutions + deletions + insertions) / reference words, over all recordings.
    pub wer: f64,
    pub reference_words: usize,
    pub substitutions: usize,
    pub deletions: usize,
    pub insertions: usize,
    /// Seconds of speech-to-text in the segments over seconds of audio.
    pub speech_to_text_rtf: f64,
    /// Phrases starting and ending within 300 ms of a sentence's voice, over all phrases.
    pub phrases_on_time: f64,
    pub phrases: usize,
}

#[derive(Debug, Serialize)]
pub struct RecordingFigures {
    pub name: String,
    pub wer: f64,
    pub speech_to_text_rtf: f64,
    pub phrases_on_time: f64,
    pub segments: usize,
    pub heard: String,
    /// The phrases not on time, beside the sentence they overlap most.
    pub off_time: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct VideoFigures {
    pub engine: String,
    pub video_seconds: f64,
    /// From the job's insert to its completion.
    pub wall_seconds: f64,
    pub rtf: f64,
    pub segments: usize,
    pub wer: f64,
}

/// A phrase a segment recorded, in the file's time.
struct Heard {
    window: Window,
    text: String,
}

/// Worker processes on one database and a local store, and a connection to both.
pub struct Run {
    pool: deadpool_postgres::Pool,
    storage: Storage,
    workers: WorkerSet,
}

impl Run {
    /// `workers` processes of `concurrency` each, configured for `engine`.
    pub async fn start(
        url: &str,
        dir: &Path,
        engine: &Engine,
        workers: u32,
        concurrency: u32,
    ) -> Result<Run> {
        let objects = dir.join(format!("objects-{}", std::process::id()));
        let local_dir = format!("storage.local_dir={}", objects.display());
        let mut extra: Vec<&str> = vec!["--set", &local_dir];
        for setting in &engine.settings {
            extra.extend(["--set", setting.as_str()]);
        }
        let mut config = octavia::Config::default();
        config.storage.local_dir = objects.display().to_string();
        let storage = Storage::from_config(&config.storage)?;
        let program = crate::process::sibling("octavia-worker")?;
        let mut workers = WorkerSet::start(&program, url, workers, concurrency, JOB_TYPES, &extra)?;
        workers.wait_started().await?;
        config.database.url = url.to_string();
        let pool = octavia::db::pool(&config.database)?;
        Ok(Run {
            pool,
            storage,
            workers,
        })
    }

    pub fn stop(self) {
        drop(self.workers);
    }

    /// Runs a `subtitles` job per recording and measures what they heard.
    pub async fn hear(
        &mut self,
        engine: &Engine,
        recordings: &[&Recording],
    ) -> Result<EngineFigures> {
        let mut jobs = Vec::new();
        for r in recordings {
            let options = json!({"source_language": r.language});
            jobs.push(self.job(r, "subtitles", options).await?);
        }
        self.wait(&jobs, Duration::from_secs(1800)).await?;
        let mut per_language: Vec<(Language, WordErrors, f64, f64, usize, usize)> = Vec::new();
        let mut figures = Vec::new();
        for (r, job) in recordings.iter().zip(&jobs) {
            let (heard, transcribe_ms, segments) = self.heard(*job).await?;
            let errors = errors_of(r, &heard);
            let on_time = on_time(r, &heard);
            let audio = r.duration_ms as f64;
            figures.push(RecordingFigures {
                name: r.name.clone(),
                wer: errors.rate(),
                speech_to_text_rtf: transcribe_ms / audio,
                phrases_on_time: on_time as f64 / heard.len().max(1) as f64,
                segments,
                heard: heard
                    .iter()
                    .map(|h| h.text.as_str())
                    .collect::<Vec<_>>()
                    .join(" | "),
                off_time: off_time(r, &heard),
            });
            let entry = match per_language.iter_mut().find(|e| e.0 == r.language) {
                Some(entry) => entry,
                None => {
                    per_language.push((r.language, WordErrors::default(), 0.0, 0.0, 0, 0));
                    per_language.last_mut().expect("just pushed")
                }
            };
            entry.1 += errors;
            entry.2 += transcribe_ms;
            entry.3 += audio;
            entry.4 += on_time;
            entry.5 += heard.len();
        }
        Ok(EngineFigures {
            engine: engine.name.clone(),
            languages: per_language
                .into_iter()
                .map(
                    |(language, e, ms, audio, on_time, phrases)| LanguageFigures {
                        language,
                        wer: e.rate(),
                        reference_words: e.words,
                        substitutions: e.substitutions,
                        deletions: e.deletions,
                        insertions: e.insertions,
                        speech_to_text_rtf: ms / audio,
                        phrases_on_time: on_time as f64 / phrases.max(1) as f64,
                        phrases,
                    },
                )
                .collect(),
            recordings: figures,
        })
    }

    /// Dubs `video` into Spanish and times it.
    pub async fn dub(&mut self, engine: &Engine, video: &Recording) -> Result<VideoFigures> {
        let started = Instant::now();
        let options = json!({"source_language": "en", "target_language": "es"});
        let job = self.job(video, "video_translation", options).await?;
        self.wait(&[job], Duration::from_secs(900)).await?;
        let wall = started.elapsed().as_secs_f64();
        let (heard, _, segments) = self.heard(job).await?;
        Ok(VideoFigures {
            engine: engine.name.clone(),
            video_seconds: video.duration_ms as f64 / 1000.0,
            wall_seconds: wall,
            rtf: wall / (video.duration_ms as f64 / 1000.0),
            segments,
            wer: errors_of(video, &heard).rate(),
        })
    }

    /// Uploads a recording and inserts a job on it.
    async fn job(&self, r: &Recording, job_type: &str, options: Value) -> Result<Uuid> {
        let id = Uuid::now_v7();
        let name = r.path.file_name().expect("a file").to_string_lossy();
        let key = media_key(Uuid::nil(), id, &name);
        let size = self.storage.put_file(&key, &r.path).await?;
        let client = self.pool.get().await?;
        complete::insert_media(
            &client,
            &NewMedia {
                id,
                project_id: None,
                user_id: None,
                s3_key: key,
                media_type: if name.ends_with(".mp4") {
                    "video"
                } else {
                    "audio"
                }
                .into(),
                duration_seconds: None,
                size_bytes: size as i64,
                mimetype: "application/octet-stream".into(),
                derived_from: None,
                metadata: json!({}),
            },
        )
        .await?;
        let job = NewJob {
            input_media_id: Some(id),
            ..NewJob::new(job_type, options)
        };
        enqueue::insert(&client, std::slice::from_ref(&job)).await?;
        Ok(job.id)
    }

    /// Waits for every job to complete; a failed one fails the benchmark with its error.
    async fn wait(&mut self, jobs: &[Uuid], limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        let client = self.pool.get().await?;
        loop {
            let mut done = 0;
            for job in jobs {
                let view = admin::job(&client, *job).await?.expect("inserted");
                match view.status {
                    JobStatus::Completed => done += 1,
                    JobStatus::Failed | JobStatus::Cancelled => {
                        return Err(Error::Invalid(format!(
                            "job {job} ({}) ended {}: {}",
                            view.job_type,
                            view.status,
                            view.last_error.unwrap_or_default()
                        )));
                    }
                    _ => {}
                }
            }
            if done == jobs.len() {
                return Ok(());
            }
            self.workers.check()?;
            if Instant::now() > deadline {
                return Err(Error::Invalid(format!(
                    "{} of {} jobs done after {} s",
                    done,
                    jobs.len(),
                    limit.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The phrases a job's segments heard, in order, the milliseconds they spent in
    /// speech-to-text, and how many segments there were.
    async fn heard(&self, job: Uuid) -> Result<(Vec<Heard>, f64, usize)> {
        let client = self.pool.get().await?;
        let segments = admin::segments(&client, job).await?;
        let mut heard = Vec::new();
        let mut transcribe_ms = 0.0;
        for s in &segments {
            let result = s.result.as_ref().expect("a completed segment has a result");
            transcribe_ms += result["elapsed_ms"]["transcribe"].as_f64().unwrap_or(0.0);
            for p in result["phrases"].as_array().into_iter().flatten() {
                let ms = |k: &str| p[k].as_u64().unwrap_or(0);
                heard.push(Heard {
                    window: Window::new(ms("start_ms"), ms("end_ms")),
                    text: p["text"].as_str().unwrap_or("").to_string(),
                });
            }
        }
        Ok((heard, transcribe_ms, segments.len()))
    }
}

/// The word errors of everything heard in a recording against all its sentences.
fn errors_of(r: &Recording, heard: &[Heard]) -> WordErrors {
    let reference: Vec<&str> = r.sentences.iter().map(|(_, s)| s.as_str()).collect();
    let text: Vec<&str> = heard.iter().map(|h| h.text.as_str()).collect();
    word_errors(&reference.join(" "), &text.join(" "))
}

/// Whether a phrase starts and ends within [`ON_TIME_MS`] of one sentence's voice.
fn is_on_time(r: &Recording, h: &Heard) -> bool {
    r.sentences.iter().any(|(w, _)| {
        h.window.start_ms.abs_diff(w.start_ms) <= ON_TIME_MS
            && h.window.end_ms.abs_diff(w.end_ms) <= ON_TIME_MS
    })
}

/// How many phrases are on time.
fn on_time(r: &Recording, heard: &[Heard]) -> usize {
    heard.iter().filter(|h| is_on_time(r, h)).count()
}

/// The phrases that are not on time, each beside the sentence it overlaps most.
fn off_time(r: &Recording, heard: &[Heard]) -> Vec<String> {
    let overlap = |a: Window, b: Window| {
        a.end_ms
            .min(b.end_ms)
            .saturating_sub(a.start_ms.max(b.start_ms))
    };
    heard
        .iter()
        .filter(|h| !is_on_time(r, h))
        .map(|h| {
            let nearest = r
                .sentences
                .iter()
                .max_by_key(|(w, _)| overlap(*w, h.window))
                .map(|(w, s)| format!("{}-{} ms \"{s}\"", w.start_ms, w.end_ms))
                .unwrap_or_default();
            format!(
                "{}-{} ms \"{}\" for {nearest}",
                h.window.start_ms, h.window.end_ms, h.text
            )
        })
        .collect()
}
