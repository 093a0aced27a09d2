//! Every file a job wrote, through the API: a completed job of each type lists each of its
//! files (its media, SRT, WebVTT and transcript) with kind, MIME type, size, duration and a
//! link, and each link downloads exactly those bytes; `GET /api/media/{id}` lists the same
//! for the output.

use super::storage::{complete, start_upload};
use super::*;

pub const SRT: &str = "1\n00:00:00,500 --> 00:00:02,500\nThe weather is very good today.\n\n\
                   2\n00:00:03,000 --> 00:00:05,000\nI would like a cup of coffee.\n";

/// Uploads `bytes` through the API as `name` of `kind`, completed.
pub async fn uploaded(
    api: &TestApi,
    token: &str,
    name: &str,
    kind: &str,
    bytes: Vec<u8>,
) -> String {
    let (media, url) = start_upload(api, token, name, kind, bytes.len()).await;
    let r = api.http.put(&url).body(bytes).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let (status, body) = complete(api, token, &media).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    media
}

/// Downloads each listed file and checks it is what the listing says.
async fn assert_files_download(api: &TestApi, files: &Value, kinds: &[&str], what: &str) {
    let files = files
        .as_array()
        .unwrap_or_else(|| panic!("{what}: no files"));
    let listed: Vec<&str> = files.iter().map(|f| f["kind"].as_str().unwrap()).collect();
    assert_eq!(listed, kinds, "{what}: {files:?}");
    for file in files {
        let url = file["download"]["url"].as_str().unwrap();
        let r = api.http.get(url).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{what}: {file}");
        let bytes = r.bytes().await.unwrap();
        assert_eq!(
            Some(bytes.len() as i64),
            file["size_bytes"].as_i64(),
            "{what}: {file}"
        );
        assert!(
            file["duration_seconds"].as_f64().unwrap() > 1.0,
            "{what}: {file}"
        );
        let mimetype = file["mimetype"].as_str().unwrap();
        match file["kind"].as_str().unwrap() {
            "srt" => {
                assert_eq!(mimetype, "application/x-subrip");
                assert!(std::str::from_utf8(&bytes).unwrap().contains(" --> "));
            }
            "vtt" => {
                assert_eq!(mimetype, "text/vtt");
                assert!(bytes.starts_with(b"WEBVTT"), "{what}");
            }
            "video" => assert_eq!(mimetype, "video/mp4"),
            "audio" => assert!(mimetype.starts_with("audio/"), "{what}: {mimetype}"),
            "transcript" => {
                assert_eq!(mimetype, "application/json");
                let lines: Value = serde_json::from_slice(&bytes).unwrap();
                assert!(
                    !lines["lines"].as_array().unwrap().is_empty(),
                    "{what}: {lines}"
                );
            }
            other => panic!("{what}: unexpected kind {other}"),
        }
    }
}

#[tokio::test]
async fn a_completed_job_of_each_type_lists_every_file_with_a_working_link() {
    let db = TestDb::new().await;
    let (config, dir) = config(&db);
    let api = TestApi::start(config.clone()).await;
    let (_, token) = signed_in(&api, &db, "user", 1000).await;
    let (path, _) = crate::job_types::video(
        dir.path(),
        "talk.mp4",
        &[
            "The weather is very good today.",
            "I would like a cup of coffee.",
        ],
    )
    .await;
    let video = uploaded(
        &api,
        &token,
        "talk.mp4",
        "video",
        std::fs::read(&path).unwrap(),
    )
    .await;
    let srt = uploaded(&api, &token, "talk.srt", "subtitle", SRT.into()).await;

    let cases: [(&str, &str, Value, &[&str]); 5] = [
        (
            "video_translation",
            &video,
            json!({"source_language": "en", "target_language": "es"}),
            &["video", "srt", "vtt", "transcript"],
        ),
        (
            "audio_translation",
            &video,
            json!({"source_language": "en", "target_language": "es"}),
            &["audio", "srt", "vtt", "transcript"],
        ),
        (
            "subtitles",
            &video,
            json!({"format": "vtt"}),
            &["vtt", "srt", "transcript"],
        ),
        (
            "subtitle_translation",
            &srt,
            json!({"target_language": "es"}),
            &["srt", "vtt", "transcript"],
        ),
        (
            "subtitle_to_audio",
            &srt,
            json!({"source_language": "en", "target_language": "es"}),
            &["audio", "srt", "vtt", "transcript"],
        ),
    ];
    let mut jobs = Vec::new();
    for (job_type, input, options, _) in &cases {
        let body = json!({"job_type": job_type, "input_media_id": input, "options": options});
        let (status, job) = parts(api.post("/api/jobs", &token, body).await).await;
        assert_eq!(status, StatusCode::CREATED, "{job_type}: {job}");
        jobs.push(job["id"].as_str().unwrap().parse::<Uuid>().unwrap());
    }
    run_jobs(&db, &config, &jobs).await;

    let (_, stranger) = signed_in(&api, &db, "user", 0).await;
    for ((job_type, _, _, kinds), id) in cases.iter().zip(&jobs) {
        let (status, job) = parts(api.get(&format!("/api/jobs/{id}"), &token).await).await;
        assert_eq!(
            (status, job["status"].as_str()),
            (StatusCode::OK, Some("completed")),
            "{job}"
        );
        let output = &job["output"];
        assert_files_download(&api, &output["files"], kinds, job_type).await;
        // The main file is the output's own, and `download` is its link.
        assert_eq!(
            output["files"][0]["size_bytes"], output["size_bytes"],
            "{job_type}"
        );
        assert_eq!(
            output["files"][0]["download"]["url"],
            output["download"]["url"]
        );

        let media = output["media_id"].as_str().unwrap();
        let (status, row) = parts(api.get(&format!("/api/media/{media}"), &token).await).await;
        assert_eq!(status, StatusCode::OK, "{row}");
        assert_files_download(&api, &row["files"], kinds, job_type).await;
        let r = api.get(&format!("/api/media/{media}"), &stranger).await;
        assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
    }

    // An upload lists itself.
    let (_, row) = parts(api.get(&format!("/api/media/{srt}"), &token).await).await;
    let files = row["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{row}");
    assert_eq!(
        (files[0]["kind"].as_str(), files[0]["size_bytes"].as_i64()),
        (Some("file"), Some(SRT.len() as i64))
    );
    api.stop().await;
}
