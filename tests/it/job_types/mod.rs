//! The pipeline's job types end to end: media generated for each test, uploaded to a real
//! object store (a local directory or s3s-fs), run by real workers (in-process, or
//! `octavia-worker` processes) with the real engines, and the outputs checked with
//! ffprobe and the subtitle parser. A missing program fails the test with the command that
//! installs it.

mod bad_input;
mod killed_worker;
mod media_jobs;
mod retention;
mod subtitle_jobs;
mod worker_start;

use crate::harness::TestDb;
use crate::pipeline::must;
use crate::s3::S3Server;
use crate::support::{TestWorker, enqueue_jobs, fast_config, wait_terminal};
use octavia::config::Config;
use octavia::job::NewMedia;
use octavia::job::{JobView, SegmentView};
use octavia::pipeline::Engines;
use octavia::pipeline::media::{self, MediaInfo, StreamKind, Window, wav::Wav};
use octavia::pipeline::subtitles::{self, Cue};
use octavia::queue::admin;
use octavia::queue::complete::insert_media;
use octavia::queue::enqueue::NewJob;
use octavia::storage::{Storage, media_key};
use serde_json::Value;
use std::path::{Path, PathBuf};
use tempfile::TempDir;
use uuid::Uuid;

/// What one job costs in these tests: a failed job must give it back.
pub const COST: i64 = 10;

/// A test's database, object store and configuration.
pub struct Env {
    pub db: TestDb,
    pub config: Config,
    pub storage: Storage,
    /// Where outputs are downloaded to, and the local store's directory.
    pub dir: TempDir,
    pub s3: Option<S3Server>,
}

impl Env {
    /// A database and a local store, segments of about `segment_seconds`.
    pub async fn local(segment_seconds: u64) -> Env {
        let dir = crate::pipeline::scratch();
        let mut config = config_for(segment_seconds).await;
        config.storage.local_dir = dir.path().join("objects").display().to_string();
        Env::with(config, dir, None).await
    }

    /// A database and a real S3 server (s3s-fs).
    pub async fn s3(segment_seconds: u64) -> Env {
        let s3 = S3Server::start();
        let mut config = config_for(segment_seconds).await;
        config.storage = s3.config();
        Env::with(config, crate::pipeline::scratch(), Some(s3)).await
    }

    async fn with(mut config: Config, dir: TempDir, s3: Option<S3Server>) -> Env {
        let db = TestDb::new().await;
        let fast = fast_config(&db);
        config.database = fast.database;
        config.worker = fast.worker;
        let storage = Storage::from_config(&config.storage).unwrap();
        Env {
            db,
            config,
            storage,
            dir,
            s3,
        }
    }

    /// An in-process worker with every job type.
    pub fn worker(&self, id: &str) -> TestWorker {
        let registry = octavia::job_types::registry(&self.config).unwrap();
        TestWorker::start(self.config.clone(), registry, id)
    }

    /// Uploads `file` as a media file of `user` and records it, as the API does.
    pub async fn upload(&self, user: Uuid, file: &Path, media_type: &str) -> Uuid {
        let id = Uuid::now_v7();
        let name = file.file_name().unwrap().to_str().unwrap();
        let key = media_key(user, id, name);
        let size = self.storage.put_file(&key, file).await.unwrap();
        let client = self.db.client().await;
        insert_media(
            &client,
            &NewMedia {
                id,
                project_id: None,
                user_id: Some(user),
                s3_key: key,
                media_type: media_type.into(),
                duration_seconds: None,
                size_bytes: size as i64,
                mimetype: "application/octet-stream".into(),
                derived_from: None,
                metadata: serde_json::json!({}),
            },
        )
        .await
        .unwrap();
        id
    }

    /// Writes `bytes` to a file called `name` and uploads it.
    pub async fn upload_bytes(&self, user: Uuid, name: &str, bytes: &[u8], kind: &str) -> Uuid {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        self.upload(user, &path, kind).await
    }

