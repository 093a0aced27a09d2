//! Operations: health, readiness, metrics, the OpenAPI document, request ids.

use super::*;

#[tokio::test]
async fn health_readiness_and_metrics() {
    let db = TestDb::new().await;
    let (config, _dir) = config(&db);
    let api = TestApi::start(config).await;
    let (_, token) = signed_in(&api, &db, "user", 0).await;

    let r = api
        .request(Method::GET, "/healthz", None)
        .send()
        .await
        .unwrap();
    assert_eq!(parts(r).await, (StatusCode::OK, json!({"status": "ok"})));
    let r = api
        .request(Method::GET, "/readyz", None)
        .send()
        .await
        .unwrap();
    assert_eq!(parts(r).await, (StatusCode::OK, json!({"status": "ready"})));

    // Every response carries a request id, a client's own one kept.
    let r = api.get("/api/me", &token).await;
    assert!(r.headers().get("x-request-id").is_some());
    let r = api
        .request(Method::GET, "/api/me", Some(&token))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-123");

    let r = api
        .post("/api/jobs", &token, json!({"job_type": "noop"}))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = api
        .request(Method::GET, "/metrics", None)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    for needle in [
        "octavia_http_requests_total{route=\"/api/jobs\",method=\"POST\",status=\"201\"}",
        "octavia_http_requests_total{route=\"/api/me\",method=\"GET\",status=\"200\"}",
        "octavia_http_request_duration_seconds_bucket{route=\"/api/me\",method=\"GET\"",
        "octavia_jobs_created_total{job_type=\"noop\"}",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    // Route patterns, never raw paths with ids.
    let id = Uuid::new_v4();
    api.get(&format!("/api/jobs/{id}"), &token).await;
    let text = api
        .request(Method::GET, "/metrics", None)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("route=\"/api/jobs/{id}\""), "{text}");
    assert!(!text.contains(&id.to_string()));

    // Not ready when the schema is behind this build.
    let client = db.client().await;
    client
        .execute("DELETE FROM refinery_schema_history WHERE version = (SELECT max(version) FROM refinery_schema_history)", &[])
        .await
        .unwrap();
    let r = api
        .request(Method::GET, "/readyz", None)
        .send()
        .await
        .unwrap();
    assert_error(r, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
}

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let db = TestDb::new().await;
    let (config, _dir) = config(&db);
    let api = TestApi::start(config).await;
    let r = api
        .request(Method::GET, "/api/openapi.json", None)
        .send()
        .await
        .unwrap();
    let (status, doc) = parts(r).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc, serde_json::to_value(octavia::api::document()).unwrap());

    let mut routes: Vec<String> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            routes.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    routes.sort();
    let mut expected = vec![
        "POST /api/sessions",
        "DELETE /api/sessions/current",
        "GET /api/projects",
        "POST /api/projects",
        "POST /api/uploads",
        "POST /api/uploads/{id}/complete",
        "GET /api/media/{id}",
        "DELETE /api/media/{id}",
        "GET /api/media/{id}/download",
        "DELETE /api/projects/{id}",
        "GET /api/jobs",
        "POST /api/jobs",
        "GET /api/jobs/{id}",
        "POST /api/jobs/{id}/cancel",
        "POST /api/jobs/{id}/retry",
        "GET /api/jobs/{id}/events",
        "GET /api/jobs/{id}/transcript",
        "GET /api/me",
        "POST /api/keys",
        "GET /api/keys",
        "DELETE /api/keys/{id}",
        "POST /api/webhooks/polar",
        "POST /api/webhooks/endpoints",
        "GET /api/webhooks/endpoints",
        "DELETE /api/webhooks/endpoints/{id}",
        "POST /api/webhooks/endpoints/{id}/rotate",
        "GET /api/webhooks/endpoints/{id}/deliveries",
        "GET /api/storage/{key}",
        "PUT /api/storage/{key}",
        "GET /healthz",
        "GET /readyz",
        "GET /metrics",
        "GET /api/openapi.json",
    ];
    expected.sort();
    assert_eq!(routes, expected);

    // Each documented route is served: none answers "no such route".
    for route in &expected {
        let (method, path) = route.split_once(' ').unwrap();
        let path = path
            .replace("{id}", &Uuid::new_v4().to_string())
            .replace("{key}", "a/b");
        let r = api
            .request(method.parse().unwrap(), &path, None)
            .send()
            .await
            .unwrap();
        let (status, body) = parts(r).await;
        assert!(
            !(status == StatusCode::NOT_FOUND && body["error"]["message"] == "route not found")
                && status != StatusCode::METHOD_NOT_ALLOWED,
            "{route}: {status} {body}"
        );
    }
    // Errors are described by a schema.
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());

    // Generated clients name their functions after operationIds: unique, camelCase.
    let mut ids: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .map(|op| {
            op["operationId"]
                .as_str()
                .expect("every operation has an id")
        })
        .collect();
    assert!(
        ids.iter()
            .all(|id| id.chars().next().unwrap().is_ascii_lowercase()
                && id.chars().all(|c| c.is_ascii_alphanumeric())),
        "{ids:?}"
    );
    let count = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), count, "operationIds repeat: {ids:?}");
    // Job types, statuses and options are typed, not bare strings and empty objects.
    let schemas = &doc["components"]["schemas"];
    let names: Vec<&str> = octavia::job::JobType::ALL
        .iter()
        .map(|t| t.name())
        .collect();
    assert_eq!(schemas["JobType"]["enum"], serde_json::json!(names));
    assert!(schemas["JobOptions"]["properties"]["target_language"].is_object());
    assert_eq!(
        schemas["NewUpload"]["properties"]["size_bytes"]["minimum"], 1,
        "{}",
        schemas["NewUpload"]
    );
}

