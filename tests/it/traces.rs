//! Traces over OTLP/HTTP, received here by a collector of the test's own that decodes the
//! protobuf the processes send: an `octavia-api` and an `octavia-worker` process export to
//! it, and one trace runs from `POST /api/jobs` through the job's plan, segment and
//! finalize, with the engine and object-store calls inside them. The worker's JSON logs
//! carry the same trace id.

use crate::api::outputs::{SRT, uploaded};
use crate::api::{SIGNING_SECRET, TestApi, parts, user};
use crate::harness::TestDb;
use crate::support::*;
use axum::body::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use reqwest::StatusCode;
use serde_json::json;
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

/// A received span and the `service.name` of the process that sent it.
#[derive(Clone)]
struct Received {
    service: String,
    span: Span,
}

/// Serves `POST /v1/traces` on a free port; returns its base URL and what it received.
async fn collector() -> (String, Arc<Mutex<Vec<Received>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let store = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: Bytes| {
            let store = store.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body)
                    .expect("an OTLP/HTTP protobuf export request");
                for resource in request.resource_spans {
                    let service = resource
                        .resource
                        .iter()
                        .flat_map(|r| &r.attributes)
                        .find(|a| a.key == "service.name")
                        .and_then(|a| match a.value.as_ref()?.value.as_ref()? {
                            Any::StringValue(s) => Some(s.clone()),
                            _ => None,
                        })
                        .unwrap_or_default();
                    for span in resource.scope_spans.into_iter().flat_map(|s| s.spans) {
                        store.lock().unwrap().push(Received {
                            service: service.clone(),
                            span,
                        });
                    }
                }
                (
                    [("content-type", "application/x-protobuf")],
                    Vec::<u8>::new(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

/// A child process exporting to `otlp`, with a short batch delay so spans arrive soon.
fn traced(program: &str, db: &TestDb, otlp: &str, store: &std::path::Path) -> Command {
    let mut command = Command::new(program);
    command
        .arg("--no-migrate")
        .args(["--set", &format!("storage.local_dir={}", store.display())])
        .args(["--set", &format!("storage.signing_secret={SIGNING_SECRET}")])
        .env("DATABASE_URL", &db.url)
        .env("OCTAVIA_TELEMETRY_OTLP_ENDPOINT", otlp)
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    command
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn one_trace_runs_from_the_request_that_creates_a_job_to_its_finalize() {
    let db = TestDb::new().await;
    let store = tempfile::tempdir().unwrap();
    let (otlp, received) = collector().await;
    let port = octavia_dev::process::free_port().unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let _api = Process::from(
        traced(env!("CARGO_BIN_EXE_octavia-api"), &db, &otlp, store.path())
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--public-url",
                &url,
            ])
            .env("RUST_LOG", "warn")
            .stderr(Stdio::inherit())
            .spawn()
            .expect("octavia-api runs"),
    );
    let api = TestApi::remote(url);
    wait_for(30, "octavia-api to serve", || async {
        let r = api.http.get(format!("{}/healthz", api.url)).send().await;
        r.is_ok_and(|r| r.status().is_success()).then_some(())
    })
    .await;
    let (_, email, password) = user(&db, "user", 100).await;
    let token = api.login(&email, &password).await;
    let media = uploaded(&api, &token, "talk.srt", "subtitle", SRT.into()).await;
    let (created, job) = parts(
        api.post(
            "/api/jobs",
            &token,
            json!({"job_type": "subtitle_translation", "input_media_id": media,
                   "options": {"source_language": "en", "target_language": "es"}}),
        )
        .await,
    )
    .await;
    assert_eq!(created, StatusCode::CREATED, "{job}");
    let id: uuid::Uuid = job["id"].as_str().unwrap().parse().unwrap();
    let stored: Option<String> = db
        .client()
        .await
        .query_one("SELECT traceparent FROM jobs WHERE id = $1", &[&id])
        .await
        .unwrap()
        .get(0);
    let stored = stored.expect("the job stores its request's traceparent");

    let mut worker = Process::from(
        traced(
            env!("CARGO_BIN_EXE_octavia-worker"),
            &db,
            &otlp,
            store.path(),
        )
        .args(["--worker-id", "traced"])
        .env("RUST_LOG", "warn,octavia=debug")
        .env("OCTAVIA_LOG_FORMAT", "json")
        .stderr(Stdio::piped())
        .spawn()
        .expect("octavia-worker runs"),
    );
    let logs = Arc::new(Mutex::new(Vec::<String>::new()));
    let lines = logs.clone();
    let stderr = worker.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            lines.lock().unwrap().push(line);
        }
    });
    wait_terminal(&db, &[id], 60).await;
    assert_eq!(status(&db, id).await, "completed");

    // The request's span, and every span of its trace, once the finalize has arrived.
    let spans = wait_for(30, "the job's spans to be exported", || async {
        let all = received.lock().unwrap().clone();
        let request = all
            .iter()
            .find(|r| r.service == "octavia-api" && r.span.name == "POST /api/jobs")?
            .clone();
        let trace: Vec<Received> = all
            .into_iter()
            .filter(|r| r.span.trace_id == request.span.trace_id)
            .collect();
        trace
            .iter()
            .any(|r| r.span.name == "finalize")
            .then_some((request, trace))
    })
    .await;
    let (request, trace) = spans;
    let trace_id = hex(&request.span.trace_id);
    assert_eq!(
        stored,
        format!("00-{trace_id}-{}-01", hex(&request.span.span_id)),
        "the stored traceparent is the request span's"
    );
    let names = |service: &str| -> Vec<&str> {
        trace
            .iter()
            .filter(|r| r.service == service)
            .map(|r| r.span.name.as_str())
            .collect()
    };
    let worker_spans = names("octavia-worker");
    for name in [
        "plan",
        "segment",
        "finalize",
        "apertium",
        "storage.get",
        "storage.put",
    ] {
        assert!(
            worker_spans.contains(&name),
            "no `{name}` span in the job's trace: {worker_spans:?}"
        );
    }
    // Each of them descends from the request: the plan is its child, the rest the plan's
    // or a descendant's.
    let by_id: std::collections::HashMap<&[u8], &Span> = trace
        .iter()
        .map(|r| (r.span.span_id.as_slice(), &r.span))
        .collect();
    for r in trace.iter().filter(|r| r.service == "octavia-worker") {
        let mut at = &r.span;
        while at.span_id != request.span.span_id {
            at = by_id
                .get(at.parent_span_id.as_slice())
                .unwrap_or_else(|| panic!("`{}` does not descend from the request", r.span.name));
        }
    }
    let plan = trace.iter().find(|r| r.span.name == "plan").unwrap();
    assert_eq!(plan.span.parent_span_id, request.span.span_id);

    // The worker's JSON log lines inside the job's spans carry its trace id.
    let logged = logs.lock().unwrap().clone();
    assert!(
        logged
            .iter()
            .any(|l| l.contains(&format!("\"trace_id\":\"{trace_id}\""))),
        "no log line with trace id {trace_id}:\n{}",
        logged.join("\n")
    );
}
