//! Creating jobs: atomic credit reservation under concurrency, idempotency, pricing,
//! validation; listing, cancel and retry.

use super::*;
use crate::support::assert_ledger_balances;
use std::sync::Arc;
use tokio::sync::Barrier;

/// A configuration where a noop job costs `price` credits.
fn priced(db: &TestDb, price: i64) -> (Config, TempDir) {
    let (mut c, dir) = config(db);
    c.pricing.noop = price;
    (c, dir)
}

#[tokio::test]
async fn a_hundred_concurrent_creations_charge_exactly_what_the_balance_covers() {
    let db = TestDb::new().await;
    let (mut config, _dir) = priced(&db, 7);
    // A hundred at once is more than the default rate limit (limits.rs tests that).
    config.api.job_creations_per_minute = 0;
    let api = Arc::new(TestApi::start(config).await);
    let (user, token) = signed_in(&api, &db, "user", 70).await;

    let barrier = Arc::new(Barrier::new(100));
    let mut tasks = Vec::new();
    for i in 0..100 {
        let (api, token, barrier) = (api.clone(), token.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let r = api
                .post(
                    "/api/jobs",
                    &token,
                    json!({"job_type": "noop", "options": {"segments": i % 3 + 1}}),
                )
                .await;
            parts(r).await
        }));
    }
    let mut created = Vec::new();
    let mut refused = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            StatusCode::CREATED => {
                assert_eq!(body["cost_credits"], 7, "{body}");
                created.push(body["id"].as_str().unwrap().to_string());
            }
            StatusCode::PAYMENT_REQUIRED => {
                assert_eq!(body["error"]["code"], "insufficient_credits");
                assert_eq!(body["error"]["price"], 7, "{body}");
                assert!(body["error"]["balance"].as_i64().unwrap() < 7, "{body}");
                refused += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(created.len(), 10, "exactly the ten the balance pays for");
    assert_eq!(refused, 90);
    assert_eq!(balance(&db, user).await, (0, 0));
    assert_ledger_balances(&db).await;
    let client = db.client().await;
    let reservations: i64 = client
        .query_one(
            "SELECT count(*) FROM credits_history WHERE user_id = $1 AND reason = 'job_reserve' AND delta = -7",
            &[&user],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(reservations, 10);
    let jobs: i64 = client
        .query_one(
            "SELECT count(*) FROM jobs WHERE user_id = $1 AND status = 'queued' AND cost_credits = 7",
            &[&user],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(jobs, 10);
}

#[tokio::test]
async fn an_idempotency_key_replays_the_job_and_charges_once() {
    let db = TestDb::new().await;
    let (config, _dir) = priced(&db, 5);
    let api = TestApi::start(config).await;
    let (user, token) = signed_in(&api, &db, "user", 100).await;
    let create = |key: &str, body: Value| {
        api.request(Method::POST, "/api/jobs", Some(&token))
            .header("idempotency-key", key)
            .json(&body)
            .send()
    };
    let body = json!({"job_type": "noop", "options": {"segments": 2, "segment_ms": 0}});

    let first = create("order-1", body.clone()).await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("location").is_some());
    let (_, first) = parts(first).await;
    // The same request again, even spelled differently, is the same job.
    let same = json!({"options": {"segment_ms": 0, "segments": 2}, "job_type": "noop"});
    for _ in 0..3 {
        let again = create("order-1", same.clone()).await.unwrap();
        assert_eq!(again.status(), StatusCode::OK);
        assert_eq!(again.headers()["idempotent-replayed"], "true");
        let (_, again) = parts(again).await;
        assert_eq!(again["id"], first["id"]);
    }
    assert_eq!(balance(&db, user).await, (95, 95), "charged once");

    // The same key with another request is a conflict and charges nothing.
    let other = create(
        "order-1",
        json!({"job_type": "noop", "options": {"segments": 3}}),
    )
    .await
    .unwrap();
    assert_error(other, StatusCode::CONFLICT, "idempotency_key_reused").await;
    assert_eq!(balance(&db, user).await, (95, 95));

    // Concurrent duplicates of a new key create one job.
    let api = Arc::new(api);
    let barrier = Arc::new(Barrier::new(20));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (api, token, barrier, body) =
            (api.clone(), token.clone(), barrier.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let r = api
                .request(Method::POST, "/api/jobs", Some(&token))
                .header("idempotency-key", "order-2")
                .json(&body)
                .send()
                .await
                .unwrap();
            parts(r).await
        }));
    }
    let mut ids = std::collections::HashSet::new();
    let mut created = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert!(
            matches!(status, StatusCode::CREATED | StatusCode::OK),
            "{status} {body}"
        );
        created += (status == StatusCode::CREATED) as usize;
        ids.insert(body["id"].as_str().unwrap().to_string());
    }
    assert_eq!((created, ids.len()), (1, 1));
    assert_eq!(balance(&db, user).await, (90, 90));

    // Keys are per user: another user's same key is another job.
    let (_, other_token) = signed_in(&api, &db, "user", 10).await;
    let r = api
        .request(Method::POST, "/api/jobs", Some(&other_token))
        .header("idempotency-key", "order-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);

    // A refused request does not use up its key.
    let (poor, poor_token) = signed_in(&api, &db, "user", 0).await;
    let attempt = || {
        api.request(Method::POST, "/api/jobs", Some(&poor_token))
            .header("idempotency-key", "k")
            .json(&body)
            .send()
    };
    assert_error(
        attempt().await.unwrap(),
        StatusCode::PAYMENT_REQUIRED,
        "insufficient_credits",
    )
    .await;
    let client = db.client().await;
    octavia::credits::credit(&client, poor, 5, octavia::credits::GRANT)
        .await
        .unwrap();
    assert_eq!(attempt().await.unwrap().status(), StatusCode::CREATED);
    assert_ledger_balances(&db).await;
}

