//! The object store against both backends: a local directory, and a real S3 server
//! (s3s-fs) reached over HTTP, including presigned URLs used by a plain HTTP client.

use crate::s3::S3Server;
use bytes::Bytes;
use chrono::Utc;
use futures_util::TryStreamExt;
use octavia::Error;
use octavia::config::StorageConfig;
use octavia::storage::{
    self, Method, ObjectInfo, PART_SIZE, SignatureError, Storage, job_output_key, job_prefix,
    media_key, segment_key,
};
use reqwest::{StatusCode, Url};
use std::time::Duration;
use tempfile::TempDir;
use uuid::Uuid;

const SECRET: &str = "0123456789abcdef0123456789abcdef-test";
const PUBLIC_URL: &str = "http://api.octavia.test:8080";

/// A local store in a fresh directory (not yet created, as on a first start).
fn local() -> (Storage, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = StorageConfig {
        backend: "local".into(),
        local_dir: dir.path().join("objects").display().to_string(),
        signing_secret: SECRET.into(),
        ..StorageConfig::default()
    };
    let storage = Storage::from_config(&config)
        .unwrap()
        .with_public_url(PUBLIC_URL)
        .unwrap();
    (storage, dir)
}

fn s3() -> (Storage, S3Server) {
    let server = S3Server::start();
    let storage = Storage::from_config(&server.config()).unwrap();
    (storage, server)
}

/// Deterministic bytes that do not compress or repeat, so a misplaced part shows.
fn noise(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

async fn objects_round_trip(storage: &Storage) {
    let key = media_key(Uuid::new_v4(), Uuid::new_v4(), "input.srt");
    assert_eq!(storage.head(&key).await.unwrap(), None);
    let missing = storage.get_bytes(&key).await.unwrap_err();
    assert!(
        matches!(&missing, Error::NotFound { id, .. } if *id == key),
        "{missing:?}"
    );

    storage
        .put_bytes(&key, Bytes::from_static(b"first"))
        .await
        .unwrap();
    storage
        .put_bytes(&key, Bytes::from_static(b"second version"))
        .await
        .unwrap();
    assert_eq!(
        &storage.get_bytes(&key).await.unwrap()[..],
        b"second version"
    );
    let info = storage
        .head(&key)
        .await
        .unwrap()
        .expect("the object exists");
    assert_eq!(info.size, 14);
    let age = Utc::now() - info.last_modified;
    assert!(age.num_seconds().abs() < 60, "last_modified {info:?}");

    let (info, chunks) = storage.get_stream(&key).await.unwrap();
    assert_eq!(info.size, 14);
    let streamed: Vec<Bytes> = chunks.try_collect().await.unwrap();
    assert_eq!(streamed.concat(), b"second version");

    let job = Uuid::new_v4();
    let keys = [
        segment_key(job, 0, 1, 1, "audio.wav"),
        segment_key(job, 1, 1, 1, "audio.wav"),
        segment_key(job, 1, 1, 2, "audio.wav"),
        segment_key(job, 10, 1, 1, "audio.wav"),
        job_output_key(job, "output.srt"),
    ];
    for k in &keys {
        storage.put_bytes(k, Bytes::from(k.clone())).await.unwrap();
    }
    let mut all = keys.to_vec();
    all.sort();
    assert_eq!(storage.list(&job_prefix(job)).await.unwrap(), all);
    // Prefixes match whole segments: segment 1 is not segment 10.
    let segment_1 = format!("jobs/{job}/segments/1");
    assert_eq!(
        storage.list(&segment_1).await.unwrap(),
        vec![keys[1].clone(), keys[2].clone()]
    );
    assert!(
        storage
            .list(&job_prefix(Uuid::new_v4()))
            .await
            .unwrap()
            .is_empty()
    );

    storage.delete(&key).await.unwrap();
    assert_eq!(storage.head(&key).await.unwrap(), None);
    storage
        .delete(&key)
        .await
        .expect("deleting a missing object succeeds");

    assert_eq!(storage.delete_prefix(&segment_1).await.unwrap(), 2);
    assert_eq!(storage.list(&job_prefix(job)).await.unwrap().len(), 3);
    assert_eq!(storage.delete_prefix(&job_prefix(job)).await.unwrap(), 3);
    assert!(storage.list(&job_prefix(job)).await.unwrap().is_empty());
    assert_eq!(storage.delete_prefix(&job_prefix(job)).await.unwrap(), 0);
    assert!(matches!(
        storage.delete_prefix("").await,
        Err(Error::Invalid(_))
    ));

    for bad in ["../escape", "/media/x", "media//x", ""] {
        assert!(
            storage.put_bytes(bad, Bytes::new()).await.is_err(),
            "{bad:?} was accepted as a key"
        );
    }
}

#[tokio::test]
async fn local_objects_round_trip() {
    let (storage, _dir) = local();
    objects_round_trip(&storage).await;
}

#[tokio::test]
async fn s3_objects_round_trip() {
    let (storage, server) = s3();
    objects_round_trip(&storage).await;
    // The objects really went through the server: it holds this one as a file.
    let key = media_key(Uuid::new_v4(), Uuid::new_v4(), "proof.txt");
    storage
        .put_bytes(&key, Bytes::from_static(b"on s3s-fs"))
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(server.object_file(&key)).unwrap(),
        b"on s3s-fs"
    );
}

