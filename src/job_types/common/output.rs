//! A job's output: the files finalize uploads and the media row that records them.
//!
//! Outputs are the user's media, so they live under `media/{user_id}/{output_id}/` beside
//! their uploads. The output row is one file (the video, the audio or the subtitles the job
//! was asked for); `metadata.files` records every file the job wrote, by role (`video`,
//! `audio`, `srt`, `vtt`), with its key, size, MIME type and duration
//! ([`crate::job::OutputFile`]), and `metadata.main` names the row's own role.

use super::context::{InputMedia, retryable, store};
use crate::job::{JobInfo, SegmentView};
use crate::job::{MediaType, NewMedia, OutputFile};
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
    /// Every file written, by role (`video`, `audio`, `srt`, `vtt`).
    files: BTreeMap<String, OutputFile>,
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

    /// Uploads `path` as the output file `file` (of type `mimetype`) in the role `role`.
    pub async fn upload(
        &mut self,
        storage: &Storage,
        role: &str,
        file: &str,
        path: &Path,
        mimetype: &str,
    ) -> Result<(), HandlerError> {
        let key = self.key(file);
        let size = store(storage, &key, path).await?;
        self.files.insert(
            role.to_string(),
            OutputFile {
                key,
                size_bytes: Some(size as i64),
                mimetype: Some(mimetype.to_string()),
                duration_seconds: None,
            },
        );
        Ok(())
    }

    /// The output's media row: the file uploaded in `main_role` is the row's own; every
    /// file uploaded is listed in `metadata.files` by role, the main one included, with
    /// `metadata.main` naming the main role. All of them cover the input's timeline, so
    /// each has the output's `duration_seconds`.
    pub fn media(
        mut self,
        main_role: &str,
        media_type: MediaType,
        duration_seconds: Option<f64>,
        metadata: Value,
    ) -> NewMedia {
        for file in self.files.values_mut() {
            file.duration_seconds = duration_seconds;
        }
        let main = self
            .files
            .get(main_role)
            .cloned()
            .unwrap_or_else(|| panic!("finalize uploaded no `{main_role}` file"));
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
            media_type: media_type.as_str().into(),
            duration_seconds,
            size_bytes: main.size_bytes.unwrap_or_default(),
            mimetype: main.mimetype.unwrap_or_default(),
            derived_from: Some(self.input.id),
            metadata: Value::Object(metadata),
        }
    }
}

/// Writes `cues` as SRT and WebVTT (`{name}.srt`, `{name}.vtt`) into `dir` and uploads
/// both as outputs in the roles `srt` and `vtt`. Returns, per format, the local file.
pub async fn upload_subtitles(
    storage: &Storage,
    output: &mut Output<'_>,
    dir: &Path,
    cues: &[Cue],
    name: &str,
) -> Result<Vec<(SubtitleFormat, PathBuf)>, HandlerError> {
    let mut written = Vec::new();
    for format in [SubtitleFormat::Srt, SubtitleFormat::WebVtt] {
        let file = format!("{name}.{}", format.extension());
        let path = dir.join(&file);
        tokio::fs::write(&path, subtitles::write(cues, format))
            .await
            .map_err(|e| retryable(&format!("writing {file}"), e))?;
        output
            .upload(
                storage,
                format.extension(),
                &file,
                &path,
                format.mime_type(),
            )
            .await?;
        written.push((format, path));
    }
    Ok(written)
}

/// Writes what `segments` heard and made of it (see [`crate::job::transcript`]) as
/// `{name}.transcript.json` into `dir` and uploads it in the role `transcript`: the
/// transcript outlives the segment rows, which are pruned after
/// `worker.segment_retention_seconds`, and is kept (and expires) with the output.
pub async fn upload_transcript(
    storage: &Storage,
    output: &mut Output<'_>,
    segments: &[SegmentView],
    dir: &Path,
    name: &str,
) -> Result<(), HandlerError> {
    let body = json!({ "lines": crate::job::transcript::lines(segments) });
    let file = format!("{name}.transcript.json");
    let path = dir.join(&file);
    tokio::fs::write(&path, serde_json::to_vec(&body).expect("serializable"))
        .await
        .map_err(|e| retryable(&format!("writing {file}"), e))?;
    output
        .upload(
            storage,
            crate::job::transcript::ROLE,
            &file,
            &path,
            "application/json",
        )
        .await
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
