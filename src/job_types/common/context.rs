//! What every pipeline handler shares: the engines and the store, the job's input media,
//! scratch directories, errors turned into queue decisions, segment results.
//!
//! Workers share no disk: a handler downloads what it needs from the object store into a
//! scratch directory of its attempt (removed when the attempt ends, however it ends) and
//! uploads what it produces under a key that carries its attempt.

use crate::Config;
use crate::config::PipelineConfig;
use crate::db;
use crate::error::Error;
use crate::job::{JobInfo, SegmentStatus, SegmentView};
use crate::pipeline::media::{CutOptions, FitOptions};
use crate::pipeline::{Engines, PipelineError};
use crate::sql;
use crate::storage::{Seal, Storage};
use crate::worker::{HandlerError, StepContext};
use deadpool_postgres::Pool;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The engines, the store and the settings every pipeline handler runs with.
pub struct Pipeline {
    pub engines: Engines,
    pub storage: Storage,
    pub settings: PipelineConfig,
}

impl Pipeline {
    /// Builds the configured engines and opens the store. Nothing is run: whether the
    /// engines' programs are installed is [`Engines::check`]'s business.
    pub fn from_config(config: &Config) -> crate::Result<Arc<Pipeline>> {
        let engines = Engines::from_config(config)
            .map_err(|e| Error::Invalid(format!("pipeline engines: {e}")))?;
        Ok(Arc::new(Pipeline {
            engines,
            storage: Storage::from_config(&config.storage)?,
            settings: config.pipeline.clone(),
        }))
    }

    /// Where speech media is cut, from `[pipeline]`.
    pub fn cut_options(&self) -> CutOptions {
        CutOptions {
            noise_db: self.settings.silence_noise_db,
            min_silence_ms: self.settings.silence_min_ms,
            ..CutOptions::target(self.settings.segment_seconds * 1000)
        }
    }

    /// How far dubbed speech may be sped up or slowed down, from `[pipeline]`.
    pub fn fit_options(&self) -> FitOptions {
        FitOptions {
            min_tempo: self.settings.min_tempo,
            max_tempo: self.settings.max_tempo,
        }
    }

    /// The engines' names, recorded with outputs.
    pub fn engine_names(&self) -> Value {
        json!({
            "speech_to_text": self.engines.speech_to_text.name(),
            "translator": self.engines.translator.name(),
            "text_to_speech": self.engines.text_to_speech.name(),
        })
    }
}

/// A failure of the object store or the database: the environment's, so retryable.
pub fn retryable(context: &str, e: impl std::fmt::Display) -> HandlerError {
    HandlerError::Retryable(format!("{context}: {e}"))
}

/// A pipeline failure as the queue sees it: fatal when the input is at fault, retryable
/// when the machine or a service is. `input` names the job's input in place of the
/// scratch path of its download, which means nothing to the user.
pub fn pipeline_error(e: PipelineError, input: Option<&InputMedia>) -> HandlerError {
    let retry = e.is_retryable();
    let message = match (&e, input) {
        (PipelineError::InvalidMedia { reason, .. }, Some(input)) => {
            format!("{}: {reason}", input.describe())
        }
        (PipelineError::Subtitles(inner), Some(input)) => {
            format!("{}: not usable subtitles: {inner}", input.describe())
        }
        _ => e.to_string(),
    };
    if retry {
        HandlerError::Retryable(message)
    } else {
        HandlerError::Fatal(message)
    }
}

/// Runs `work` until it ends or `cancel` fires. Dropping `work` kills the programs it
/// runs and removes its scratch files.
pub async fn until_cancelled<T>(
    cancel: &CancellationToken,
    work: impl Future<Output = Result<T, HandlerError>>,
) -> Result<T, HandlerError> {
    tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(HandlerError::Cancelled),
        outcome = work => outcome,
    }
}

/// A scratch directory of one attempt, removed when dropped.
pub fn scratch(job: Uuid, what: &str, attempt: i32) -> Result<TempDir, HandlerError> {
    tempfile::Builder::new()
        .prefix(&format!("octavia-{job}-{what}-{attempt}-"))
        .tempdir()
        .map_err(|e| retryable("creating a scratch directory", e))
}