/// Uploads a file of two and a bit parts and downloads it again, both streamed; returns
/// the key and what the store says of it.
async fn large_file_round_trip(storage: &Storage) -> (String, ObjectInfo, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let data = noise(2 * PART_SIZE + 12_345);
    let source = dir.path().join("input.mp4");
    std::fs::write(&source, &data).unwrap();
    let (user, media) = (Uuid::new_v4(), Uuid::new_v4());
    let key = media_key(user, media, "input.mp4");

    assert_eq!(
        storage.put_file(&key, &source).await.unwrap(),
        data.len() as u64
    );
    let info = storage.head(&key).await.unwrap().unwrap();
    assert_eq!(info.size, data.len() as u64);

    let target = dir.path().join("downloaded.mp4");
    assert_eq!(
        storage.get_to_file(&key, &target).await.unwrap(),
        data.len() as u64
    );
    assert!(std::fs::read(&target).unwrap() == data, "content differs");
    assert_eq!(
        storage
            .list(&format!("media/{user}/{media}"))
            .await
            .unwrap(),
        vec![key.clone()],
        "no part or staging file is left beside the object"
    );

    let nowhere = dir.path().join("missing.mp4");
    let missing = media_key(Uuid::new_v4(), Uuid::new_v4(), "missing.mp4");
    assert!(matches!(
        storage.get_to_file(&missing, &nowhere).await,
        Err(Error::NotFound { .. })
    ));
    assert!(!nowhere.exists());

    // A body arriving in uneven chunks, as an HTTP request's does, lands intact too.
    let streamed_key = media_key(Uuid::new_v4(), Uuid::new_v4(), "streamed.bin");
    let chunks: Vec<Result<Bytes, std::io::Error>> = data
        .chunks(777_777)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let size = storage
        .put_stream(&streamed_key, futures_util::stream::iter(chunks))
        .await
        .unwrap();
    assert_eq!(size, data.len() as u64);
    assert!(storage.get_bytes(&streamed_key).await.unwrap() == data);

    // A body that fails midway leaves no object behind.
    let broken_key = media_key(Uuid::new_v4(), Uuid::new_v4(), "broken.bin");
    let broken = futures_util::stream::iter(
        data.chunks(PART_SIZE / 2)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .take(4)
            .chain([Err(std::io::Error::other("client went away"))]),
    );
    assert!(storage.put_stream(&broken_key, broken).await.is_err());
    assert_eq!(storage.head(&broken_key).await.unwrap(), None);

    (key, info, data)
}

#[tokio::test]
async fn local_large_files_stream_in_and_out() {
    let (storage, _dir) = local();
    large_file_round_trip(&storage).await;
}

#[tokio::test]
async fn s3_large_files_upload_in_parts() {
    let (storage, server) = s3();
    let (key, info, data) = large_file_round_trip(&storage).await;
    // S3 (and s3s-fs) give a multipart object the ETag `{hash}-{parts}`.
    let e_tag = info.e_tag.expect("S3 gives an ETag");
    assert!(e_tag.trim_matches('"').ends_with("-3"), "ETag {e_tag}");
    assert!(std::fs::read(server.object_file(&key)).unwrap() == data);
}