    /// Creates a job of `user` on `input`, costing [`COST`].
    pub async fn job(
        &self,
        user: Uuid,
        job_type: &str,
        input: Option<Uuid>,
        options: Value,
    ) -> Uuid {
        let job = NewJob {
            user_id: Some(user),
            input_media_id: input,
            cost_credits: COST,
            ..NewJob::new(job_type, options)
        };
        enqueue_jobs(&self.db, vec![job]).await[0]
    }

    /// Waits for `jobs` to end.
    pub async fn wait(&self, jobs: &[Uuid], secs: u64) {
        wait_terminal(&self.db, jobs, secs).await
    }

    pub async fn job_view(&self, job: Uuid) -> JobView {
        let client = self.db.client().await;
        admin::job(&client, job).await.unwrap().unwrap()
    }

    pub async fn segments(&self, job: Uuid) -> Vec<SegmentView> {
        let client = self.db.client().await;
        admin::segments(&client, job).await.unwrap()
    }

    /// The completed job's output media row, and its file downloaded.
    pub async fn output(&self, job: Uuid) -> (MediaRow, PathBuf) {
        let view = self.job_view(job).await;
        assert_eq!(
            view.status, "completed",
            "job {job} ended {}: {:?}",
            view.status, view.last_error
        );
        let id = view.output_media_id.expect("a completed job has an output");
        let row = self.media(id).await;
        let path = self.download(&row.s3_key).await;
        (row, path)
    }

    pub async fn media(&self, id: Uuid) -> MediaRow {
        let client = self.db.client().await;
        let r = client
            .query_one(
                "SELECT s3_key, media_type, duration_seconds::float8, size_bytes, mimetype,
                        derived_from, metadata, user_id
                 FROM media_files WHERE id = $1",
                &[&id],
            )
            .await
            .unwrap();
        MediaRow {
            s3_key: r.get(0),
            media_type: r.get(1),
            duration_seconds: r.get(2),
            size_bytes: r.get(3),
            mimetype: r.get(4),
            derived_from: r.get(5),
            metadata: r.get(6),
            user_id: r.get(7),
        }
    }

    /// Downloads an object into the test's directory.
    pub async fn download(&self, key: &str) -> PathBuf {
        let path = self
            .dir
            .path()
            .join(format!("out-{}", key.rsplit('/').next().unwrap()));
        self.storage.get_to_file(key, &path).await.unwrap();
        path
    }

