//! Request limits: failed sign-ins per account and per address, and job creations per
//! user, answered 429 with Retry-After; counted in PostgreSQL, so shared by API processes.

use super::*;

async fn sign_in(api: &TestApi, email: &str, password: &str) -> Response {
    api.request(Method::POST, "/api/sessions", None)
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap()
}

/// Asserts a 429 with its Retry-After (whole seconds, 1 to `window`) and the error body;
/// returns (Retry-After, body).
async fn assert_throttled(r: Response, window: u64) -> (u64, Value) {
    let retry_after: u64 = r
        .headers()
        .get("retry-after")
        .expect("a 429 carries Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=window).contains(&retry_after), "{retry_after}");
    let body = assert_error(r, StatusCode::TOO_MANY_REQUESTS, "too_many_requests").await;
    (retry_after, body)
}

/// Ends every window now, as if its time had passed.
async fn end_windows(db: &TestDb) {
    let client = db.client().await;
    client
        .execute(
            "UPDATE request_limits SET window_end = now() - interval '1 second'",
            &[],
        )
        .await
        .unwrap();
}

/// The counters stored.
async fn rows(db: &TestDb) -> i64 {
    let client = db.client().await;
    client
        .query_one("SELECT count(*) FROM request_limits", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn the_31st_wrong_password_in_a_minute_and_then_the_right_one_get_429_and_no_other_account_does()
 {
    let db = TestDb::new().await;
    let (config, _dir) = config(&db);
    assert_eq!(config.api.sign_in_failures_per_account, 30, "the default");
    assert_eq!(config.api.sign_in_window_seconds, 60, "the default");
    let api = TestApi::start(config).await;
    let (_, email, password) = user(&db, "user", 0).await;
    let (_, other, other_password) = user(&db, "user", 0).await;

    for _ in 0..30 {
        let r = sign_in(&api, &email, "wrong password").await;
        assert_error(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    let (_, body) = assert_throttled(sign_in(&api, &email, "wrong password").await, 60).await;
    assert!(
        !body.to_string().contains(&email),
        "the answer does not name the account: {body}"
    );
    // Locked: the right password too, and in another spelling of the address.
    assert_throttled(sign_in(&api, &email, &password).await, 60).await;
    assert_throttled(sign_in(&api, &email.to_uppercase(), &password).await, 60).await;
    // Another account is not affected.
    api.login(&other, &other_password).await;

    // Once the window has passed, the right password signs in.
    end_windows(&db).await;
    api.login(&email, &password).await;
    // A sign-in before the limit clears the count: 29 failures, a success, then 30 more
    // before the next 429.
    for _ in 0..29 {
        let r = sign_in(&api, &email, "wrong password").await;
        assert_error(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    api.login(&email, &password).await;
    for _ in 0..30 {
        let r = sign_in(&api, &email, "wrong password").await;
        assert_error(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    assert_throttled(sign_in(&api, &email, "wrong password").await, 60).await;
}

#[tokio::test]
async fn an_unknown_email_is_throttled_exactly_like_a_known_one() {
    let db = TestDb::new().await;
    let (config, _dir) = config(&db);
    let api = TestApi::start(config).await;
    let (_, known, _) = user(&db, "user", 0).await;
    let unknown = format!("nobody-{}@example.com", Uuid::new_v4().simple());

    let mut answers = Vec::new();
    for email in [&known, &unknown] {
        let mut statuses = Vec::new();
        let mut bodies = Vec::new();
        for _ in 0..32 {
            let r = sign_in(&api, email, "wrong password").await;
            let retry_after = r.headers().get("retry-after").is_some();
            let (status, body) = parts(r).await;
            statuses.push((status, retry_after));
            bodies.push(body);
        }
        answers.push((statuses, bodies));
    }
    let (known_statuses, known_bodies) = &answers[0];
    assert_eq!(known_statuses[29], (StatusCode::UNAUTHORIZED, false));
    assert_eq!(known_statuses[30], (StatusCode::TOO_MANY_REQUESTS, true));
    assert_eq!(answers[0], answers[1], "the same answers, word for word");
    assert_eq!(known_bodies[31]["error"]["code"], "too_many_requests");

    // Neither address is stored readable.
    let client = db.client().await;
    let keys: Vec<String> = client
        .query("SELECT key FROM request_limits", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for key in &keys {
        assert!(!key.contains("example.com"), "{keys:?}");
    }
    assert!(keys.contains(&octavia::api::limits::account_key(&unknown)));
}

#[tokio::test]
async fn failures_from_one_address_are_limited_whatever_the_accounts_and_successes_do_not_count() {
    let db = TestDb::new().await;
    let (mut config, _dir) = config(&db);
    config.api.sign_in_failures_per_ip = 5;
    let api = TestApi::start(config).await;
    let (_, email, password) = user(&db, "user", 0).await;

    // Successes take their attempt back from the address's count.
    for _ in 0..8 {
        api.login(&email, &password).await;
    }
    for _ in 0..5 {
        let nobody = format!("{}@example.com", Uuid::new_v4().simple());
        let r = sign_in(&api, &nobody, "wrong password").await;
        assert_error(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    // The sixth is refused whoever it is for, with the answer an account's lock gives.
    let (_, body) = assert_throttled(sign_in(&api, &email, &password).await, 60).await;
    assert_eq!(
        body["error"]["message"],
        "too many failed sign-ins; wait before trying again"
    );
    end_windows(&db).await;
    api.login(&email, &password).await;
}

#[tokio::test]
async fn the_limits_are_shared_by_two_api_processes_and_end_with_their_window() {
    let db = TestDb::new().await;
    let (mut config, _dir) = config(&db);
    config.api.sign_in_failures_per_account = 4;
    // Long enough for the attempts below to fall in one window on a loaded machine, where
    // each argon2 check may take a second.
    config.api.sign_in_window_seconds = 8;
    let a = TestApi::start(config.clone()).await;
    let b = TestApi::start(config).await;
    let (_, email, password) = user(&db, "user", 0).await;

    for api in [&a, &b, &a, &b] {
        let r = sign_in(api, &email, "wrong password").await;
        assert_error(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    assert_throttled(sign_in(&a, &email, &password).await, 8).await;
    let (retry_after, _) = assert_throttled(sign_in(&b, &email, &password).await, 8).await;
    // Waiting as long as Retry-After says is enough, on either process.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    b.login(&email, &password).await;
    a.login(&email, &password).await;
}

#[tokio::test]
async fn job_creations_past_the_rate_get_429_and_other_users_are_not_affected() {
    let db = TestDb::new().await;
    let (mut config, _dir) = config(&db);
    config.api.job_creations_per_minute = 3;
    let api = TestApi::start(config.clone()).await;
    let second = TestApi::start(config).await;
    let (_, token) = signed_in(&api, &db, "user", 100).await;
    let (_, other) = signed_in(&api, &db, "user", 100).await;
    let noop = json!({"job_type": "noop"});

    for api in [&api, &second, &api] {
        let (status, body) = parts(api.post("/api/jobs", &token, noop.clone()).await).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (_, body) = assert_throttled(api.post("/api/jobs", &token, noop.clone()).await, 60).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("more than 3 job creations in a minute"),
        "{body}"
    );
    // An idempotent retry counts as a request too, and nothing was created by the 429s.
    let r = second
        .request(Method::POST, "/api/jobs", Some(&token))
        .header("idempotency-key", "k")
        .json(&noop)
        .send()
        .await
        .unwrap();
    assert_throttled(r, 60).await;
    let client = db.client().await;
    let jobs: i64 = client
        .query_one("SELECT count(*) FROM jobs", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(jobs, 3);

    let (status, body) = parts(api.post("/api/jobs", &other, noop.clone()).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    end_windows(&db).await;
    let (status, body) = parts(api.post("/api/jobs", &token, noop).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn ended_windows_are_pruned_and_429_is_documented() {
    let db = TestDb::new().await;
    let (config, _dir) = config(&db);
    let api = TestApi::start(config).await;
    let client = db.client().await;
    client
        .execute(
            "INSERT INTO request_limits (kind, key, window_end, hits)
             SELECT 'sign_in_ip', 'stale-' || i, now() - interval '1 hour', 7
             FROM generate_series(1, 20) AS i",
            &[],
        )
        .await
        .unwrap();
    // An attempt that opens windows (the account's and the address's) prunes 16.
    let r = sign_in(&api, "someone@example.com", "wrong password").await;
    assert_error(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert_eq!(rows(&db).await, 2 + 4);
    // One that only counts in an open window does not.
    let r = sign_in(&api, "someone@example.com", "wrong password").await;
    assert_error(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert_eq!(rows(&db).await, 2 + 4);

    let doc = serde_json::to_value(octavia::api::document()).unwrap();
    for (path, method) in [("/api/sessions", "post"), ("/api/jobs", "post")] {
        let answer = &doc["paths"][path][method]["responses"]["429"];
        assert!(
            answer["headers"]["Retry-After"].is_object(),
            "{path}: {answer}"
        );
        assert!(
            answer["content"]["application/json"]["schema"]["$ref"]
                .as_str()
                .is_some_and(|r| r.ends_with("/ErrorBody")),
            "{path}: {answer}"
        );
    }
}
