//! Media past its retention and media its owner deletes: expired files answer 410 and
//! cannot be used again; deleting a file, a project or a user leaves no object behind, and
//! is refused while a job in progress needs them.

use super::*;
use octavia::retention::Sweeper;
use reqwest::Method;

const SRT: &str = "1\n00:00:01,000 --> 00:00:03,000\nThe weather is very good today.\n";

/// A completed subtitle upload of the caller's, in `project` if given.
async fn srt_upload(api: &TestApi, token: &str, project: Option<&str>) -> String {
    let mut body = json!({"file_name": "talk.srt", "media_type": "subtitle",
                          "size_bytes": SRT.len()});
    if let Some(p) = project {
        body["project_id"] = json!(p);
    }
    let (status, created) = parts(api.post("/api/uploads", token, body).await).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let url = created["upload"]["url"].as_str().unwrap();
    assert!(
        api.http
            .put(url)
            .body(SRT)
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    );
    let media = created["media"]["id"].as_str().unwrap().to_string();
    let r = api
        .post(&format!("/api/uploads/{media}/complete"), token, json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    media
}

/// Creates a translation of `media` and returns the job's id.
async fn job_on(api: &TestApi, token: &str, media: &str) -> Uuid {
    let (status, job) = parts(translate_subtitles(api, token, media).await).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    job["id"].as_str().unwrap().parse().unwrap()
}

/// Every object in the local store.
fn objects(config: &Config) -> Vec<String> {
    let root = std::path::Path::new(&config.storage.local_dir);
    let mut found = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                found.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
}

/// A sweeper on the test's store, with `config`'s retention settings.
fn sweeper_of(db: &TestDb, config: &Config) -> Sweeper {
    let storage = octavia::storage::Storage::from_config(&config.storage).unwrap();
    Sweeper::new(db.pool.clone(), storage, config.storage.clone(), "t")
}

async fn backdate(db: &TestDb, media: &str, days: i32) {
    let id: Uuid = media.parse().unwrap();
    db.client()
        .await
        .execute(
            "UPDATE media_files SET created_at = now() - make_interval(days => $2) WHERE id = $1",
            &[&id, &days],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn expired_files_answer_410_and_cannot_be_used_again() {
    let db = TestDb::new().await;
    let (mut config, _dir) = config(&db);
    let api = TestApi::start(config.clone()).await;
    let (_, token) = signed_in(&api, &db, "user", 100).await;
    let input = srt_upload(&api, &token, None).await;
    let job = job_on(&api, &token, &input).await;
    run_jobs(&db, &config, &[job]).await;
    let (_, done) = parts(api.get(&format!("/api/jobs/{job}"), &token).await).await;
    let output = done["output"]["media_id"].as_str().unwrap().to_string();
    let early_link = done["output"]["download"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    // The download route redirects to a fresh link while the file is kept.
    let r = api
        .request(
            Method::GET,
            &format!("/api/media/{output}/download?kind=vtt"),
            Some(&token),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "followed to the file");
    assert!(r.text().await.unwrap().starts_with("WEBVTT"));

    // A second upload is the input of a job still queued: kept whatever its age.
    let busy = srt_upload(&api, &token, None).await;
    job_on(&api, &token, &busy).await;
    backdate(&db, &output, 31).await;
    backdate(&db, &input, 31).await;
    backdate(&db, &busy, 31).await;
    config.storage.output_retention_days = 30;
    let sweeper = sweeper_of(&db, &config);
    let report = sweeper.pass(false, false).await.unwrap();
    assert_eq!(
        (report.expired_media, report.objects_deleted),
        (1, 3),
        "{report:?}"
    );

    let (status, media) = parts(api.get(&format!("/api/media/{output}"), &token).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(media["status"], "expired", "{media}");
    assert!(
        media["expired_at"].is_string() && media["download"].is_null(),
        "{media}"
    );
    assert_eq!(media["files"], json!([]));
    let r = api
        .get(&format!("/api/media/{output}/download"), &token)
        .await;
    assert_error(r, StatusCode::GONE, "gone").await;
    let r = api.http.get(&early_link).send().await.unwrap();
    assert_error(r, StatusCode::GONE, "gone").await;
    let (_, after) = parts(api.get(&format!("/api/jobs/{job}"), &token).await).await;
    assert!(after["output"]["expired_at"].is_string(), "{after}");
    assert_eq!(after["output"]["files"], json!([]));

    // Uploads follow their own setting.
    config.storage.upload_retention_days = 30;
    let sweeper = sweeper_of(&db, &config);
    let report = sweeper.pass(false, false).await.unwrap();
    assert_eq!(
        report.expired_media, 1,
        "the input, not the busy upload: {report:?}"
    );
    let r = translate_subtitles(&api, &token, &input).await;
    assert_error(r, StatusCode::GONE, "gone").await;
    let (_, kept) = parts(api.get(&format!("/api/media/{busy}"), &token).await).await;
    assert_eq!(kept["status"], "uploaded");
    assert_eq!(
        objects(&config).len(),
        1,
        "only the busy upload: {:?}",
        objects(&config)
    );

    // An upload never completed goes after storage.pending_upload_retention_days (7).
    let (status, created) = parts(
        api.post(
            "/api/uploads",
            &token,
            json!({"file_name": "late.srt", "media_type": "subtitle", "size_bytes": SRT.len()}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let pending = created["media"]["id"].as_str().unwrap().to_string();
    let url = created["upload"]["url"].as_str().unwrap();
    backdate(&db, &pending, 8).await;
    let report = sweeper.pass(false, false).await.unwrap();
    assert_eq!(report.expired_media, 1, "{report:?}");
    let r = api.http.put(url).body(SRT).send().await.unwrap();
    assert_error(r, StatusCode::CONFLICT, "conflict").await;
    let r = api
        .post(
            &format!("/api/uploads/{pending}/complete"),
            &token,
            json!({}),
        )
        .await;
    assert_error(r, StatusCode::GONE, "gone").await;
    assert_eq!(objects(&config).len(), 1, "{:?}", objects(&config));
    api.stop().await;
}

#[tokio::test]
async fn deleted_media_and_projects_leave_no_objects_behind() {
    let db = TestDb::new().await;
    let (config, _dir) = config(&db);
    let api = TestApi::start(config.clone()).await;
    let (_, token) = signed_in(&api, &db, "user", 100).await;
    let (_, stranger) = signed_in(&api, &db, "user", 0).await;
    let (status, project) = parts(
        api.post("/api/projects", &token, json!({"name": "Talks"}))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{project}");
    let project = project["id"].as_str().unwrap().to_string();
    let input = srt_upload(&api, &token, Some(&project)).await;
    let job = job_on(&api, &token, &input).await;
    let delete = |path: String, token: String| {
        let api = &api;
        async move {
            api.request(Method::DELETE, &path, Some(&token))
                .send()
                .await
                .unwrap()
        }
    };

    // While the job is queued, neither its input nor its project can go.
    let r = delete(format!("/api/media/{input}"), token.clone()).await;
    let body = assert_error(r, StatusCode::CONFLICT, "conflict").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&job.to_string()),
        "{body}"
    );
    let r = delete(format!("/api/projects/{project}"), token.clone()).await;
    assert_error(r, StatusCode::CONFLICT, "conflict").await;
    let r = delete(format!("/api/media/{input}"), stranger.clone()).await;
    assert_error(r, StatusCode::NOT_FOUND, "not_found").await;

    run_jobs(&db, &config, &[job]).await;
    let (_, done) = parts(api.get(&format!("/api/jobs/{job}"), &token).await).await;
    let output = done["output"]["media_id"].as_str().unwrap().to_string();
    assert_eq!(
        objects(&config).len(),
        4,
        "input, srt, vtt, transcript: {:?}",
        objects(&config)
    );

    // The output goes with its files; the job keeps its history.
    let r = delete(format!("/api/media/{output}"), token.clone()).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = api.get(&format!("/api/media/{output}"), &token).await;
    assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(objects(&config).len(), 1, "{:?}", objects(&config));
    let (status, after) = parts(api.get(&format!("/api/jobs/{job}"), &token).await).await;
    assert_eq!(
        (status, after["status"].as_str()),
        (StatusCode::OK, Some("completed"))
    );
    assert!(after["output"].is_null(), "{after}");

    // The project goes with the upload in it.
    let r = delete(format!("/api/projects/{project}"), stranger.clone()).await;
    assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = delete(format!("/api/projects/{project}"), token.clone()).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(objects(&config), Vec::<String>::new());
    let r = api.get(&format!("/api/media/{input}"), &token).await;
    assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
    let (_, projects) = parts(api.get("/api/projects", &token).await).await;
    assert_eq!(projects["projects"], json!([]));
    let (_, after) = parts(api.get(&format!("/api/jobs/{job}"), &token).await).await;
    assert!(after["project_id"].is_null(), "{after}");
    let r = delete(format!("/api/projects/{project}"), token.clone()).await;
    assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
    api.stop().await;
}

#[tokio::test]
async fn deleting_a_user_deletes_their_files_and_keeps_their_jobs() {
    let db = TestDb::new().await;
    let (config, _dir) = config(&db);
    let api = TestApi::start(config.clone()).await;
    let (user, email, password) = super::user(&db, "user", 100).await;
    let token = api.login(&email, &password).await;
    let input = srt_upload(&api, &token, None).await;
    let job = job_on(&api, &token, &input).await;

    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_octavia"))
            .arg("--no-migrate")
            .args(args)
            .env("DATABASE_URL", &db.url)
            .env("OCTAVIA_STORAGE_LOCAL_DIR", &config.storage.local_dir)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    let refused = cli(&["users", "delete", &email]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("in progress") && said.contains(&job.to_string()),
        "{said}"
    );

    run_jobs(&db, &config, &[job]).await;
    assert_eq!(objects(&config).len(), 4);
    let out = cli(&["users", "delete", &email]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(objects(&config), Vec::<String>::new());
    let client = db.client().await;
    let count = |sql: &'static str| {
        let client = &client;
        async move {
            client
                .query_one(sql, &[&user])
                .await
                .unwrap()
                .get::<_, i64>(0)
        }
    };
    assert_eq!(count("SELECT count(*) FROM users WHERE id = $1").await, 0);
    assert_eq!(
        count("SELECT count(*) FROM media_files WHERE user_id = $1").await,
        0
    );
    let jobs: i64 = client
        .query_one(
            "SELECT count(*) FROM jobs WHERE id = $1 AND user_id IS NULL",
            &[&job],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(jobs, 1, "the job stays, without an owner");
    let r = api.get("/api/me", &token).await;
    assert_error(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    api.stop().await;
}