    /// The subtitle file the output row lists under `role` (`srt` or `vtt`), parsed and
    /// checked: cues in order, none overlapping, none empty.
    pub async fn subtitle_file(&self, row: &MediaRow, role: &str) -> Vec<Cue> {
        let key = row.metadata["files"][role]["key"]
            .as_str()
            .unwrap_or_else(|| panic!("no `{role}` in {}", row.metadata));
        let text = std::fs::read_to_string(self.download(key).await).unwrap();
        let cues = subtitles::parse(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
        subtitles::validate(&cues).unwrap_or_else(|e| panic!("{e}:\n{text}"));
        assert!(cues.iter().all(|c| !c.text.trim().is_empty()), "{text}");
        cues
    }
}

/// A media_files row.
#[derive(Debug)]
pub struct MediaRow {
    pub s3_key: String,
    pub media_type: Option<String>,
    pub duration_seconds: Option<f64>,
    pub size_bytes: Option<i64>,
    pub mimetype: Option<String>,
    pub derived_from: Option<Uuid>,
    pub metadata: Value,
    pub user_id: Option<Uuid>,
}

/// The default configuration with short segments; fails the test, with the command that
/// installs them, when the engines' programs are missing.
async fn config_for(segment_seconds: u64) -> Config {
    let mut config = Config::default();
    config.pipeline.segment_seconds = segment_seconds;
    must(must(Engines::from_config(&config)).check().await);
    config
}

/// Generates a video speaking `sentences`, in `dir`.
pub async fn video(dir: &Path, name: &str, sentences: &[&str]) -> (PathBuf, MediaInfo) {
    let path = dir.join(name);
    must(
        media::generate_video(
            sentences,
            octavia::pipeline::Language::English,
            crate::pipeline::PAUSE_MS,
            &path,
        )
        .await,
    );
    let info = must(media::probe(&path).await);
    (path, info)
}

/// Checks a dubbed video against its input: the same picture (codec and frame count: it
/// was copied), the dub first and the original audio second, Spanish subtitles embedded,
/// the same duration, and speech in the dub.
pub async fn assert_dubbed_video(out: &Path, input: &Path, input_info: &MediaInfo) {
    let info = must(media::probe(out).await);
    let of =
        |kind: StreamKind| -> Vec<_> { info.streams.iter().filter(|s| s.kind == kind).collect() };
    let video = of(StreamKind::Video);
    assert_eq!(video.len(), 1, "{info:?}");
    assert_eq!(video[0].codec, input_info.video().unwrap().codec);
    assert_eq!(
        must(media::count_video_frames(out).await),
        must(media::count_video_frames(input).await),
        "the picture was copied whole"
    );
    let audio = of(StreamKind::Audio);
    assert_eq!(audio.len(), 2, "{info:?}");
    assert_eq!(audio[0].codec, "aac");
    assert_eq!(audio[0].language.as_deref(), Some("spa"), "dub first");
    assert_eq!(audio[1].language.as_deref(), Some("eng"), "original second");
    let subs = of(StreamKind::Subtitle);
    assert_eq!(subs.len(), 1, "{info:?}");
    assert_eq!(subs[0].codec, "mov_text");
    assert_eq!(subs[0].language.as_deref(), Some("spa"));
    same_duration(info.duration_ms, input_info.duration_ms);
    // The first audio track carries speech, not silence.
    let dir = crate::pipeline::scratch();
    let wav = dir.path().join("dub.wav");
    must(media::extract_audio(out, Window::new(0, info.duration_ms), &wav).await);
    let dub = must(Wav::read(&wav).await);
    let loudest = dub
        .data
        .chunks_exact(2)
        .map(|s| i16::from_le_bytes([s[0], s[1]]).unsigned_abs())
        .max()
        .unwrap_or(0);
    assert!(loudest > 2_000, "the dub is silent (peak {loudest})");
}

/// Asserts two durations in ms are within 100 ms of each other.
#[track_caller]
pub fn same_duration(output_ms: u64, input_ms: u64) {
    assert!(
        output_ms.abs_diff(input_ms) <= 100,
        "the output lasts {output_ms} ms, the input {input_ms} ms"
    );
}

/// The word error rate of what a speech job's segments heard (the phrases of
/// `job_segments.result`) against `sentences`, and the words heard.
pub async fn heard_wer(env: &Env, job: Uuid, sentences: &[&str]) -> (f64, String) {
    let mut heard = Vec::new();
    let mut shown = Vec::new();
    for s in env.segments(job).await {
        let result = s.result.unwrap();
        let window = &result["window"];
        shown.push(format!(
            "[segment {}-{} ms]",
            window["start_ms"], window["end_ms"]
        ));
        for p in result["phrases"].as_array().unwrap() {
            let text = p["text"].as_str().unwrap().to_string();
            shown.push(format!("{}-{} {text}", p["start_ms"], p["end_ms"]));
            heard.push(text);
        }
    }
    (
        crate::pipeline::wer_of(sentences, &heard),
        shown.join(" | "),
    )
}

/// The workers that recorded the segments' results.
pub fn workers_of(segments: &[SegmentView]) -> Vec<String> {
    let mut workers: Vec<String> = segments
        .iter()
        .filter_map(|s| s.result.as_ref()?["worker"].as_str().map(String::from))
        .collect();
    workers.sort();
    workers.dedup();
    workers
}