#[tokio::test]
async fn bad_requests_get_the_right_status_and_change_nothing() {
    let db = TestDb::new().await;
    let (mut config, _dir) = config(&db);
    config.api.body_limit_bytes = 4096;
    let api = TestApi::start(config).await;
    let (user, token) = signed_in(&api, &db, "user", 50).await;
    let post_raw = |body: &'static str, content_type: &'static str| {
        api.request(Method::POST, "/api/jobs", Some(&token))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    assert_error(
        post_raw("{not json", "application/json").await.unwrap(),
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    assert_error(
        post_raw("{}", "text/plain").await.unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    assert_error(
        post_raw("{}", "application/json").await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
    )
    .await;
    assert_error(
        post_raw(r#"{"job_type": 3}"#, "application/json")
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
    )
    .await;
    let big = format!(
        r#"{{"job_type": "noop", "options": {{"x": "{}"}}}}"#,
        "a".repeat(5000)
    );
    let r = api
        .request(Method::POST, "/api/jobs", Some(&token))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_error(r, StatusCode::PAYLOAD_TOO_LARGE, "too_large").await;
    for (body, why) in [
        (json!({"job_type": "teleport"}), "unknown type"),
        (
            json!({"job_type": "noop", "options": [1]}),
            "options not an object",
        ),
        (
            json!({"job_type": "noop", "options": {"segments": -1}}),
            "bad noop options",
        ),
        (
            json!({"job_type": "noop", "options": {"x": "a\u{0}b"}}),
            "NUL in options",
        ),
        (json!({"job_type": "subtitles"}), "no input"),
        (
            json!({"job_type": "audio_translation", "options": {"target_language": "xx"}}),
            "bad language",
        ),
        (json!({"job_type": "noop", "surprise": 1}), "unknown field"),
    ] {
        let r = api.post("/api/jobs", &token, body).await;
        let (status, body) = parts(r).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{why}: {body}");
    }
    let r = api
        .request(Method::POST, "/api/jobs", Some(&token))
        .header("idempotency-key", "")
        .json(&json!({"job_type": "noop"}))
        .send()
        .await
        .unwrap();
    assert_error(r, StatusCode::BAD_REQUEST, "bad_request").await;
    assert_error(
        api.get("/api/jobs/not-a-uuid", &token).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    for query in ["limit=0", "limit=101", "status=sleeping"] {
        let r = api.get(&format!("/api/jobs?{query}"), &token).await;
        assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid").await;
    }
    for query in ["limit=ten", "cursor=garbage", "project_id=x"] {
        let r = api.get(&format!("/api/jobs?{query}"), &token).await;
        assert_error(r, StatusCode::BAD_REQUEST, "bad_request").await;
    }
    let r = api
        .request(Method::PATCH, "/api/jobs", Some(&token))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("allow").is_some());
    assert_error(r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    assert_error(
        api.get("/api/nothing-here", &token).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    let client = db.client().await;
    let jobs: i64 = client
        .query_one("SELECT count(*) FROM jobs", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(jobs, 0);
    assert_eq!(balance(&db, user).await, (50, 50));
}

#[tokio::test]
async fn jobs_page_newest_first_with_filters() {
    let db = TestDb::new().await;
    let (config, _dir) = config(&db);
    let api = TestApi::start(config).await;
    let (_, token) = signed_in(&api, &db, "user", 0).await;
    let (_, project) = parts(
        api.post(
            "/api/projects",
            &token,
            json!({"name": "Talks", "description": "2024"}),
        )
        .await,
    )
    .await;
    let project = project["id"].as_str().unwrap();
    let (status, projects) = parts(api.get("/api/projects", &token).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(projects["projects"][0]["name"], "Talks");

    let mut ids = Vec::new();
    for i in 0..7 {
        let mut body = json!({"job_type": "noop"});
        if i % 2 == 0 {
            body["project_id"] = json!(project);
        }
        let (status, job) = parts(api.post("/api/jobs", &token, body).await).await;
        assert_eq!(status, StatusCode::CREATED, "{job}");
        ids.push(job["id"].as_str().unwrap().to_string());
    }
    ids.reverse();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/jobs?limit=3&cursor={c}"),
            None => "/api/jobs?limit=3".into(),
        };
        let (status, page) = parts(api.get(&path, &token).await).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(
            page["jobs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|j| j["id"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, ids, "every job once, newest first");
    let (_, page) = parts(
        api.get(
            &format!("/api/jobs?project_id={project}&status=queued"),
            &token,
        )
        .await,
    )
    .await;
    assert_eq!(page["jobs"].as_array().unwrap().len(), 4);
    let (_, page) = parts(api.get("/api/jobs?status=completed", &token).await).await;
    assert_eq!(page["jobs"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn cancel_refunds_and_retry_charges_again() {
    let db = TestDb::new().await;
    let (config, _dir) = priced(&db, 4);
    let api = TestApi::start(config).await;
    let (user, token) = signed_in(&api, &db, "user", 6).await;
    let (_, job) = parts(
        api.post("/api/jobs", &token, json!({"job_type": "noop"}))
            .await,
    )
    .await;
    let id = job["id"].as_str().unwrap();
    assert_eq!(job["status"], "queued");
    assert_eq!(job["segments"]["total"], 0);
    assert_eq!(balance(&db, user).await, (2, 2));

    let (status, cancelled) = parts(
        api.post(&format!("/api/jobs/{id}/cancel"), &token, json!({}))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(balance(&db, user).await, (6, 6), "refunded");
    let r = api
        .post(&format!("/api/jobs/{id}/cancel"), &token, json!({}))
        .await;
    assert_error(r, StatusCode::CONFLICT, "conflict").await;

    let (status, retried) = parts(
        api.post(&format!("/api/jobs/{id}/retry"), &token, json!({}))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{retried}");
    assert_eq!(retried["status"], "queued");
    assert_eq!(retried["run"], 2);
    assert_eq!(balance(&db, user).await, (2, 2), "reserved again");
    let r = api
        .post(&format!("/api/jobs/{id}/retry"), &token, json!({}))
        .await;
    assert_error(r, StatusCode::CONFLICT, "conflict").await;

    // A retry the balance cannot pay for changes nothing.
    api.post(&format!("/api/jobs/{id}/cancel"), &token, json!({}))
        .await;
    let client = db.client().await;
    client
        .execute("UPDATE users SET credits = 1 WHERE id = $1", &[&user])
        .await
        .unwrap();
    client
        .execute(
            "INSERT INTO credits_history (user_id, delta, reason) VALUES ($1, -5, 'grant')",
            &[&user],
        )
        .await
        .unwrap();
    let body = assert_error(
        api.post(&format!("/api/jobs/{id}/retry"), &token, json!({}))
            .await,
        StatusCode::PAYMENT_REQUIRED,
        "insufficient_credits",
    )
    .await;
    assert_eq!(body["error"]["price"], 4);
    assert_eq!(body["error"]["balance"], 1);
    assert_eq!(
        crate::support::status(&db, id.parse().unwrap()).await,
        "cancelled"
    );
    assert_ledger_balances(&db).await;
}

#[tokio::test]
async fn a_created_job_wakes_an_idle_worker_without_waiting_for_its_poll() {
    let db = TestDb::new().await;
    let (config, _dir) = config(&db);
    let api = TestApi::start(config).await;
    let (_, token) = signed_in(&api, &db, "user", 0).await;
    let mut worker_config = crate::support::fast_config(&db);
    // Only a notification can wake it in time.
    worker_config.worker.poll_interval_ms = 600_000;
    let registry = octavia::job_types::registry(&worker_config).unwrap();
    let worker = crate::support::TestWorker::start(worker_config, registry, "w-wake");
    // The first job gets the worker through its claims until it finds nothing more and
    // waits; the second arrives while it waits.
    for _ in 0..2 {
        let (status, job) = parts(
            api.post("/api/jobs", &token, json!({"job_type": "noop"}))
                .await,
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{job}");
        assert_eq!(job["status"], "queued", "{job}");
        assert_eq!(job["segments"]["total"], 0, "{job}");
        let id: Uuid = job["id"].as_str().unwrap().parse().unwrap();
        crate::support::wait_terminal(&db, &[id], 20).await;
    }
    worker.stop().await;
}
