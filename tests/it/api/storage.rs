//! Uploads and downloads through the URLs the API hands out: presigned against a real S3
//! server (s3s-fs), and the local store's signed routes; expired or altered ones refused.

use super::*;
use crate::s3::S3Server;
use octavia::storage::Storage;

/// A WAV of `ms` of silence, as bytes.
async fn wav(ms: u64) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.wav");
    octavia::pipeline::media::silence(ms, &path).await.unwrap();
    std::fs::read(&path).unwrap()
}

const SRT: &str = "1\n00:00:01,000 --> 00:00:31,000\nHello there.\n\n\
                   2\n00:01:00,000 --> 00:01:40,500\nGeneral Kenobi.\n";

/// Starts an upload and returns (media id, upload URL).
pub(super) async fn start_upload(
    api: &TestApi,
    token: &str,
    name: &str,
    kind: &str,
    size: usize,
) -> (String, String) {
    let (status, body) = parts(
        api.post(
            "/api/uploads",
            token,
            json!({"file_name": name, "media_type": kind, "size_bytes": size}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["upload"]["method"], "PUT");
    assert_eq!(body["media"]["status"], "pending");
    (
        body["media"]["id"].as_str().unwrap().to_string(),
        body["upload"]["url"].as_str().unwrap().to_string(),
    )
}

pub(super) async fn complete(api: &TestApi, token: &str, media: &str) -> (StatusCode, Value) {
    parts(
        api.post(&format!("/api/uploads/{media}/complete"), token, json!({}))
            .await,
    )
    .await
}

/// Changes the last character of a query parameter's value.
fn tamper(url: &str, param: &str) -> String {
    let mut parsed = reqwest::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(k, v)| {
            if k == param {
                let mut v = v.to_string();
                let last = v.pop().unwrap();
                v.push(if last == '0' { '1' } else { '0' });
                (k.to_string(), v)
            } else {
                (k.to_string(), v.to_string())
            }
        })
        .collect();
    parsed.query_pairs_mut().clear().extend_pairs(pairs);
    parsed.to_string()
}

#[tokio::test]
async fn presigned_s3_urls_upload_inputs_and_download_outputs() {
    let s3 = S3Server::start();
    let db = TestDb::new().await;
    let (mut config, _dir) = config(&db);
    config.storage = s3.config();
    let api = TestApi::start(config.clone()).await;
    let (user, token) = signed_in(&api, &db, "user", 100).await;

    // 61.5 s of audio: two started minutes.
    let bytes = wav(61_500).await;
    let (media, url) = start_upload(&api, &token, "talk.wav", "audio", bytes.len()).await;
    assert!(url.starts_with(&s3.endpoint), "{url}");
    let (status, body) = complete(&api, &token, &media).await;
    assert_eq!(status, StatusCode::CONFLICT, "not uploaded yet: {body}");

    // A small body: S3 answers before reading one, and may close on a large one unread.
    let r = api
        .http
        .put(tamper(&url, "X-Amz-Signature"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "S3 refuses an altered URL"
    );
    let r = api.http.put(&url).body(bytes.clone()).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    assert_eq!(
        std::fs::read(s3.object_file(&format!("media/{user}/{media}/talk.wav"))).unwrap(),
        bytes
    );

    let (status, done) = complete(&api, &token, &media).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["status"], "uploaded");
    assert_eq!(done["size_bytes"], bytes.len());
    let duration = done["duration_seconds"].as_f64().unwrap();
    assert!((duration - 61.5).abs() < 0.05, "{duration}");
    let download = done["download"]["url"].as_str().unwrap();
    assert_eq!(
        api.http
            .get(download)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
        bytes
    );
    let r = api
        .http
        .get(tamper(download, "X-Amz-Signature"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // Priced by its started minutes: 2 × pricing.audio_translation.
    let (status, job) = parts(
        api.post(
            "/api/jobs",
            &token,
            json!({"job_type": "audio_translation", "input_media_id": media,
                   "options": {"source_language": "en", "target_language": "es"}}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    assert_eq!(job["cost_credits"], 2 * config.pricing.audio_translation);
    assert_eq!(job["options"]["target_language"], "es");
    assert!(job["output"].is_null());

    // As a worker would: an output file, the job completed with it.
    let job_id: Uuid = job["id"].as_str().unwrap().parse().unwrap();
    let storage = Storage::from_config(&config.storage).unwrap();
    let key = octavia::storage::job_output_key(job_id, "out.srt");
    storage
        .put_bytes(&key, SRT.as_bytes().to_vec().into())
        .await
        .unwrap();
    let client = db.client().await;
    let output = Uuid::now_v7();
    client
        .execute(
            "INSERT INTO media_files (id, user_id, s3_key, media_type, mimetype, size_bytes, derived_from)
             VALUES ($1, $2, $3, 'subtitle', 'application/x-subrip', $4, $5)",
            &[&output, &user, &key, &(SRT.len() as i64), &media.parse::<Uuid>().unwrap()],
        )
        .await
        .unwrap();
    client
        .execute(
            "UPDATE jobs SET status = 'completed', step = 'done', progress = 100, output_media_id = $2, finished_at = now() WHERE id = $1",
            &[&job_id, &output],
        )
        .await
        .unwrap();
    let (status, job) = parts(api.get(&format!("/api/jobs/{job_id}"), &token).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(job["output"]["media_id"], output.to_string());
    let url = job["output"]["download"]["url"].as_str().unwrap();
    assert_eq!(
        api.http
            .get(url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        SRT
    );

    // An expired URL is refused.
    let mut short = config.clone();
    short.storage.url_expiry_seconds = 1;
    let short_api = TestApi::start(short).await;
    let (_, job) = parts(short_api.get(&format!("/api/jobs/{job_id}"), &token).await).await;
    let url = job["output"]["download"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = api.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // The local store's routes do not exist with S3.
    let r = api
        .http
        .get(format!("{}/api/storage/{key}?expires=1&sig=00", api.url))
        .send()
        .await
        .unwrap();
    assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn local_signed_routes_upload_and_download_and_refuse_altered_or_expired_links() {
    let db = TestDb::new().await;
    let (mut config, _dir) = config(&db);
    // Small, so the too-large bodies below are sent whole before the server answers.
    config.api.max_upload_bytes = 4096;
    let api = TestApi::start(config.clone()).await;
    let (_, token) = signed_in(&api, &db, "user", 100).await;

    let (media, url) = start_upload(&api, &token, "episode 1.srt", "subtitle", SRT.len()).await;
    assert!(
        url.starts_with(&format!("{}/api/storage/media/", api.url)),
        "{url}"
    );
    // An altered, stripped or misused link stores nothing.
    for bad in [
        tamper(&url, "sig"),
        tamper(&url, "expires"),
        url.split('?').next().unwrap().to_string(),
        url.replace("episode_1.srt", "other.srt"),
    ] {
        let r = api.http.put(&bad).body(SRT).send().await.unwrap();
        assert_error(r, StatusCode::FORBIDDEN, "forbidden").await;
    }
    let r = api.http.get(&url).send().await.unwrap();
    assert_error(r, StatusCode::FORBIDDEN, "forbidden").await;
    let (status, _) = complete(&api, &token, &media).await;
    assert_eq!(status, StatusCode::CONFLICT);

    let r = api.http.put(&url).body(SRT).send().await.unwrap();
    let (status, stored) = parts(r).await;
    assert_eq!(status, StatusCode::OK, "{stored}");
    assert_eq!(stored["size_bytes"], SRT.len());
    let (status, done) = complete(&api, &token, &media).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["duration_seconds"], 100.5, "{done}");
    assert_eq!(done["mimetype"], "application/x-subrip");
    let (again_status, again) = complete(&api, &token, &media).await;
    assert_eq!((again_status, &again["id"]), (StatusCode::OK, &done["id"]));

    let download = done["download"]["url"].as_str().unwrap();
    let r = api.http.get(download).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), SRT);
    let r = api.http.get(tamper(download, "sig")).send().await.unwrap();
    assert_error(r, StatusCode::FORBIDDEN, "forbidden").await;
    let r = api
        .http
        .put(download)
        .body("overwrite")
        .send()
        .await
        .unwrap();
    assert_error(r, StatusCode::FORBIDDEN, "forbidden").await;

    // Subtitle jobs are priced by the time their cues are shown: 30 s + 40.5 s, 2 minutes.
    let (status, job) = parts(translate_subtitles(&api, &token, &media).await).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    assert_eq!(job["cost_credits"], 2 * config.pricing.subtitle_translation);
    // An input of the wrong kind is refused.
    let r = api
        .post("/api/jobs", &token, json!({"job_type": "video_translation", "input_media_id": media, "options": {"target_language": "es"}}))
        .await;
    assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid").await;

    // Expired links.
    let mut short = config.clone();
    short.storage.url_expiry_seconds = 1;
    let short_api = TestApi::start(short).await;
    let (_, media_view) = parts(short_api.get(&format!("/api/media/{media}"), &token).await).await;
    let expiring = media_view["download"]["url"].as_str().unwrap().to_string();
    let (other, upload_url) =
        start_upload(&short_api, &token, "late.srt", "subtitle", SRT.len()).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = api.http.get(&expiring).send().await.unwrap();
    let body = assert_error(r, StatusCode::FORBIDDEN, "forbidden").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{body}"
    );
    let r = api.http.put(&upload_url).body(SRT).send().await.unwrap();
    assert_error(r, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(complete(&api, &token, &other).await.0, StatusCode::CONFLICT);

    // Too large, declared or streamed; a file that is not what it says.
    let r = api
        .post(
            "/api/uploads",
            &token,
            json!({"file_name": "big.wav", "media_type": "audio", "size_bytes": 4097}),
        )
        .await;
    assert_error(r, StatusCode::PAYLOAD_TOO_LARGE, "too_large").await;
    let (big, big_url) = start_upload(&api, &token, "big.wav", "audio", 1000).await;
    let r = api
        .http
        .put(&big_url)
        .body(vec![0u8; 4106])
        .send()
        .await
        .unwrap();
    assert_error(r, StatusCode::PAYLOAD_TOO_LARGE, "too_large").await;
    let chunks =
        futures_util::stream::iter((0..8).map(|_| Ok::<_, std::io::Error>(vec![0u8; 1024])));
    let r = api
        .http
        .put(&big_url)
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_error(r, StatusCode::PAYLOAD_TOO_LARGE, "too_large").await;
    api.http
        .put(&big_url)
        .body(vec![7u8; 1000])
        .send()
        .await
        .unwrap();
    let (status, body) = complete(&api, &token, &big).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "noise is not audio: {body}"
    );
    // A body longer than declared is refused as it arrives, and nothing is stored.
    let (mismatch, mismatch_url) = start_upload(&api, &token, "a.srt", "subtitle", 5).await;
    let r = api.http.put(&mismatch_url).body(SRT).send().await.unwrap();
    assert_error(r, StatusCode::PAYLOAD_TOO_LARGE, "too_large").await;
    let (status, body) = complete(&api, &token, &mismatch).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (garbage, garbage_url) = start_upload(&api, &token, "b.srt", "subtitle", 9).await;
    api.http
        .put(&garbage_url)
        .body("not a srt")
        .send()
        .await
        .unwrap();
    let (status, body) = complete(&api, &token, &garbage).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    // Jobs take completed uploads only.
    let r = api
        .post(
            "/api/jobs",
            &token,
            json!({"job_type": "subtitle_to_audio", "input_media_id": other}),
        )
        .await;
    assert_error(r, StatusCode::CONFLICT, "conflict").await;
}
