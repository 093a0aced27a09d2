//! Endpoints through the API: registered with a secret shown once, listed without it,
//! rotated, deleted; someone else's are not found; a loopback or private target is
//! refused unless the operator allows them.

use super::receiver::*;
use crate::api::{self, TestApi, assert_error, parts, signed_in};
use crate::harness::TestDb;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn endpoints_are_their_users_alone_and_show_their_secret_only_once() {
    let db = TestDb::new().await;
    let (api, _config, _dir) = api(&db).await;
    let (_, token) = signed_in(&api, &db, "user", 10).await;
    let (_, other) = signed_in(&api, &db, "user", 10).await;
    let (_, admin) = signed_in(&api, &db, "admin", 10).await;

    let (status, made) = parts(
        api.post(
            "/api/webhooks/endpoints",
            &token,
            json!({"url": "https://hooks.example.com/octavia",
                   "events": ["job.failed", "job.completed", "job.completed"]}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let id = made["id"].as_str().unwrap().to_string();
    let secret = made["secret"].as_str().unwrap();
    let key = octavia::webhooks::signature::decode_secret(secret).expect("whsec_<base64>");
    assert_eq!(key.len(), 32);
    assert_eq!(made["events"], json!(["job.completed", "job.failed"]));
    assert!(made["project_id"].is_null() && made["secret_rotated_at"].is_null());

    let (status, list) = parts(api.get("/api/webhooks/endpoints", &token).await).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let endpoints = list["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 1, "{list}");
    assert_eq!(endpoints[0]["id"], id);
    assert_eq!(endpoints[0]["url"], "https://hooks.example.com/octavia");
    assert!(endpoints[0].get("secret").is_none(), "{list}");
    assert!(!list.to_string().contains(&secret[6..]), "{list}");

    // Someone else's endpoint, even for an admin, is as good as none.
    for stranger in [&other, &admin] {
        let (_, theirs) = parts(api.get("/api/webhooks/endpoints", stranger).await).await;
        assert_eq!(theirs["endpoints"], json!([]));
        for (method, path) in [
            (Method::POST, format!("/api/webhooks/endpoints/{id}/rotate")),
            (
                Method::GET,
                format!("/api/webhooks/endpoints/{id}/deliveries"),
            ),
            (Method::DELETE, format!("/api/webhooks/endpoints/{id}")),
        ] {
            let r = api
                .request(method, &path, Some(stranger))
                .send()
                .await
                .unwrap();
            assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
        }
    }
    // Nor can an endpoint be scoped to someone else's project.
    let (_, project) = parts(
        api.post("/api/projects", &other, json!({"name": "theirs"}))
            .await,
    )
    .await;
    assert_error(
        api.post(
            "/api/webhooks/endpoints",
            &token,
            json!({"url": "https://hooks.example.com/", "events": ["job.completed"],
                   "project_id": project["id"]}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    let (status, rotated) = parts(
        api.post(
            &format!("/api/webhooks/endpoints/{id}/rotate"),
            &token,
            json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_ne!(rotated["secret"], made["secret"]);
    assert!(rotated["secret"].as_str().unwrap().starts_with("whsec_"));
    assert!(rotated["secret_rotated_at"].is_string());

    // An API key manages its user's endpoints too.
    let (status, key) = parts(
        api.post("/api/keys", &token, json!({"name": "server"}))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let key = key["key"].as_str().unwrap();
    let (status, by_key) = parts(api.get("/api/webhooks/endpoints", key).await).await;
    assert_eq!(status, StatusCode::OK, "{by_key}");
    assert_eq!(by_key["endpoints"].as_array().unwrap().len(), 1);

    let delete = || {
        api.request(
            Method::DELETE,
            &format!("/api/webhooks/endpoints/{id}"),
            Some(&token),
        )
        .send()
    };
    assert_eq!(delete().await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_error(delete().await.unwrap(), StatusCode::NOT_FOUND, "not_found").await;
    let (_, list) = parts(api.get("/api/webhooks/endpoints", &token).await).await;
    assert_eq!(list["endpoints"], json!([]));
}

/// `POST /api/webhooks/endpoints` of `url` as `token` on `api`.
async fn register_url(api: &TestApi, token: &str, url: &str) -> reqwest::Response {
    api.post(
        "/api/webhooks/endpoints",
        token,
        json!({"url": url, "events": ["job.completed"]}),
    )
    .await
}

#[tokio::test]
async fn a_loopback_or_private_target_is_refused_unless_allowed() {
    let db = TestDb::new().await;
    // The default: https to public addresses only.
    let (config, _dir) = api::config(&db);
    let strict = TestApi::start(config).await;
    let (_, token) = signed_in(&strict, &db, "user", 10).await;
    let receiver = Receiver::start(&[]).await;
    for url in [
        receiver.url.as_str(),
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://10.1.2.3/hook",
        "https://172.16.0.1/hook",
        "https://192.168.0.10/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://100.64.0.1/hook",
        "https://[fd00::1]/hook",
        "https://[fe80::1]/hook",
        "https://0.0.0.0/hook",
        "https://0x7f000001/hook",
        "http://hooks.example.com/hook",
        "ftp://hooks.example.com/hook",
        "not a url",
    ] {
        let body = assert_error(
            register_url(&strict, &token, url).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        )
        .await;
        assert!(
            !body["error"]["message"].as_str().unwrap().is_empty(),
            "{url}: {body}"
        );
    }
    let body = assert_error(
        register_url(&strict, &token, "https://127.0.0.1/hook").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
    )
    .await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("loopback") && message.contains("webhooks.allow_private_targets"),
        "{message}"
    );
    let r = strict
        .post(
            "/api/webhooks/endpoints",
            &token,
            json!({"url": "https://hooks.example.com/", "events": []}),
        )
        .await;
    assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid").await;
    let r = strict
        .post(
            "/api/webhooks/endpoints",
            &token,
            json!({"url": "https://hooks.example.com/", "events": ["job.started"]}),
        )
        .await;
    assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid").await;
    strict.stop().await;

    // Allowed by the operator, as for these tests' receivers.
    let (open, _config, _dir) = api(&db).await;
    let (_, token) = signed_in(&open, &db, "user", 10).await;
    for url in [
        receiver.url.as_str(),
        "http://localhost:9/hook",
        "https://10.1.2.3/",
    ] {
        let (status, made) = parts(register_url(&open, &token, url).await).await;
        assert_eq!(status, StatusCode::CREATED, "{url}: {made}");
    }
    let r = register_url(&open, &token, "ftp://127.0.0.1/").await;
    assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid").await;

    // A bounded number per user.
    for _ in 3..octavia::webhooks::MAX_ENDPOINTS_PER_USER {
        let (status, made) = parts(register_url(&open, &token, "https://10.1.2.3/").await).await;
        assert_eq!(status, StatusCode::CREATED, "{made}");
    }
    let body = assert_error(
        register_url(&open, &token, "https://10.1.2.3/").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
    )
    .await;
    assert!(body.to_string().contains("at most"), "{body}");
}