/// Replaces the value of query parameter `name`.
fn with_query(url: &str, name: &str, value: &str) -> String {
    let mut url = Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == name {
                value.to_string()
            } else {
                v.into()
            };
            (k.into(), v)
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    url.to_string()
}

fn query(url: &str, name: &str) -> String {
    Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("{url} has no {name}"))
        .1
        .into_owned()
}

/// The same hex string with its last digit changed.
fn flip_last(hex: &str) -> String {
    let (head, last) = hex.split_at(hex.len() - 1);
    format!("{head}{}", if last == "0" { "1" } else { "0" })
}

#[tokio::test]
async fn s3_presigned_urls_work_with_a_plain_http_client() {
    let (storage, _server) = s3();
    let http = reqwest::Client::new();
    let key = media_key(Uuid::new_v4(), Uuid::new_v4(), "upload.mp3");
    let body = noise(100_000);

    let upload = storage.upload_url(&key).await.unwrap();
    assert_eq!(upload.method, Method::PUT);
    let lifetime = upload.expires_at - Utc::now();
    assert!((890..=900).contains(&lifetime.num_seconds()), "{upload:?}");
    let resp = http
        .put(&upload.url)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{:?}", resp.text().await);
    assert!(storage.get_bytes(&key).await.unwrap() == body);

    let download = storage.download_url(&key).await.unwrap();
    assert_eq!(download.method, Method::GET);
    let resp = http.get(&download.url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.bytes().await.unwrap() == body);
}

/// Sends `request` and asserts S3 answered 403 with `reason` in its error.
async fn refused(request: reqwest::RequestBuilder, why: &str, reason: &str) {
    let resp = request.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert_eq!(status, StatusCode::FORBIDDEN, "{why}: {text}");
    assert!(text.contains(reason), "{why}: {text}");
}

/// A changed copy of `url`, checked to differ so a tampering that changed nothing cannot
/// pass for a refused one.
fn tampered(url: &str, change: impl FnOnce(&str) -> String) -> String {
    let changed = change(url);
    assert_ne!(changed, url, "the tampering changed nothing");
    changed
}

#[tokio::test]
async fn s3_refuses_tampered_presigned_urls() {
    let (storage, _server) = s3();
    let http = reqwest::Client::new();
    let user = Uuid::new_v4();
    let key = media_key(user, Uuid::new_v4(), "private.srt");
    let other = media_key(user, Uuid::new_v4(), "other.srt");
    storage
        .put_bytes(&key, Bytes::from_static(b"original"))
        .await
        .unwrap();
    storage
        .put_bytes(&other, Bytes::from_static(b"someone else's"))
        .await
        .unwrap();

    let get = storage.download_url(&key).await.unwrap().url;
    let put = storage.upload_url(&key).await.unwrap().url;
    let sig = query(&get, "X-Amz-Signature");

    let forged = "SignatureDoesNotMatch";
    let bad_sig = tampered(&get, |u| with_query(u, "X-Amz-Signature", &flip_last(&sig)));
    refused(http.get(bad_sig), "changed signature", forged).await;
    let other_key = tampered(&get, |u| u.replace(&key, &other));
    refused(http.get(other_key), "GET link for another key", forged).await;
    let longer = tampered(&get, |u| with_query(u, "X-Amz-Expires", "604800"));
    refused(http.get(longer), "lengthened expiry", forged).await;
    let as_put = http.put(&get).body("overwritten");
    refused(as_put, "GET link used for a PUT", forged).await;
    let other_key = tampered(&put, |u| u.replace(&key, &other));
    let put_other = http.put(other_key).body("overwritten");
    refused(put_other, "PUT link for another key", forged).await;

    assert_eq!(&storage.get_bytes(&key).await.unwrap()[..], b"original");
    assert_eq!(
        &storage.get_bytes(&other).await.unwrap()[..],
        b"someone else's"
    );
}

