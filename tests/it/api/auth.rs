//! Authentication and isolation: tokens, and 404 for whatever is not the caller's.

use super::*;
use crate::support::{TestWorker, fast_config, wait_terminal};

/// Every route that needs a bearer token, with a body that would be valid.
fn protected_routes(job: Uuid, media: Uuid) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (Method::DELETE, "/api/sessions/current".into(), None),
        (Method::GET, "/api/projects".into(), None),
        (
            Method::POST,
            "/api/projects".into(),
            Some(json!({"name": "p"})),
        ),
        (
            Method::POST,
            "/api/uploads".into(),
            Some(json!({"file_name": "a.srt", "media_type": "subtitle", "size_bytes": 10})),
        ),
        (Method::POST, format!("/api/uploads/{media}/complete"), None),
        (Method::GET, format!("/api/media/{media}"), None),
        (Method::GET, format!("/api/media/{media}/download"), None),
        (Method::DELETE, format!("/api/media/{media}"), None),
        (Method::DELETE, format!("/api/projects/{media}"), None),
        (Method::GET, "/api/jobs".into(), None),
        (
            Method::POST,
            "/api/jobs".into(),
            Some(json!({"job_type": "noop"})),
        ),
        (Method::GET, format!("/api/jobs/{job}"), None),
        (Method::POST, format!("/api/jobs/{job}/cancel"), None),
        (Method::POST, format!("/api/jobs/{job}/retry"), None),
        (Method::GET, format!("/api/jobs/{job}/events"), None),
        (Method::GET, format!("/api/jobs/{job}/transcript"), None),
        (Method::GET, "/api/me".into(), None),
        (
            Method::POST,
            "/api/keys".into(),
            Some(json!({"name": "ci"})),
        ),
        (Method::GET, "/api/keys".into(), None),
        (Method::DELETE, format!("/api/keys/{media}"), None),
        (
            Method::POST,
            "/api/webhooks/endpoints".into(),
            Some(json!({"url": "https://hooks.example.com/", "events": ["job.completed"]})),
        ),
        (Method::GET, "/api/webhooks/endpoints".into(), None),
        (
            Method::DELETE,
            format!("/api/webhooks/endpoints/{media}"),
            None,
        ),
        (
            Method::POST,
            format!("/api/webhooks/endpoints/{media}/rotate"),
            None,
        ),
        (
            Method::GET,
            format!("/api/webhooks/endpoints/{media}/deliveries"),
            None,
        ),
    ]
}