/// The media file a job reads.
#[derive(Debug, Clone)]
pub struct InputMedia {
    pub id: Uuid,
    pub user_id: Option<Uuid>,
    pub project_id: Option<Uuid>,
    pub s3_key: String,
    pub media_type: Option<String>,
    pub mimetype: Option<String>,
    /// What its upload completed with; `None` for media that was not uploaded.
    pub seal: Option<Seal>,
}

impl InputMedia {
    /// Reads the job's input media row. A job without one, or whose row is gone, can never
    /// run: fatal.
    pub async fn load(pool: &Pool, job: &JobInfo) -> Result<InputMedia, HandlerError> {
        let id = job.input_media_id.ok_or_else(|| {
            HandlerError::Fatal(format!(
                "a {} job needs an input media file (input_media_id is not set)",
                job.job_type
            ))
        })?;
        let client = pool.get().await.map_err(|e| retryable("database", e))?;
        let row = db::query_opt(&client, sql::MEDIA_OF_JOB_INPUT, &[&id])
            .await
            .map_err(|e| retryable("database", e))?
            .ok_or_else(|| HandlerError::Fatal(format!("input media {id} does not exist")))?;
        if row.get::<_, bool>("gone") {
            return Err(HandlerError::Fatal(format!(
                "input media {id} was deleted (or expired): its files are gone"
            )));
        }
        Ok(InputMedia {
            id: row.get("id"),
            user_id: row.get("user_id"),
            project_id: row.get("project_id"),
            s3_key: row.get("s3_key"),
            media_type: row.get("media_type"),
            mimetype: row.get("mimetype"),
            seal: row
                .get::<_, Option<Value>>("metadata")
                .as_ref()
                .and_then(Seal::recorded),
        })
    }

    /// The file's name: the last part of its key.
    pub fn file_name(&self) -> &str {
        self.s3_key.rsplit('/').next().unwrap_or(&self.s3_key)
    }

    /// The file's name without its extension, reduced to characters safe in any key and
    /// any download, to name the outputs after.
    pub fn stem(&self) -> String {
        let name = self.file_name();
        let stem = match name.rsplit_once('.') {
            Some((stem, _)) if !stem.is_empty() => stem,
            _ => name,
        };
        let safe: String = stem
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .take(80)
            .collect();
        // A leading dot would hide the downloaded file on most systems.
        let safe = safe.trim_start_matches('.');
        if safe.trim_matches('_').is_empty() {
            "output".into()
        } else {
            safe.to_string()
        }
    }

    /// How errors name the input.
    pub fn describe(&self) -> String {
        format!("input media {} (`{}`)", self.id, self.file_name())
    }

    /// Refuses bytes that are not those its upload was completed (and priced) with: put
    /// to the upload's link afterwards. Fatal: the job is refunded.
    pub fn check_sealed(&self, got: &crate::storage::ObjectInfo) -> Result<(), HandlerError> {
        match self.seal.as_ref().and_then(|s| s.broken_by(Some(got))) {
            None => Ok(()),
            Some(why) => Err(HandlerError::Fatal(format!(
                "{} is not what its upload completed with: {why}; upload the file again \
                 and create a new job",
                self.describe()
            ))),
        }
    }

    /// Downloads the file into `dir`, keeping its name (some tools look at the extension).
    /// An object missing from the store is fatal: the upload never completed.
    pub async fn download(&self, storage: &Storage, dir: &Path) -> Result<PathBuf, HandlerError> {
        let path = dir.join(format!("input-{}", self.file_name()));
        match storage.get_to_file_info(&self.s3_key, &path).await {
            Ok(got) => {
                let sealed = self.check_sealed(&got);
                if sealed.is_err() {
                    let _ = tokio::fs::remove_file(&path).await;
                }
                sealed.map(|()| path)
            }
            Err(Error::NotFound { .. }) => Err(HandlerError::Fatal(format!(
                "{}: the store has no object at `{}` (was the upload completed?)",
                self.describe(),
                self.s3_key
            ))),
            Err(e) => Err(retryable(&format!("downloading {}", self.describe()), e)),
        }
    }
}

/// Downloads an intermediate object (a segment's input or output) to `path`.
pub async fn fetch(storage: &Storage, key: &str, path: &Path) -> Result<(), HandlerError> {
    storage
        .get_to_file(key, path)
        .await
        .map(|_| ())
        .map_err(|e| retryable(&format!("downloading `{key}`"), e))
}