#[tokio::test]
async fn s3_refuses_expired_presigned_urls() {
    let server = S3Server::start();
    // object_store signs with the current time only, so an expired URL takes waiting out
    // the shortest lifetime there is.
    let config = StorageConfig {
        url_expiry_seconds: 1,
        ..server.config()
    };
    let storage = Storage::from_config(&config).unwrap();
    let http = reqwest::Client::new();
    let key = media_key(Uuid::new_v4(), Uuid::new_v4(), "soon-gone.srt");
    storage
        .put_bytes(&key, Bytes::from_static(b"original"))
        .await
        .unwrap();
    let get = storage.download_url(&key).await.unwrap();
    let put = storage.upload_url(&key).await.unwrap();

    // The server compares against X-Amz-Date, which has whole seconds: two seconds past
    // the expiry are past it however the signing second was rounded.
    let wait = (put.expires_at - Utc::now()).num_milliseconds().max(0) as u64 + 2_000;
    tokio::time::sleep(Duration::from_millis(wait)).await;

    for (request, why) in [
        (http.get(&get.url), "expired GET"),
        (http.put(&put.url).body("too late"), "expired PUT"),
    ] {
        refused(request, why, "Request has expired").await;
    }
    assert_eq!(&storage.get_bytes(&key).await.unwrap()[..], b"original");
}

/// The key, `expires` and `sig` of a local link, as the API route will read them.
fn local_link(url: &str) -> (String, u64, String) {
    let parsed = Url::parse(url).unwrap();
    let key = parsed
        .path()
        .strip_prefix(storage::LOCAL_ROUTE)
        .unwrap_or_else(|| panic!("{url} is not under {}", storage::LOCAL_ROUTE))
        .to_string();
    let expires = query(url, "expires").parse().unwrap();
    (key, expires, query(url, "sig"))
}

#[tokio::test]
async fn local_links_point_at_the_api_route() {
    let (storage, _dir) = local();
    let key = segment_key(Uuid::new_v4(), 3, 1, 1, "audio.wav");
    let link = storage.download_url(&key).await.unwrap();
    assert!(
        link.url
            .starts_with(&format!("{PUBLIC_URL}/api/storage/{key}?expires=")),
        "{}",
        link.url
    );
    let (linked_key, expires, sig) = local_link(&link.url);
    assert_eq!(linked_key, key);
    assert_eq!(expires as i64, link.expires_at.timestamp());
    let lifetime = expires as i64 - Utc::now().timestamp();
    assert!((890..=900).contains(&lifetime), "{lifetime}");
    assert_eq!(sig.len(), 64, "hex of an HMAC-SHA256");

    // A base path and a trailing slash in api.public_url are kept, once.
    let (storage, _dir) = local();
    let storage = storage
        .with_public_url("https://example.com/octavia/")
        .unwrap();
    let url = storage.upload_url("media/a/b/c d.mp4").await.unwrap().url;
    assert!(
        url.starts_with("https://example.com/octavia/api/storage/media/a/b/c%20d.mp4?expires="),
        "{url}"
    );
}

#[tokio::test]
async fn local_links_are_refused_when_tampered_or_expired() {
    let (storage, _dir) = local();
    let key = media_key(Uuid::new_v4(), Uuid::new_v4(), "result.srt");
    let other = media_key(Uuid::new_v4(), Uuid::new_v4(), "result.srt");
    let (_, expires, sig) = local_link(&storage.download_url(&key).await.unwrap().url);
    let now = Utc::now().timestamp() as u64;
    let verify = |method: &Method, key: &str, expires: u64, sig: &str, now: u64| {
        storage.verify_local_signature(method, key, expires, sig, now)
    };

    assert_eq!(verify(&Method::GET, &key, expires, &sig, now), Ok(()));
    assert_eq!(
        verify(&Method::GET, &key, expires, &sig, expires),
        Ok(()),
        "valid through its last second"
    );
    let invalid = Err(SignatureError::Invalid);
    assert_eq!(verify(&Method::PUT, &key, expires, &sig, now), invalid);
    assert_eq!(verify(&Method::HEAD, &key, expires, &sig, now), invalid);
    assert_eq!(verify(&Method::GET, &other, expires, &sig, now), invalid);
    assert_eq!(
        verify(&Method::GET, &key, expires + 3600, &sig, now),
        invalid
    );
    assert_eq!(
        verify(&Method::GET, &key, expires, &flip_last(&sig), now),
        invalid
    );
    assert_eq!(
        verify(&Method::GET, &key, expires, &sig[..62], now),
        invalid
    );
    assert_eq!(verify(&Method::GET, &key, expires, "", now), invalid);
    assert_eq!(
        verify(&Method::GET, &key, expires, &format!("g{}", &sig[1..]), now),
        invalid
    );
    assert_eq!(
        verify(&Method::GET, &format!("/{key}"), expires, &sig, now),
        invalid
    );
    assert_eq!(
        verify(&Method::GET, &key, expires, &sig, expires + 1),
        Err(SignatureError::Expired)
    );

    // A PUT link is no GET link.
    let (_, put_expires, put_sig) = local_link(&storage.upload_url(&key).await.unwrap().url);
    assert_eq!(
        verify(&Method::PUT, &key, put_expires, &put_sig, now),
        Ok(())
    );
    assert_eq!(
        verify(&Method::GET, &key, put_expires, &put_sig, now),
        invalid
    );

    // Another deployment's secret signs other links.
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = Storage::from_config(&StorageConfig {
        local_dir: dir.path().display().to_string(),
        signing_secret: format!("{SECRET}-elsewhere"),
        ..StorageConfig::default()
    })
    .unwrap();
    assert_eq!(
        elsewhere.verify_local_signature(&Method::GET, &key, expires, &sig, now),
        invalid
    );
}

