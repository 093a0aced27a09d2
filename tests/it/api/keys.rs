//! API keys: made by a signed-in user, shown once, used as a bearer token, listed without
//! the key, revoked and expired; the raw key is never in the database or the logs.

use super::*;
use std::io::BufRead;
use std::sync::{Arc, Mutex};

/// `POST /api/keys` as `token`; returns the status and body.
async fn make_key(api: &TestApi, token: &str, body: Value) -> (StatusCode, Value) {
    parts(api.post("/api/keys", token, body).await).await
}

#[tokio::test]
async fn a_key_authenticates_like_a_session_until_it_is_revoked_and_cannot_make_keys() {
    let db = TestDb::new().await;
    let (mut config, _dir) = config(&db);
    config.pricing.noop = 1;
    let api = TestApi::start(config).await;
    let (user, token) = signed_in(&api, &db, "user", 10).await;
    let (_, other) = signed_in(&api, &db, "user", 10).await;

    let (status, made) = make_key(&api, &token, json!({"name": "render farm"})).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let key = made["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("octk_") && key.len() == 48, "{key}");
    assert_eq!(made["prefix"], &key[..11]);
    assert_eq!(made["name"], "render farm");
    assert!(made["expires_at"].is_null() && made["last_used_at"].is_null());
    let id = made["id"].as_str().unwrap().to_string();

    // It acts as its user: reads the account, creates a job.
    let (status, me) = parts(api.get("/api/me", &key).await).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["id"], user.to_string());
    let (status, job) = parts(
        api.post("/api/jobs", &key, json!({"job_type": "noop"}))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{job}");

    // It cannot manage keys or sessions: a leaked key cannot mint others.
    assert_error(
        api.post("/api/keys", &key, json!({"name": "another"}))
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_error(
        api.get("/api/keys", &key).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let r = api
        .request(Method::DELETE, "/api/sessions/current", Some(&key))
        .send()
        .await
        .unwrap();
    assert_error(r, StatusCode::FORBIDDEN, "forbidden").await;

    // Listed to its owner without the key, with its first use; not to anyone else.
    let (status, list) = parts(api.get("/api/keys", &token).await).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let keys = list["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{list}");
    assert_eq!(keys[0]["id"], id);
    assert!(keys[0].get("key").is_none(), "{list}");
    assert!(keys[0]["last_used_at"].is_string(), "{list}");
    let (_, theirs) = parts(api.get("/api/keys", &other).await).await;
    assert_eq!(theirs["keys"], json!([]));
    let delete = |token: &str| {
        api.request(Method::DELETE, &format!("/api/keys/{id}"), Some(token))
            .send()
    };
    assert_error(
        delete(&other).await.unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    // Revoked: the next request with it is refused; revoking again finds nothing.
    assert_eq!(
        delete(&token).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert_error(
        api.get("/api/me", &key).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    assert_error(
        delete(&token).await.unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    // A key of the right shape that was never made, and a session token with its prefix.
    let forged = format!("octk_{}", &token);
    assert_error(
        api.get("/api/me", &forged).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
}

#[tokio::test]
async fn an_expired_key_is_refused_and_an_expiry_must_be_in_the_future() {
    let db = TestDb::new().await;
    let (config, _dir) = config(&db);
    let api = TestApi::start(config).await;
    let (_, token) = signed_in(&api, &db, "user", 0).await;
    let past = (chrono::Utc::now() - chrono::Duration::seconds(1)).to_rfc3339();
    let (status, body) = make_key(&api, &token, json!({"name": "old", "expires_at": past})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    for name in ["", "   ", &"x".repeat(201)] {
        let (status, body) = make_key(&api, &token, json!({ "name": name })).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name:?}: {body}");
    }

    let soon = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let (status, made) = make_key(&api, &token, json!({"name": "ci", "expires_at": soon})).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let key = made["key"].as_str().unwrap();
    assert_eq!(api.get("/api/me", key).await.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_error(
        api.get("/api/me", key).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    // Still listed, with the expiry that ended it.
    let (_, list) = parts(api.get("/api/keys", &token).await).await;
    assert_eq!(list["keys"][0]["id"], made["id"], "{list}");
    assert!(list["keys"][0]["expires_at"].is_string(), "{list}");
}

#[tokio::test]
async fn the_raw_key_is_never_in_the_database_or_the_logs() {
    let db = TestDb::new().await;
    let store = tempfile::tempdir().unwrap();
    let port = octavia_dev::process::free_port().unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let mut process = crate::support::Process::from(
        std::process::Command::new(env!("CARGO_BIN_EXE_octavia-api"))
            .args(["--no-migrate", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--public-url", &url])
            .args([
                "--set",
                &format!("storage.local_dir={}", store.path().display()),
            ])
            .args(["--set", &format!("storage.signing_secret={SIGNING_SECRET}")])
            .env("DATABASE_URL", &db.url)
            // Everything the API logs, including tower-http's request and response lines.
            .env("RUST_LOG", "trace,tokio_postgres=info,hyper=info,h2=info")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("octavia-api runs"),
    );
    let logs = Arc::new(Mutex::new(Vec::<String>::new()));
    let lines = logs.clone();
    let stderr = process.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            lines.lock().unwrap().push(line);
        }
    });
    let api = TestApi::remote(url);
    crate::support::wait_for(30, "octavia-api to serve", || async {
        let r = api.http.get(format!("{}/healthz", api.url)).send().await;
        r.is_ok_and(|r| r.status().is_success()).then_some(())
    })
    .await;
    let (_, email, password) = user(&db, "user", 0).await;
    let token = api.login(&email, &password).await;
    let (status, made) = make_key(&api, &token, json!({"name": "deploy bot"})).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let key = made["key"].as_str().unwrap().to_string();
    assert_eq!(api.get("/api/me", &key).await.status(), StatusCode::OK);
    assert_eq!(
        api.get("/api/nowhere", &key).await.status(),
        StatusCode::NOT_FOUND
    );

    // Every row of every table, as text: the key, or its random part, is in none.
    let client = db.client().await;
    let tables = client
        .query(
            "SELECT quote_ident(table_name) FROM information_schema.tables \
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
            &[],
        )
        .await
        .unwrap();
    assert!(tables.len() > 10);
    let random = &key["octk_".len()..];
    for table in &tables {
        let table: String = table.get(0);
        let found: i64 = client
            .query_one(
                &format!("SELECT count(*) FROM {table} t WHERE t::text LIKE '%' || $1 || '%'"),
                &[&random],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(found, 0, "the key is in {table}");
    }
    let stored: i64 = client
        .query_one(
            "SELECT count(*) FROM api_keys WHERE prefix = $1",
            &[&&key[..11]],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 1, "the key's row is there, by its prefix");

    drop(process);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let logged = logs.lock().unwrap().join("\n");
    assert!(
        logged.contains("/api/me"),
        "the API logged its requests:\n{logged}"
    );
    assert!(
        !logged.contains(random),
        "the key is in the logs:\n{logged}"
    );
}
