//! What the webhook tests share: a receiver (an HTTP server in the test that records every
//! request and answers as told), the `standardwebhooks` package that verifies what it
//! got, and configurations that let deliveries reach it.

use crate::api::{self, TestApi, api_tests_python, parts};
use crate::harness::TestDb;
use crate::support::{fast_config, wait_for};
use axum::extract::State;
use axum::http::header::LOCATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{AppendHeaders, IntoResponse};
use octavia::config::Config;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tempfile::TempDir;
use tokio::net::TcpListener;
use uuid::Uuid;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    /// The path and query it was sent to.
    pub uri: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Script {
    received: Mutex<Vec<Received>>,
    /// Statuses to answer, in order; 200 once they run out.
    answers: Mutex<VecDeque<u16>>,
    /// How many of the next requests are held open, never answered.
    hold: AtomicUsize,
}

/// An HTTP server in the test that records every POST to `/hook`.
pub struct Receiver {
    pub url: String,
    script: Arc<Script>,
}

impl Receiver {
    /// A receiver that answers `answers` in order, then 200 to anything.
    pub async fn start(answers: &[u16]) -> Receiver {
        let script = Arc::new(Script::default());
        script.answers.lock().unwrap().extend(answers);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(script.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, script }
    }

    /// Holds the next `n` requests open: they are recorded, never answered.
    pub fn hold(&self, n: usize) {
        self.script.hold.store(n, Ordering::SeqCst);
    }

    pub fn received(&self) -> Vec<Received> {
        self.script.received.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests arrived.
    pub async fn wait_for(&self, n: usize, secs: u64) -> Vec<Received> {
        wait_for(secs, &format!("{n} webhook requests"), || async {
            let got = self.received();
            (got.len() >= n).then_some(got)
        })
        .await
    }
}

/// Records the request, then answers the next status of the script; a 3xx points back
/// here (`/hook?followed`), so a client that followed it would be seen doing so.
async fn receive(
    State(script): State<Arc<Script>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: String,
) -> impl IntoResponse {
    let headers = headers
        .iter()
        .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    script.received.lock().unwrap().push(Received {
        uri: uri.to_string(),
        headers,
        body,
    });
    let held = script
        .hold
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if held {
        std::future::pending::<()>().await;
    }
    let answer = script.answers.lock().unwrap().pop_front().unwrap_or(200);
    let status = StatusCode::from_u16(answer).unwrap();
    let location = if status.is_redirection() {
        vec![(LOCATION, "/hook?followed")]
    } else {
        vec![]
    };
    (status, AppendHeaders(location))
}

/// Verifies each of `received` with `secret` by the `standardwebhooks` package (an
/// implementation independent of Octavia's), and returns the payloads it accepted, or
/// what it said when it refused one.
pub fn verify(secret: &str, received: &[Received]) -> Result<Vec<Value>, String> {
    let script = "import json, sys\n\
        from standardwebhooks.webhooks import Webhook\n\
        data = json.load(open(sys.argv[1]))\n\
        hook = Webhook(data['secret'])\n\
        print(json.dumps([hook.verify(d['body'], d['headers']) for d in data['deliveries']]))\n";
    let deliveries: Vec<Value> = received
        .iter()
        .map(|r| {
            let headers: serde_json::Map<String, Value> = r
                .headers
                .iter()
                .map(|(n, v)| (n.clone(), Value::String(v.clone())))
                .collect();
            json!({"headers": headers, "body": r.body})
        })
        .collect();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        file.path(),
        serde_json::to_vec(&json!({"secret": secret, "deliveries": deliveries})).unwrap(),
    )
    .unwrap();
    let python = api_tests_python();
    let out = std::process::Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(file.path())
        .output()
        .unwrap_or_else(|e| panic!("{} does not run ({e}): run `bin/deps`", python.display()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named"),
        "standardwebhooks is not installed in {}: run `bin/deps`",
        python.display()
    );
    if !out.status.success() {
        return Err(stderr.into_owned());
    }
    Ok(serde_json::from_slice(&out.stdout).unwrap())
}

/// Lets webhooks reach the receiver on loopback over http, with retries and leases short
/// enough for a test.
pub fn allow_local_targets(config: &mut Config) {
    let w = &mut config.webhooks;
    w.allow_private_targets = true;
    w.allow_http_targets = true;
    w.poll_interval_ms = 50;
    w.backoff_initial_ms = 100;
    w.backoff_max_seconds = 1;
    w.timeout_seconds = 4;
    w.lease_seconds = 5;
}

/// An API whose webhooks may go to loopback, where noop jobs cost one credit.
pub async fn api(db: &TestDb) -> (TestApi, Config, TempDir) {
    let (mut config, dir) = api::config(db);
    config.pricing.noop = 1;
    allow_local_targets(&mut config);
    (TestApi::start(config.clone()).await, config, dir)
}

/// A worker configuration for `db` whose deliveries may go to loopback.
pub fn worker_config(db: &TestDb, api_config: &Config) -> Config {
    let mut config = fast_config(db);
    config.storage = api_config.storage.clone();
    allow_local_targets(&mut config);
    config
}

/// Registers an endpoint; returns (id, secret).
pub async fn register(api: &TestApi, token: &str, body: Value) -> (Uuid, String) {
    let (status, made) = parts(api.post("/api/webhooks/endpoints", token, body).await).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    (
        made["id"].as_str().unwrap().parse().unwrap(),
        made["secret"].as_str().unwrap().to_string(),
    )
}

/// Creates a noop job with `options`; returns its id.
pub async fn noop_job(api: &TestApi, token: &str, options: Value) -> Uuid {
    let (status, job) = parts(
        api.post(
            "/api/jobs",
            token,
            json!({"job_type": "noop", "options": options}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    job["id"].as_str().unwrap().parse().unwrap()
}

/// The delivery history of `endpoint`, once `done` holds for it.
pub async fn history(
    api: &TestApi,
    token: &str,
    endpoint: Uuid,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    wait_for(30, what, || async {
        let (status, body) = parts(
            api.get(
                &format!("/api/webhooks/endpoints/{endpoint}/deliveries"),
                token,
            )
            .await,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let list = body["deliveries"].as_array().unwrap().clone();
        done(&list).then_some(list)
    })
    .await
}