/// Uploads `path` to `key`; returns its size.
pub async fn store(storage: &Storage, key: &str, path: &Path) -> Result<u64, HandlerError> {
    storage
        .put_file(key, path)
        .await
        .map_err(|e| retryable(&format!("uploading `{key}`"), e))
}

/// Every segment, in index order, and its result read as `T`. Finalize runs only once all
/// of them completed, so a missing or unreadable result is a bug, not bad luck: fatal.
/// The segments come along for what finalize writes from them too (the transcript).
pub async fn segment_results<T: DeserializeOwned>(
    ctx: &StepContext,
) -> Result<(Vec<SegmentView>, Vec<T>), HandlerError> {
    let segments = ctx
        .segments()
        .await
        .map_err(|e| retryable("reading the segments", e))?;
    let results = segments
        .iter()
        .map(|s| {
            let result = s
                .result
                .clone()
                .filter(|_| s.status == SegmentStatus::Completed)
                .ok_or_else(|| {
                    HandlerError::Fatal(format!(
                        "segment {} has no result (status {})",
                        s.index, s.status
                    ))
                })?;
            serde_json::from_value(result).map_err(|e| {
                HandlerError::Fatal(format!("segment {}'s result is unreadable: {e}", s.index))
            })
        })
        .collect::<Result<_, _>>()?;
    Ok((segments, results))
}

/// Milliseconds each stage of an attempt took, for its result.
pub struct Stopwatch {
    at: Instant,
    laps: BTreeMap<String, u64>,
}

impl Stopwatch {
    pub fn start() -> Stopwatch {
        Stopwatch {
            at: Instant::now(),
            laps: BTreeMap::new(),
        }
    }

    /// Records the time since the previous lap as `stage`.
    pub fn lap(&mut self, stage: &str) {
        let now = Instant::now();
        *self.laps.entry(stage.to_string()).or_default() +=
            now.duration_since(self.at).as_millis() as u64;
        self.at = now;
    }

    pub fn laps(self) -> BTreeMap<String, u64> {
        self.laps
    }
}

/// What a pipeline job type does once its job completed: deletes the job's intermediate
/// objects (segment inputs, dubbed windows), which only its steps needed. A failure is
/// logged and left to the store's sweeper (the completion marked the run swept).
pub async fn delete_intermediates(p: &Pipeline, job: &JobInfo) {
    match p.storage.delete_intermediates(job.id).await {
        Ok(n) => tracing::debug!(job.id = %job.id, objects = n, "deleted intermediates"),
        Err(e) => tracing::warn!(job.id = %job.id, error = %e,
            "could not delete a completed job's intermediates; the sweeper will"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(key: &str) -> InputMedia {
        InputMedia {
            id: Uuid::nil(),
            user_id: None,
            project_id: None,
            s3_key: key.into(),
            media_type: None,
            mimetype: None,
            seal: None,
        }
    }

    #[test]
    fn outputs_are_named_after_the_input() {
        assert_eq!(input("media/u/m/talk.mp4").stem(), "talk");
        assert_eq!(
            input("media/u/m/my talk (1).en.srt").stem(),
            "my_talk__1_.en"
        );
        assert_eq!(input("media/u/m/.hidden").stem(), "hidden");
        assert_eq!(input("media/u/m/___.srt").stem(), "output");
        assert_eq!(input("noext").stem(), "noext");
        assert_eq!(input("media/u/m/talk.mp4").file_name(), "talk.mp4");
    }

    #[test]
    fn errors_blame_the_input_by_name() {
        let media = input("media/u/m/notes.mp4");
        let e = PipelineError::InvalidMedia {
            path: "/tmp/x/input-notes.mp4".into(),
            reason: "not a media file".into(),
        };
        match pipeline_error(e, Some(&media)) {
            HandlerError::Fatal(m) => {
                assert!(m.contains("(`notes.mp4`): not a media file"), "{m}");
                assert!(!m.contains("/tmp/"), "{m}");
            }
            other => panic!("{other:?}"),
        }
        let e = PipelineError::ToolFailed {
            program: "ffmpeg",
            status: "1".into(),
            stderr: "oops".into(),
        };
        assert!(matches!(
            pipeline_error(e, Some(&media)),
            HandlerError::Retryable(_)
        ));
    }
}
