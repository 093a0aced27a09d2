//! Sealed uploads: once `complete` has priced an upload, other bytes put to its link are
//! refused (the local store's route) or found out (S3) when a job is created and when the
//! pipeline reads the input, and nobody is charged the wrong price.

use super::storage::{complete, start_upload};
use super::*;
use crate::s3::S3Server;
use octavia::job::JobView;
use octavia::queue::admin;

/// One cue, shown until 5 s: one minute's price.
const HONEST: &str = "1\n00:00:01,000 --> 00:00:05,000\nHello there.\n";

/// 120 cues over 118 minutes: 118 minutes' price.
fn swapped() -> String {
    (0..120)
        .map(|i| {
            let start = i * 59;
            format!(
                "{}\n{:02}:{:02}:{:02},000 --> {:02}:{:02}:{:02},500\nLine {i}.\n\n",
                i + 1,
                start / 3600,
                start / 60 % 60,
                start % 60,
                (start + 58) / 3600,
                (start + 58) / 60 % 60,
                (start + 58) % 60
            )
        })
        .collect()
}

/// [`HONEST`] with its cue shown until 59 minutes: the same number of bytes, 59 minutes'
/// price.
const SAME_LENGTH: &str = "1\n00:00:01,000 --> 00:59:05,000\nHello there.\n";

/// Uploads and completes [`HONEST`], then puts `swap` to the same link; returns the media
/// id and the status of that second PUT.
async fn upload_then_swap(api: &TestApi, token: &str, swap: &str) -> (String, StatusCode) {
    let (media, url) = start_upload(api, token, "talk.srt", "subtitle", HONEST.len()).await;
    let r = api.http.put(&url).body(HONEST).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let (status, done) = complete(api, token, &media).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["duration_seconds"], 5.0, "{done}");
    let r = api
        .http
        .put(&url)
        .body(swap.to_string())
        .send()
        .await
        .unwrap();
    (media, r.status())
}

#[tokio::test]
async fn the_local_store_refuses_bytes_put_after_an_upload_was_completed() {
    let db = TestDb::new().await;
    let (config, _dir) = config(&db);
    let api = TestApi::start(config.clone()).await;
    let (user, token) = signed_in(&api, &db, "user", 100).await;
    let (media, second_put) = upload_then_swap(&api, &token, &swapped()).await;
    assert_eq!(second_put, StatusCode::CONFLICT);

    // The stored bytes are the completed ones, and the job costs what they are worth.
    let (_, view) = parts(api.get(&format!("/api/media/{media}"), &token).await).await;
    let download = view["download"]["url"].as_str().unwrap();
    let stored = api.http.get(download).send().await.unwrap().text().await;
    assert_eq!(stored.unwrap(), HONEST);
    let (status, job) = parts(translate_subtitles(&api, &token, &media).await).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    assert_eq!(job["cost_credits"], config.pricing.subtitle_translation);
    assert_eq!(
        balance(&db, user).await.0,
        100 - job["cost_credits"].as_i64().unwrap()
    );

    // A signed link to a key no pending upload has is refused too.
    let (other, url) = start_upload(&api, &token, "b.srt", "subtitle", HONEST.len()).await;
    let r = api.http.put(&url).body(HONEST).send().await.unwrap();
    assert!(r.status().is_success());
    complete(&api, &token, &other).await;
    let r = api.http.put(&url).body("x").send().await.unwrap();
    let body = assert_error(r, StatusCode::CONFLICT, "conflict").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("this upload was completed"),
        "{body}"
    );
    api.stop().await;
}

