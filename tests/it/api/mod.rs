//! Tests of the HTTP API, served in-process on a free loopback port against a database of
//! the test's own, and driven with a real HTTP client.

mod auth;
mod clients;
mod events;
mod fuzz;
mod jobs;
mod keys;
mod limits;
mod ops;
pub mod outputs;
mod retention;
mod sealed;
mod storage;
mod transcript;
mod webhooks;

use crate::harness::TestDb;
use octavia::api::{self, ApiState};
use octavia::config::Config;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The local store's signing secret in tests.
pub const SIGNING_SECRET: &str = "test-signing-secret-test-signing-secret";

/// The Python of the API tests' own virtual environment, `.venv-api-tests`, where bin/deps
/// installs schemathesis and standardwebhooks from requirements/api-tests.txt; a failure
/// that says so when it is missing.
#[track_caller]
pub fn api_tests_python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-api-tests/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `bin/deps`, which installs the API tests' pinned schemathesis \
         and standardwebhooks",
        python.display()
    );
    python
}

/// A configuration for API tests: the local store in a temporary directory (kept alive by
/// the returned value), signed links enabled.
pub fn config(db: &TestDb) -> (Config, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut c = db.config();
    c.database.pool_size = 8;
    c.database.migrate_on_start = false;
    c.storage.local_dir = dir.path().display().to_string();
    c.storage.signing_secret = SIGNING_SECRET.into();
    (c, dir)
}

/// An API server running in this process.
pub struct TestApi {
    pub url: String,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestApi {
    /// Serves `config` on a free port; `api.public_url` is set to it.
    pub async fn start(mut config: Config) -> TestApi {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        config.api.public_url = url.clone();
        let pool = octavia::db::pool(&config.database).unwrap();
        let shutdown = CancellationToken::new();
        let state = ApiState::new(config, pool, shutdown.clone()).unwrap();
        let task = tokio::spawn(api::serve(listener, state, shutdown.clone()));
        TestApi {
            url,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            shutdown,
            task: Some(task),
        }
    }

    /// An API served elsewhere (by an `octavia-api` process) at `url`.
    pub fn remote(url: String) -> TestApi {
        TestApi {
            url,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            shutdown: CancellationToken::new(),
            task: None,
        }
    }

    /// A request to `path` (starting with `/`), with `token` as bearer if given.
    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.url));
        match token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.request(Method::GET, path, Some(token))
            .send()
            .await
            .unwrap()
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Response {
        self.request(Method::POST, path, Some(token))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Signs in and returns the token.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let r = self
            .request(Method::POST, "/api/sessions", None)
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await
            .unwrap();
        let (status, body) = parts(r).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["token"].as_str().unwrap().to_string()
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("the API stops within 30 s")
                .unwrap()
                .unwrap();
        }
    }
}

impl Drop for TestApi {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A user of `role` with `credits`; returns (id, email, password).
pub async fn user(db: &TestDb, role: &str, credits: i64) -> (Uuid, String, String) {
    let client = db.client().await;
    let email = format!("{}@example.com", Uuid::new_v4().simple());
    let password = "correct horse battery".to_string();
    let id = octavia::users::create(&client, &email, &password, role, credits)
        .await
        .unwrap();
    (id, email, password)
}

/// A signed-in user: (id, token).
pub async fn signed_in(api: &TestApi, db: &TestDb, role: &str, credits: i64) -> (Uuid, String) {
    let (id, email, password) = user(db, role, credits).await;
    (id, api.login(&email, &password).await)
}

/// `POST /api/jobs` of a subtitle_translation into Spanish on `media`.
pub async fn translate_subtitles(api: &TestApi, token: &str, media: &str) -> Response {
    api.post(
        "/api/jobs",
        token,
        json!({"job_type": "subtitle_translation", "input_media_id": media,
               "options": {"target_language": "es"}}),
    )
    .await
}

/// Runs an in-process worker with every job type, on `config`'s store, until `jobs` end.
pub async fn run_jobs(db: &TestDb, config: &Config, jobs: &[Uuid]) {
    let mut worker_config = crate::support::fast_config(db);
    worker_config.storage = config.storage.clone();
    let registry = octavia::job_types::registry(&worker_config).unwrap();
    let worker = crate::support::TestWorker::start(worker_config, registry, "w-api");
    crate::support::wait_terminal(db, jobs, 60).await;
    worker.stop().await;
}

/// Status and JSON body of a response (Null if the body is not JSON).
pub async fn parts(r: Response) -> (StatusCode, Value) {
    let status = r.status();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Asserts an error response: its status and `error.code`, and that it is the documented
/// JSON shape.
pub async fn assert_error(r: Response, status: StatusCode, code: &str) -> Value {
    let (got, body) = parts(r).await;
    assert_eq!(got, status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    body
}

/// A user's balance and the sum of their ledger.
pub async fn balance(db: &TestDb, user: Uuid) -> (i64, i64) {
    let client = db.client().await;
    let row = client
        .query_one(
            "SELECT u.credits, coalesce((SELECT sum(delta) FROM credits_history WHERE user_id = u.id), 0)::bigint
             FROM users u WHERE id = $1",
            &[&user],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}