#[tokio::test]
async fn without_a_database_the_api_answers_503_in_json() {
    let db = TestDb::new().await;
    let (mut config, _dir) = config(&db);
    // Nothing listens on port 1: every connection attempt fails at once.
    config.database.url = "postgres://postgres@127.0.0.1:1/octavia".into();
    config.database.connect_timeout_seconds = 1;
    let api = TestApi::start(config).await;
    let token = octavia::api::auth::new_token();
    for (method, path) in [(Method::GET, "/api/me"), (Method::GET, "/readyz")] {
        let r = api
            .request(method, path, Some(&token))
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["retry-after"], "5");
        assert_error(r, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    }
    let r = api
        .request(Method::POST, "/api/sessions", None)
        .json(&json!({"email": "a@b.c", "password": "whatever1"}))
        .send()
        .await
        .unwrap();
    assert_error(r, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    // What needs no database still works.
    let r = api
        .request(Method::GET, "/healthz", None)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_binary_serves_and_stops_gracefully_on_sigterm() {
    use std::io::BufRead;
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let mut child = crate::support::Process::from(
        std::process::Command::new(env!("CARGO_BIN_EXE_octavia-api"))
            .args(["--no-migrate", "--listen", "127.0.0.1:0"])
            .args([
                "--set",
                &format!("storage.local_dir={}", dir.path().display()),
            ])
            .args(["--set", &format!("storage.signing_secret={SIGNING_SECRET}")])
            .env("DATABASE_URL", &db.url)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("octavia-api runs"),
    );
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let address = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("octavia-api logs where it listens");
        if let Some((_, rest)) = line.split_once("address=") {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    let http = reqwest::Client::new();
    let r = http
        .get(format!("http://{address}/readyz"))
        .send()
        .await
        .unwrap_or_else(|e| {
            let rest: Vec<String> = rx.try_iter().collect();
            panic!("{e}; octavia-api said:\n{}", rest.join("\n"))
        });
    assert_eq!(r.status(), StatusCode::OK);

    crate::support::signal(&child, libc::SIGTERM);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running 30 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn the_api_refuses_to_start_without_a_signing_secret_for_the_local_store() {
    let db = TestDb::new().await;
    let (mut config, _dir) = config(&db);
    config.storage.signing_secret = String::new();
    let pool = octavia::db::pool(&config.database).unwrap();
    let e = ApiState::new(config, pool, CancellationToken::new())
        .err()
        .expect("no secret, no API");
    assert!(e.to_string().contains("storage.signing_secret"), "{e}");
}
