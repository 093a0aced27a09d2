//! Deliveries: signed, retried with the same webhook-id until accepted or out of retry
//! time, never lost to a worker killed mid-delivery, sent only for the events and projects
//! asked for, never redirected, and refused at delivery time when the target resolves to
//! a loopback address.

use super::receiver::*;
use crate::api::{parts, signed_in};
use crate::harness::TestDb;
use crate::support::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

/// Sorted payloads of `received`, verified with `secret`.
fn payloads(secret: &str, received: &[Received]) -> Vec<Value> {
    verify(secret, received).unwrap_or_else(|e| panic!("standardwebhooks refused: {e}"))
}

#[tokio::test]
async fn a_receiver_that_fails_three_times_gets_the_event_once_more_with_the_same_id() {
    let db = TestDb::new().await;
    let (api, config, _dir) = api(&db).await;
    let (_, token) = signed_in(&api, &db, "user", 100).await;
    let receiver = Receiver::start(&[500, 500, 500]).await;
    let (endpoint, secret) = register(
        &api,
        &token,
        json!({"url": receiver.url, "events": ["job.completed"]}),
    )
    .await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    let job = noop_job(&api, &token, json!({"segments": 3})).await;

    let worker_config = worker_config(&db, &config);
    let registry = octavia::job_types::registry(&worker_config).unwrap();
    let worker = TestWorker::start(worker_config, registry, "w-hooks");
    let deliveries = history(&api, &token, endpoint, "the delivery to succeed", |d| {
        d.len() == 1 && d[0]["status"] == "delivered"
    })
    .await;
    worker.stop().await;

    // Three 500s, then the 200 that ended it: four requests, and none after it.
    let received = receiver.received();
    assert_eq!(received.len(), 4, "{received:#?}");
    let id = deliveries[0]["id"].as_str().unwrap();
    for r in &received {
        assert_eq!(
            r.header("webhook-id"),
            id,
            "the same webhook-id at every attempt"
        );
        assert_eq!(r.header("content-type"), "application/json");
    }
    for payload in payloads(&secret, &received) {
        assert_eq!(payload["type"], "job.completed", "{payload}");
        assert_eq!(payload["data"]["id"], job.to_string(), "{payload}");
        assert_eq!(payload["data"]["status"], "completed", "{payload}");
        assert_eq!(payload["data"]["progress"], 100, "{payload}");
        assert!(payload["timestamp"].is_string(), "{payload}");
    }
    assert!(
        received.windows(2).all(|w| w[0].body == w[1].body),
        "the same body at every attempt"
    );
    // Another secret does not verify them: the check is real.
    let other = octavia::webhooks::signature::encode_secret(&[7; 32]);
    assert!(verify(&other, &received).is_err());

    let d = &deliveries[0];
    assert_eq!(d["event"], "job.completed");
    assert_eq!(d["job_id"], job.to_string());
    assert_eq!(d["attempts"], 4, "{d}");
    assert_eq!(d["status_code"], 200, "{d}");
    assert!(
        d["delivered_at"].is_string() && d["last_error"].is_null(),
        "{d}"
    );
    assert!(d["next_attempt_at"].is_null(), "{d}");
}