#[tokio::test]
async fn every_route_rejects_a_missing_or_wrong_token() {
    let db = TestDb::new().await;
    let (config, _dir) = config(&db);
    let api = TestApi::start(config).await;
    let (_, token) = signed_in(&api, &db, "user", 100).await;
    let (status, job) = parts(
        api.post("/api/jobs", &token, json!({"job_type": "noop"}))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let job: Uuid = job["id"].as_str().unwrap().parse().unwrap();

    let routes = protected_routes(job, Uuid::new_v4());
    // The OpenAPI document marks exactly these as needing the bearer scheme.
    let doc = serde_json::to_value(octavia::api::document()).unwrap();
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if op["security"].to_string().contains("bearer") {
                documented.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    assert_eq!(documented.len(), routes.len(), "{documented:?}");

    let wrong = octavia::api::auth::new_token();
    for (method, path, body) in &routes {
        for token in [None, Some(wrong.as_str()), Some("not-a-token"), Some("")] {
            let mut r = api.request(method.clone(), path, token);
            if let Some(body) = body {
                r = r.json(body);
            }
            let r = r.send().await.unwrap();
            assert_eq!(
                r.headers()
                    .get("www-authenticate")
                    .map(|v| v.to_str().unwrap()),
                Some("Bearer"),
                "{method} {path}"
            );
            assert_error(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
        }
        // Another scheme is no bearer token either.
        let r = api
            .http
            .request(method.clone(), format!("{}{path}", api.url))
            .basic_auth("user", Some("pw"))
            .send()
            .await
            .unwrap();
        assert_error(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    // Nothing was changed by all that: still one job, queued.
    assert_eq!(crate::support::status(&db, job).await, "queued");
}

#[tokio::test]
async fn signing_in_and_out() {
    let db = TestDb::new().await;
    let (config, _dir) = config(&db);
    let api = TestApi::start(config).await;
    let (id, email, password) = user(&db, "user", 7).await;

    for (e, p) in [
        (email.as_str(), "wrong password"),
        ("nobody@example.com", password.as_str()),
    ] {
        let r = api
            .request(Method::POST, "/api/sessions", None)
            .json(&json!({"email": e, "password": p}))
            .send()
            .await
            .unwrap();
        assert_error(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    let r = api
        .request(Method::POST, "/api/sessions", None)
        .header("user-agent", "octavia-test/1")
        .json(&json!({"email": email.to_uppercase(), "password": password}))
        .send()
        .await
        .unwrap();
    let (status, session) = parts(r).await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let token = session["token"].as_str().unwrap();
    assert_eq!(session["user"]["id"], id.to_string());

    // Only the hash is stored, with the client's details.
    let client = db.client().await;
    let row = client
        .query_one(
            "SELECT token_hash, user_agent, ip_address, last_seen IS NOT NULL FROM sessions WHERE user_id = $1",
            &[&id],
        )
        .await
        .unwrap();
    assert_eq!(
        row.get::<_, Vec<u8>>(0),
        octavia::api::auth::token_hash(token)
    );
    assert_ne!(row.get::<_, Vec<u8>>(0), token.as_bytes());
    assert_eq!(
        row.get::<_, Option<String>>(1).as_deref(),
        Some("octavia-test/1")
    );
    assert_eq!(
        row.get::<_, Option<String>>(2).as_deref(),
        Some("127.0.0.1")
    );
    assert!(row.get::<_, bool>(3));

    let (status, me) = parts(api.get("/api/me", token).await).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["email"], email);
    assert_eq!(me["credits"], 7);
    assert_eq!(me["credits_history"][0]["reason"], "grant");
    assert_eq!(me["credits_history"][0]["delta"], 7);

    let r = api
        .request(Method::DELETE, "/api/sessions/current", Some(token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_error(
        api.get("/api/me", token).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;

    // An expired session is refused likewise.
    let token = api.login(&email, &password).await;
    client
        .execute(
            "UPDATE sessions SET expires_at = now() - interval '1 second'",
            &[],
        )
        .await
        .unwrap();
    assert_error(
        api.get("/api/me", &token).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
}

#[tokio::test]
async fn users_get_404_for_each_others_jobs_media_and_events_and_admins_read_both() {
    let db = TestDb::new().await;
    let (config, _dir) = config(&db);
    let api = TestApi::start(config).await;
    let (_, a) = signed_in(&api, &db, "user", 0).await;
    let (b_id, b) = signed_in(&api, &db, "user", 0).await;
    let (_, admin) = signed_in(&api, &db, "admin", 0).await;

    // B's job, finished by a worker so its event stream would end at once, and B's upload.
    let (status, job) = parts(api.post("/api/jobs", &b, json!({"job_type": "noop"})).await).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let job = job["id"].as_str().unwrap().to_string();
    let config = fast_config(&db);
    let registry = octavia::job_types::registry(&config).unwrap();
    let worker = TestWorker::start(config, registry, "w-auth");
    wait_terminal(&db, &[job.parse().unwrap()], 30).await;
    worker.stop().await;
    let (status, upload) = parts(
        api.post(
            "/api/uploads",
            &b,
            json!({"file_name": "b.srt", "media_type": "subtitle", "size_bytes": 40}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{upload}");
    let media = upload["media"]["id"].as_str().unwrap().to_string();
    let (status, project) =
        parts(api.post("/api/projects", &b, json!({"name": "B's"})).await).await;
    assert_eq!(status, StatusCode::CREATED, "{project}");
    let project = project["id"].as_str().unwrap().to_string();

    let reads = [
        (format!("/api/jobs/{job}"), "job"),
        (format!("/api/media/{media}"), "media"),
        (format!("/api/jobs/{job}/events"), "job"),
    ];
    for (path, _) in &reads {
        let body = assert_error(api.get(path, &a).await, StatusCode::NOT_FOUND, "not_found").await;
        assert!(!body.to_string().contains(&b_id.to_string()), "{body}");
        // Same answer as for something that does not exist at all.
        let missing = path
            .replace(&job, &Uuid::new_v4().to_string())
            .replace(&media, &Uuid::new_v4().to_string());
        assert_error(
            api.get(&missing, &a).await,
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
    }
    for path in [
        format!("/api/jobs/{job}/cancel"),
        format!("/api/jobs/{job}/retry"),
        format!("/api/uploads/{media}/complete"),
    ] {
        assert_error(
            api.post(&path, &a, json!({})).await,
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
    }
    // Nor can A use B's media or project for a job of A's.
    let r = api
        .post(
            "/api/jobs",
            &a,
            json!({"job_type": "noop", "input_media_id": media}),
        )
        .await;
    assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = api
        .post(
            "/api/jobs",
            &a,
            json!({"job_type": "noop", "project_id": project}),
        )
        .await;
    assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
    let (_, list) = parts(api.get("/api/jobs", &a).await).await;
    assert_eq!(list["jobs"].as_array().unwrap().len(), 0, "{list}");

    // The admin reads all of it.
    for (path, _) in &reads {
        let r = api.get(path, &admin).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let _ = r.text().await;
    }
    let (_, list) = parts(api.get("/api/jobs", &admin).await).await;
    assert_eq!(list["jobs"][0]["id"], job, "{list}");
    // And B, of course.
    let (status, view) = parts(api.get(&format!("/api/jobs/{job}"), &b).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(view["status"], "completed");
}