#[tokio::test]
async fn bytes_swapped_in_s3_after_completion_are_refused_at_job_creation_and_at_plan() {
    let s3 = S3Server::start();
    let db = TestDb::new().await;
    let (mut config, _dir) = config(&db);
    config.storage = s3.config();
    let api = TestApi::start(config.clone()).await;
    let (user, token) = signed_in(&api, &db, "user", 100).await;

    // The presigned PUT pins the declared length: S3 itself refuses a longer file.
    let (_, second_put) = upload_then_swap(&api, &token, &swapped()).await;
    assert_eq!(
        second_put,
        StatusCode::FORBIDDEN,
        "S3 refuses the signature"
    );
    // Bytes of the same length pass S3 while the link lives; Octavia refuses them.
    let (media, second_put) = upload_then_swap(&api, &token, SAME_LENGTH).await;
    assert!(second_put.is_success(), "{second_put}");
    let r = translate_subtitles(&api, &token, &media).await;
    let body = assert_error(r, StatusCode::CONFLICT, "conflict").await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("is not what its upload completed with") && message.contains("entity tag"),
        "{message}"
    );
    assert_eq!(balance(&db, user).await, (100, 100), "nothing was charged");

    // Swapped after the job was created: the plan refuses it, and the job is refunded.
    let (media, url) = start_upload(&api, &token, "late.srt", "subtitle", HONEST.len()).await;
    let r = api.http.put(&url).body(HONEST).send().await.unwrap();
    assert!(r.status().is_success());
    let (status, _) = complete(&api, &token, &media).await;
    assert_eq!(status, StatusCode::OK);
    let (status, job) = parts(translate_subtitles(&api, &token, &media).await).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let r = api.http.put(&url).body(SAME_LENGTH).send().await.unwrap();
    assert!(r.status().is_success());
    let id: Uuid = job["id"].as_str().unwrap().parse().unwrap();
    run_jobs(&db, &config, &[id]).await;
    let client = db.client().await;
    let view: JobView = admin::job(&client, id).await.unwrap().unwrap();
    assert_eq!(view.status, "failed", "{:?}", view.last_error);
    let error = view.last_error.unwrap_or_default();
    assert!(
        error.contains("is not what its upload completed with"),
        "{error}"
    );
    assert_eq!(balance(&db, user).await, (100, 100), "the job was refunded");
    api.stop().await;
}

/// `POST /api/uploads` of [`HONEST`] with its SHA-256 declared: (media id, link).
async fn start_checked_upload(api: &TestApi, token: &str) -> (String, Value) {
    use sha2::Digest;
    let sha256 = hex::encode(sha2::Sha256::digest(HONEST));
    let body = json!({"file_name": "talk.srt", "media_type": "subtitle",
                      "size_bytes": HONEST.len(), "sha256": sha256});
    let (status, created) = parts(api.post("/api/uploads", token, body).await).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let link = created["upload"].clone();
    assert_eq!(
        link["headers"]["Content-Length"],
        HONEST.len().to_string(),
        "{link}"
    );
    assert!(
        link["headers"]["x-amz-checksum-sha256"].is_string(),
        "{link}"
    );
    (created["media"]["id"].as_str().unwrap().to_string(), link)
}

/// A PUT of `body` to `link` with the headers it lists.
async fn put_as_listed(api: &TestApi, link: &Value, body: &str) -> StatusCode {
    let mut request = api
        .http
        .put(link["url"].as_str().unwrap())
        .body(body.to_string());
    for (name, value) in link["headers"].as_object().unwrap() {
        if name != "Content-Length" {
            request = request.header(name, value.as_str().unwrap());
        }
    }
    request.send().await.unwrap().status()
}

#[tokio::test]
async fn upload_links_take_the_declared_bytes_only_on_s3_and_on_the_local_store() {
    let s3 = S3Server::start();
    for on_s3 in [true, false] {
        let db = TestDb::new().await;
        let (mut config, _dir) = config(&db);
        if on_s3 {
            config.storage = s3.config();
        }
        let api = TestApi::start(config.clone()).await;
        let (_, token) = signed_in(&api, &db, "user", 100).await;
        let store = if on_s3 { "s3" } else { "local" };

        // Declared length only: a longer or a shorter body is refused, the right one taken.
        let (media, url) = start_upload(&api, &token, "a.srt", "subtitle", HONEST.len()).await;
        let longer = format!("{HONEST}\n");
        let r = api.http.put(&url).body(longer).send().await.unwrap();
        let expected = if on_s3 {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::PAYLOAD_TOO_LARGE
        };
        assert_eq!(r.status(), expected, "{store}: longer");
        let r = api.http.put(&url).body(&HONEST[1..]).send().await.unwrap();
        assert!(
            r.status().is_client_error(),
            "{store}: shorter: {}",
            r.status()
        );
        let r = api.http.put(&url).body(HONEST).send().await.unwrap();
        assert!(r.status().is_success(), "{store}: {}", r.status());
        let (status, _) = complete(&api, &token, &media).await;
        assert_eq!(status, StatusCode::OK, "{store}");

        // With a declared SHA-256, other bytes of the same length are refused too.
        let (media, link) = start_checked_upload(&api, &token).await;
        let status = put_as_listed(&api, &link, SAME_LENGTH).await;
        assert!(status.is_client_error(), "{store}: other bytes: {status}");
        assert_eq!(
            put_as_listed(&api, &link, HONEST).await,
            StatusCode::OK,
            "{store}"
        );
        let (status, done) = complete(&api, &token, &media).await;
        assert_eq!(
            (status, done["duration_seconds"].as_f64()),
            (StatusCode::OK, Some(5.0))
        );
        api.stop().await;
    }
}