#[tokio::test]
async fn a_worker_killed_mid_delivery_loses_no_event() {
    let db = TestDb::new().await;
    let (api, _config, _dir) = api(&db).await;
    let (_, token) = signed_in(&api, &db, "user", 100).await;
    let receiver = Receiver::start(&[]).await;
    // The first request is held open: the worker is killed while it waits for the answer.
    receiver.hold(1);
    let (endpoint, secret) = register(
        &api,
        &token,
        json!({"url": receiver.url, "events": ["job.completed"]}),
    )
    .await;
    let job = noop_job(&api, &token, json!({"segments": 2})).await;

    let settings = [
        "--job-types",
        "noop",
        "--set",
        "webhooks.allow_private_targets=true",
        "--set",
        "webhooks.allow_http_targets=true",
        "--set",
        "webhooks.poll_interval_ms=50",
        "--set",
        "webhooks.timeout_seconds=5",
        "--set",
        "webhooks.lease_seconds=6",
    ];
    let mut first = spawn_worker_process(&db, "hooks-a", &settings);
    receiver.wait_for(1, 30).await;
    signal(&first, libc::SIGKILL);
    first.wait().unwrap();
    assert_eq!(status(&db, job).await, "completed");
    let held = history(&api, &token, endpoint, "the attempt under way", |d| {
        d.len() == 1
    })
    .await;
    assert_eq!(held[0]["status"], "delivering", "{}", held[0]);
    assert_eq!(held[0]["attempts"], 1);

    // Once the killed worker's lease ends, another delivers.
    let _second = spawn_worker_process(&db, "hooks-b", &settings);
    let deliveries = history(&api, &token, endpoint, "the delivery after the kill", |d| {
        d.len() == 1 && d[0]["status"] == "delivered"
    })
    .await;
    let received = receiver.received();
    assert_eq!(received.len(), 2, "{received:#?}");
    assert_eq!(
        received[0].header("webhook-id"),
        received[1].header("webhook-id")
    );
    assert_eq!(
        received[1].header("webhook-id"),
        deliveries[0]["id"].as_str().unwrap()
    );
    let payloads = payloads(&secret, &received);
    assert_eq!(payloads[0], payloads[1]);
    assert_eq!(payloads[1]["data"]["id"], job.to_string());
    assert_eq!(deliveries[0]["attempts"], 2, "{}", deliveries[0]);
}

/// The events of `job` among `payloads`, as (event, progress) in order of progress.
fn events_of(payloads: &[Value], job: Uuid) -> Vec<(String, i64)> {
    let mut events: Vec<(String, i64)> = payloads
        .iter()
        .filter(|p| p["data"]["id"] == job.to_string())
        .map(|p| {
            (
                p["type"].as_str().unwrap().to_string(),
                p["data"]["progress"].as_i64().unwrap(),
            )
        })
        .collect();
    events.sort_by_key(|(event, progress)| (*progress, event.clone()));
    events
}