#[tokio::test]
async fn local_links_need_a_signing_secret_and_the_public_url() {
    let dir = tempfile::tempdir().unwrap();
    let config = StorageConfig {
        local_dir: dir.path().display().to_string(),
        ..StorageConfig::default()
    };
    assert!(
        config.signing_secret.is_empty(),
        "the default has no secret"
    );
    let storage = Storage::from_config(&config)
        .expect("a store without a secret opens: workers never sign")
        .with_public_url(PUBLIC_URL)
        .unwrap();
    let e = storage.download_url("media/a/b/c").await.unwrap_err();
    assert!(e.to_string().contains("storage.signing_secret"), "{e}");
    assert_eq!(
        storage.verify_local_signature(&Method::GET, "media/a/b/c", u64::MAX, "00", 0),
        Err(SignatureError::NoSecret)
    );

    let storage = Storage::from_config(&StorageConfig {
        signing_secret: SECRET.into(),
        ..config
    })
    .unwrap();
    let e = storage.upload_url("media/a/b/c").await.unwrap_err();
    assert!(e.to_string().contains("api.public_url"), "{e}");
    assert!(matches!(
        storage.signed_url(Method::DELETE, "media/a/b/c").await,
        Err(Error::Invalid(_))
    ));
}

#[tokio::test]
async fn s3_store_refuses_local_links() {
    let (storage, _server) = s3();
    assert!(!storage.is_local());
    assert_eq!(
        storage.verify_local_signature(&Method::GET, "media/a/b/c", u64::MAX, "00", 0),
        Err(SignatureError::NotLocal)
    );
}

/// What the API's upload and download routes will do with a local link: verify it, then
/// stream the request body in or the object out.
#[tokio::test]
async fn local_links_serve_uploads_and_downloads_through_storage() {
    let (storage, _dir) = local();
    let key = media_key(Uuid::new_v4(), Uuid::new_v4(), "input.wav");
    let body = noise(3 * 1024 * 1024);
    let now = Utc::now().timestamp() as u64;

    let (linked, expires, sig) = local_link(&storage.upload_url(&key).await.unwrap().url);
    storage
        .verify_local_signature(&Method::PUT, &linked, expires, &sig, now)
        .unwrap();
    let request_body = futures_util::stream::iter(
        body.chunks(64 * 1024)
            .map(|c| Ok::<_, std::io::Error>(Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    );
    storage.put_stream(&linked, request_body).await.unwrap();

    let (linked, expires, sig) = local_link(&storage.download_url(&key).await.unwrap().url);
    storage
        .verify_local_signature(&Method::GET, &linked, expires, &sig, now)
        .unwrap();
    let (info, chunks) = storage.get_stream(&linked).await.unwrap();
    assert_eq!(info.size, body.len() as u64);
    let response: Vec<Bytes> = chunks.try_collect().await.unwrap();
    assert!(response.concat() == body);
}
