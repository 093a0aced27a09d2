//! Live progress over Server-Sent Events, driven by a real worker.

use super::*;
use crate::support::{TestWorker, fast_config};
use futures_util::StreamExt;

/// Reads `job` events from an SSE response until the stream ends; returns their data.
async fn read_events(r: Response) -> Vec<Value> {
    let mut events = Vec::new();
    let mut buffer = String::new();
    let mut body = r.bytes_stream();
    while let Some(chunk) = body.next().await {
        buffer.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let mut name = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = Some(v.trim().to_string());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim());
                }
            }
            if name.as_deref() == Some("job") {
                events.push(serde_json::from_str(&data).unwrap());
            }
        }
    }
    events
}

#[tokio::test]
async fn events_stream_progress_until_the_job_ends() {
    let db = TestDb::new().await;
    let (config, _dir) = config(&db);
    let api = TestApi::start(config).await;
    let (_, token) = signed_in(&api, &db, "user", 0).await;
    // Five slow segments one at a time: progress moves in visible steps.
    let (status, job) = parts(
        api.post(
            "/api/jobs",
            &token,
            json!({"job_type": "noop", "options": {"segments": 5, "segment_ms": 150}}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let id = job["id"].as_str().unwrap().to_string();

    let r = api.get(&format!("/api/jobs/{id}/events"), &token).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let reader = tokio::spawn(read_events(r));

    let mut config = fast_config(&db);
    config.worker.concurrency = 1;
    let registry = octavia::job_types::registry(&config).unwrap();
    let worker = TestWorker::start(config, registry, "w-events");
    let events = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .expect("the stream ends when the job does")
        .unwrap();
    worker.stop().await;

    // Each event's data is what the document's JobEvent schema says: its properties, the
    // required ones present, the status one of the enum's.
    let doc = serde_json::to_value(octavia::api::document()).unwrap();
    let schema = &doc["components"]["schemas"]["JobEvent"];
    let properties: std::collections::BTreeSet<&String> =
        schema["properties"].as_object().unwrap().keys().collect();
    for event in &events {
        let keys: std::collections::BTreeSet<&String> = event.as_object().unwrap().keys().collect();
        assert_eq!(keys, properties, "{event}");
        for required in schema["required"].as_array().unwrap() {
            assert!(!event[required.as_str().unwrap()].is_null(), "{event}");
        }
    }
    assert_eq!(
        doc["paths"]["/api/jobs/{id}/events"]["get"]["responses"]["200"]["content"]["text/event-stream"]
            ["schema"]["$ref"],
        "#/components/schemas/JobEventMessage"
    );

    assert_eq!(events.first().unwrap()["status"], "queued", "{events:?}");
    let last = events.last().unwrap();
    assert_eq!(last["status"], "completed", "{events:?}");
    assert_eq!(last["progress"], 100);
    let progress: Vec<i64> = events
        .iter()
        .map(|e| e["progress"].as_i64().unwrap())
        .collect();
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    let intermediate = progress.iter().filter(|p| **p > 0 && **p < 100).count();
    assert!(
        intermediate >= 2,
        "progress arrived as it happened: {progress:?}"
    );
    assert!(
        events.iter().any(|e| e["status"] == "running"),
        "{events:?}"
    );

    // A finished job's stream is its final state, and ends at once.
    let r = api.get(&format!("/api/jobs/{id}/events"), &token).await;
    let events = tokio::time::timeout(Duration::from_secs(10), read_events(r))
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["status"], "completed");
}

#[tokio::test]
async fn a_cancelled_job_ends_its_stream_and_shutdown_ends_open_ones() {
    let db = TestDb::new().await;
    let (config, _dir) = config(&db);
    let api = TestApi::start(config).await;
    let (_, token) = signed_in(&api, &db, "user", 0).await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (_, job) = parts(
            api.post("/api/jobs", &token, json!({"job_type": "noop"}))
                .await,
        )
        .await;
        ids.push(job["id"].as_str().unwrap().to_string());
    }
    let first = tokio::spawn(read_events(
        api.get(&format!("/api/jobs/{}/events", ids[0]), &token)
            .await,
    ));
    let second = tokio::spawn(read_events(
        api.get(&format!("/api/jobs/{}/events", ids[1]), &token)
            .await,
    ));
    api.post(&format!("/api/jobs/{}/cancel", ids[0]), &token, json!({}))
        .await;
    let events = tokio::time::timeout(Duration::from_secs(10), first)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(events.last().unwrap()["status"], "cancelled", "{events:?}");

    // No worker runs: the second job stays queued, and a graceful stop ends its stream.
    tokio::time::timeout(Duration::from_secs(30), api.stop())
        .await
        .expect("open event streams do not hold up shutdown");
    let events = tokio::time::timeout(Duration::from_secs(10), second)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["status"], "queued");
}
