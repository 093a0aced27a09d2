//! A job's output: the files finalize uploads and the media row that records them.
//!
//! Outputs are the user's media, so they live under `media/{user_id}/{output_id}/` beside
//! their uploads. The output row is one file (the video, the audio or the subtitles the job
//! was asked for); `metadata.files` maps every file the job wrote, by role (`video`,
//! `audio`, `srt`, `vtt`), to its key, and `metadata.main` names the row's own role.

use super::context::{InputMedia, retryable, store};
use crate::job::JobInfo;
use crate::job::{MediaType, NewMedia};
use crate::pipeline::media::{MediaInfo, StreamKind};
use crate::pipeline::subtitles::{self, Cue, SubtitleFormat};
use crate::storage::{self, Storage};
use crate::worker::HandlerError;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// A job's output being assembled: its media row's id, and where its files go.
///
/// Outputs are the user's media, so they live under `media/{user_id}/{output_id}/` beside
/// their uploads (a job without an owner writes under `jobs/{job_id}/output/{output_id}/`).
/// The id is new for every finalize attempt, so an attempt that lost its lease never
/// overwrites the files its successor's row points at.
pub struct Output<'a> {
    pub id: Uuid,
    job: &'a JobInfo,
    input: &'a InputMedia,
    /// Every file written, by role (`video`, `audio`, `srt`, `vtt`): their keys.
    files: BTreeMap<String, String>,
}

/// One output file, uploaded.
pub struct Stored {
    pub key: String,
    pub size: u64,
}

impl<'a> Output<'a> {
    pub fn new(job: &'a JobInfo, input: &'a InputMedia) -> Output<'a> {
        Output {
            id: Uuid::now_v7(),
            job,
            input,
            files: BTreeMap::new(),
        }
    }

    fn owner(&self) -> Option<Uuid> {
        self.job.user_id.or(self.input.user_id)
    }

    fn key(&self, file: &str) -> String {
        match self.owner() {
            Some(user) => storage::media_key(user, self.id, file),
            None => storage::job_output_key(self.job.id, &format!("{}/{file}", self.id)),
        }
    }

    /// Uploads `path` as the output file `file` in the role `role`.
    pub async fn upload(
        &mut self,
        storage: &Storage,
        role: &str,
        file: &str,
        path: &Path,
    ) -> Result<Stored, HandlerError> {
        let key = self.key(file);
        let size = store(storage, &key, path).await?;
        self.files.insert(role.to_string(), key.clone());
        Ok(Stored { key, size })
    }

    /// The output's media row: `main` is the file the row is; every file uploaded is
    /// listed in `metadata.files` by role, the main one included, with `metadata.main`
    /// naming the main role.
    pub fn media(
        self,
        main_role: &str,
        main: Stored,
        kind: Kind,
        duration_seconds: Option<f64>,
        metadata: Value,
    ) -> NewMedia {
        let mut metadata = match metadata {
            Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        metadata.insert("job_id".into(), json!(self.job.id));
        metadata.insert("job_type".into(), json!(self.job.job_type));
        metadata.insert("main".into(), json!(main_role));
        metadata.insert("files".into(), json!(self.files));
        NewMedia {
            id: self.id,
            project_id: self.job.project_id.or(self.input.project_id),
            user_id: self.owner(),
            s3_key: main.key,
            media_type: kind.media_type.as_str().into(),
            duration_seconds,
            size_bytes: main.size as i64,
            mimetype: kind.mimetype.into(),
            derived_from: Some(self.input.id),
            metadata: Value::Object(metadata),
        }
    }
}

/// Writes `cues` as SRT and WebVTT (`{name}.srt`, `{name}.vtt`) into `dir` and uploads
/// both as outputs in the roles `srt` and `vtt`. Returns, per format, the local file and
/// the stored object.
pub async fn upload_subtitles(
    storage: &Storage,
    output: &mut Output<'_>,
    dir: &Path,
    cues: &[Cue],
    name: &str,
) -> Result<Vec<(SubtitleFormat, PathBuf, Stored)>, HandlerError> {
    let mut written = Vec::new();
    for format in [SubtitleFormat::Srt, SubtitleFormat::WebVtt] {
        let file = format!("{name}.{}", format.extension());
        let path = dir.join(&file);
        tokio::fs::write(&path, subtitles::write(cues, format))
            .await
            .map_err(|e| retryable(&format!("writing {file}"), e))?;
        let stored = output
            .upload(storage, format.extension(), &file, &path)
            .await?;
        written.push((format, path, stored));
    }
    Ok(written)
}

/// The streams of a media output, for its metadata: what a player will offer.
pub fn streams_of(info: &MediaInfo) -> Value {
    info.streams
        .iter()
        .map(|s| {
            let kind = match &s.kind {
                StreamKind::Video => "video",
                StreamKind::Audio => "audio",
                StreamKind::Subtitle => "subtitle",
                StreamKind::Other(other) => other.as_str(),
            };
            json!({ "index": s.index, "kind": kind, "codec": s.codec, "language": s.language })
        })
        .collect()
}

/// What an output file is: `media_files.media_type` (`video`, `audio` or `subtitle`, as
/// uploads are classified) and its MIME type.
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    pub media_type: MediaType,
    pub mimetype: &'static str,
}