#[tokio::test]
async fn each_endpoint_gets_the_events_and_projects_it_asked_for_signed_through_a_rotation() {
    let db = TestDb::new().await;
    let (api, config, _dir) = api(&db).await;
    let (_, token) = signed_in(&api, &db, "user", 100).await;
    let (_, stranger) = signed_in(&api, &db, "user", 100).await;
    let (status, project) = parts(
        api.post("/api/projects", &token, json!({"name": "p"}))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{project}");
    let project = project["id"].as_str().unwrap().to_string();

    let every = Receiver::start(&[]).await;
    let scoped = Receiver::start(&[]).await;
    let theirs = Receiver::start(&[]).await;
    let (every_id, old_secret) = register(
        &api,
        &token,
        json!({"url": every.url, "events": ["job.completed", "job.failed", "job.cancelled", "job.progress"]}),
    )
    .await;
    let (_, scoped_secret) = register(
        &api,
        &token,
        json!({"url": scoped.url, "events": ["job.completed"], "project_id": project}),
    )
    .await;
    register(
        &api,
        &stranger,
        json!({"url": theirs.url, "events": ["job.completed", "job.cancelled"]}),
    )
    .await;
    // Rotated before any event: deliveries carry the new secret's signature and, for the
    // overlap, the old one's.
    let (status, rotated) = parts(
        api.post(
            &format!("/api/webhooks/endpoints/{every_id}/rotate"),
            &token,
            json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new_secret = rotated["secret"].as_str().unwrap().to_string();
    assert_ne!(new_secret, old_secret);
    assert!(rotated["secret_rotated_at"].is_string(), "{rotated}");

    // In the project: ten segments, progress crossing tenths. Elsewhere: one cancelled
    // before it ran, one that fails.
    let (status, done) = parts(
        api.post(
            "/api/jobs",
            &token,
            json!({"job_type": "noop", "project_id": project,
                   "options": {"segments": 10, "segment_ms": 100}}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{done}");
    let done: Uuid = done["id"].as_str().unwrap().parse().unwrap();
    let cancelled = noop_job(&api, &token, json!({"segments": 1})).await;
    let (status, body) = parts(
        api.post(&format!("/api/jobs/{cancelled}/cancel"), &token, json!({}))
            .await,
    )
    .await;
    assert!(status.is_success(), "{body}");
    let failed = noop_job(&api, &token, json!({"segments": 1, "fail_segments": [0]})).await;

    let mut worker_config = worker_config(&db, &config);
    worker_config.worker.concurrency = 2;
    let registry = octavia::job_types::registry(&worker_config).unwrap();
    let worker = TestWorker::start(worker_config, registry, "w-events");
    wait_terminal(&db, &[done, failed], 60).await;
    history(&api, &token, every_id, "every delivery to succeed", |d| {
        d.len() >= 3 && d.iter().all(|d| d["status"] == "delivered")
    })
    .await;
    scoped.wait_for(1, 30).await;
    worker.stop().await;

    let received = every.received();
    let with_new = payloads(&new_secret, &received);
    assert_eq!(
        payloads(&old_secret, &received),
        with_new,
        "both secrets verify"
    );
    let progress = events_of(&with_new, done);
    let (last, tenths) = progress.split_last().unwrap();
    assert_eq!(last, &("job.completed".to_string(), 100), "{progress:?}");
    assert!(
        !tenths.is_empty(),
        "ten segments cross a tenth at least once: {progress:?}"
    );
    for pair in tenths.windows(2) {
        assert!(
            pair[0].1 / 10 < pair[1].1 / 10,
            "one event per tenth: {progress:?}"
        );
    }
    for (event, at) in tenths {
        assert_eq!(event, "job.progress");
        assert!((10..100).contains(at), "{progress:?}");
    }
    assert_eq!(
        events_of(&with_new, cancelled),
        vec![("job.cancelled".to_string(), 0)]
    );
    let failure: Vec<&Value> = with_new
        .iter()
        .filter(|p| p["data"]["id"] == failed.to_string())
        .collect();
    assert_eq!(failure.len(), 1, "{failure:?}");
    assert_eq!(failure[0]["type"], "job.failed");
    assert!(failure[0]["data"]["error"].is_string(), "{}", failure[0]);
    // No signed link that would expire in a stored payload: the receiver asks the API.
    assert!(!received.iter().any(|r| r.body.contains("signature=")));

    let scoped_got = payloads(&scoped_secret, &scoped.received());
    assert_eq!(
        events_of(&scoped_got, done),
        vec![("job.completed".to_string(), 100)]
    );
    assert_eq!(
        scoped_got.len(),
        1,
        "only the project's job: {scoped_got:?}"
    );
    assert!(
        theirs.received().is_empty(),
        "another user's endpoint hears nothing"
    );
}

#[tokio::test]
async fn a_target_that_resolves_to_loopback_is_refused_at_delivery() {
    let db = TestDb::new().await;
    // Registered where private targets are allowed; delivered by a worker where they are
    // not: the name is resolved at each attempt, and loopback is refused after it.
    let (api, config, _dir) = api(&db).await;
    let (_, token) = signed_in(&api, &db, "user", 100).await;
    let receiver = Receiver::start(&[]).await;
    let url = receiver.url.replace("127.0.0.1", "localhost");
    let (endpoint, _) = register(
        &api,
        &token,
        json!({"url": url, "events": ["job.completed"]}),
    )
    .await;
    noop_job(&api, &token, json!({"segments": 1})).await;

    let mut worker_config = worker_config(&db, &config);
    worker_config.webhooks.allow_private_targets = false;
    let registry = octavia::job_types::registry(&worker_config).unwrap();
    let worker = TestWorker::start(worker_config, registry, "w-refuses");
    let deliveries = history(&api, &token, endpoint, "a refused attempt", |d| {
        d.len() == 1 && d[0]["attempts"].as_i64() >= Some(2) && d[0]["status"] == "pending"
    })
    .await;
    worker.stop().await;
    let error = deliveries[0]["last_error"].as_str().unwrap();
    assert!(error.contains("loopback"), "{error}");
    assert!(deliveries[0]["status_code"].is_null());
    assert!(
        receiver.received().is_empty(),
        "nothing reached the receiver"
    );
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_a_delivery_is_given_up_after_its_retry_time() {
    let db = TestDb::new().await;
    let (api, config, _dir) = api(&db).await;
    let (_, token) = signed_in(&api, &db, "user", 100).await;
    let receiver = Receiver::start(&[307; 100]).await;
    let (endpoint, _) = register(
        &api,
        &token,
        json!({"url": receiver.url, "events": ["job.completed"]}),
    )
    .await;
    noop_job(&api, &token, json!({"segments": 1})).await;

    let mut worker_config = worker_config(&db, &config);
    worker_config.webhooks.retry_for_seconds = 1;
    let registry = octavia::job_types::registry(&worker_config).unwrap();
    let worker = TestWorker::start(worker_config, registry, "w-gives-up");
    let deliveries = history(&api, &token, endpoint, "the delivery to be given up", |d| {
        d.len() == 1 && d[0]["status"] == "failed"
    })
    .await;
    worker.stop().await;
    let d = &deliveries[0];
    assert_eq!(d["status_code"], 307, "{d}");
    let error = d["last_error"].as_str().unwrap();
    assert!(error.contains("redirects are not followed"), "{error}");
    assert!(
        d["delivered_at"].is_null() && d["next_attempt_at"].is_null(),
        "{d}"
    );
    let attempts = d["attempts"].as_i64().unwrap();
    assert!(attempts >= 1, "{d}");
    // Every request went to the endpoint's own URL: none followed the redirect.
    let received = receiver.received();
    assert_eq!(received.len() as i64, attempts);
    assert!(received.iter().all(|r| r.uri == "/hook"), "{received:#?}");
}

#[tokio::test]
async fn the_history_keeps_pending_deliveries_and_prunes_finished_ones_past_their_time() {
    let db = TestDb::new().await;
    let user = user(&db, 0).await;
    let client = db.client().await;
    let endpoint: Uuid = client
        .query_one(
            "INSERT INTO webhook_endpoints (user_id, url, events, secret)
             VALUES ($1, 'https://hooks.example.com/', ARRAY['job.completed'], '\\x00')
             RETURNING id",
            &[&user],
        )
        .await
        .unwrap()
        .get(0);
    let job = enqueue_jobs(&db, vec![job("noop", json!({}))]).await[0];
    // (status, age in seconds) of each delivery.
    for (status, age) in [
        ("delivered", 7200.0),
        ("failed", 7200.0),
        ("pending", 7200.0),
        ("delivered", 10.0),
    ] {
        client
            .execute(
                "INSERT INTO webhook_deliveries (endpoint_id, job_id, event, data, status, created_at)
                 VALUES ($1, $2, 'job.completed', '{}', $3, now() - $4 * interval '1 second')",
                &[&endpoint, &job, &status, &age],
            )
            .await
            .unwrap();
    }
    let config = octavia::config::WebhooksConfig {
        retry_for_seconds: 3600,
        history_seconds: 3600,
        ..Default::default()
    };
    let pruned = octavia::webhooks::deliveries::prune(&client, &config, 1000)
        .await
        .unwrap();
    assert_eq!(pruned, 2);
    let left: Vec<String> = client
        .query(
            "SELECT status FROM webhook_deliveries ORDER BY created_at",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        left,
        ["pending", "delivered"],
        "a retry in progress is never pruned"
    );
}
