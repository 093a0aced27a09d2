//! Polar webhooks, signed by an independent implementation: the `standardwebhooks`
//! package from PyPI, pinned in requirements/api-tests.txt and run with the Python of
//! .venv-api-tests, where bin/deps installs it.

use super::*;
use crate::support::assert_ledger_balances;
use std::process::Command;

/// A secret in Standard Webhooks' form.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const PRODUCT: &str = "a1b2c3d4-0000-4000-8000-000000000001";
const INSTALL: &str = "bin/deps";

/// The three headers standardwebhooks' `Webhook.sign` gives `body` at `timestamp`.
fn sign(id: &str, timestamp: i64, body: &str) -> [(String, String); 3] {
    let script = "import sys, datetime\n\
        from standardwebhooks.webhooks import Webhook\n\
        ts = datetime.datetime.fromtimestamp(int(sys.argv[3]), tz=datetime.timezone.utc)\n\
        print(Webhook(sys.argv[1]).sign(sys.argv[2], ts, sys.stdin.read()))\n";
    let python = api_tests_python();
    let mut child = Command::new(&python)
        .args(["-c", script, SECRET, id, &timestamp.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{} does not run ({e}): run `{INSTALL}`", python.display()));
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the standardwebhooks package of {} signs the test webhooks; run `{INSTALL}`: {}",
        python.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let signature = String::from_utf8(out.stdout).unwrap().trim().to_string();
    [
        ("webhook-id".into(), id.into()),
        ("webhook-timestamp".into(), timestamp.to_string()),
        ("webhook-signature".into(), signature),
    ]
}

async fn deliver(api: &TestApi, headers: &[(String, String)], body: &str) -> Response {
    let mut r = api
        .request(Method::POST, "/api/webhooks/polar", None)
        .header("content-type", "application/json")
        .body(body.to_string());
    for (k, v) in headers {
        r = r.header(k, v);
    }
    r.send().await.unwrap()
}

fn order(event: &str, order_id: &str, status: &str, email: &str, product: &str) -> String {
    json!({
        "type": event,
        "timestamp": "2025-01-01T00:00:00Z",
        "data": {
            "id": order_id,
            "status": status,
            "paid": status == "paid",
            "total_amount": 1900,
            "currency": "usd",
            "product_id": product,
            "customer": {"id": "cus_1", "email": email, "external_id": null},
            "metadata": {}
        }
    })
    .to_string()
}

async fn transactions(db: &TestDb) -> Vec<(String, String, Option<i64>)> {
    let client = db.client().await;
    client
        .query(
            "SELECT provider_payment_id, status::text, credits_bought FROM transactions ORDER BY created_at",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

#[tokio::test]
async fn a_paid_order_credits_once_however_often_it_is_delivered() {
    let db = TestDb::new().await;
    let (mut config, _dir) = config(&db);
    config.polar.webhook_secret = SECRET.into();
    config.polar.products = format!("{PRODUCT}=500, other=5");
    let api = TestApi::start(config).await;
    let (user, email, _) = user(&db, "user", 0).await;
    let now = chrono::Utc::now().timestamp();

    // Created (pending): recorded, nothing credited.
    let created = order("order.created", "ord_1", "pending", &email, PRODUCT);
    let r = deliver(&api, &sign("msg_1", now, &created), &created).await;
    let (status, body) = parts(r).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "recorded");
    assert_eq!(balance(&db, user).await, (0, 0));

    // Paid: credited.
    let paid = order("order.paid", "ord_1", "paid", &email, PRODUCT);
    let headers = sign("msg_2", now, &paid);
    let (status, body) = parts(deliver(&api, &headers, &paid).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "credited");
    assert_eq!(body["credits"], 500);
    assert_eq!(balance(&db, user).await, (500, 500));

    // The same delivery again, a new delivery of the same event, and concurrent ones:
    // nothing more.
    let (status, body) = parts(deliver(&api, &headers, &paid).await).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("already_credited"))
    );
    let api = std::sync::Arc::new(api);
    let mut tasks = Vec::new();
    for i in 0..10 {
        let (api, paid) = (api.clone(), paid.clone());
        let headers = sign(&format!("msg_retry_{i}"), now, &paid);
        tasks.push(tokio::spawn(async move {
            deliver(&api, &headers, &paid).await.status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(balance(&db, user).await, (500, 500));
    assert_eq!(
        transactions(&db).await,
        vec![("ord_1".into(), "succeeded".into(), Some(500))]
    );
    let client = db.client().await;
    let row = client
        .query_one(
            "SELECT webhook_payload, amount_cents, user_id FROM transactions",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        row.get::<_, Value>(0)["data"]["id"],
        "ord_1",
        "raw payload kept"
    );
    assert_eq!(row.get::<_, Option<i64>>(1), Some(1900));
    assert_eq!(row.get::<_, Option<Uuid>>(2), Some(user));

    // A second order is a second purchase; the customer's external_id names the user.
    let mut second: Value =
        serde_json::from_str(&order("order.paid", "ord_2", "paid", "x@y.z", "other")).unwrap();
    second["data"]["customer"]["external_id"] = json!(user.to_string());
    let second = second.to_string();
    let (status, body) = parts(deliver(&api, &sign("msg_3", now, &second), &second).await).await;
    assert_eq!(
        (status, body["credits"].as_i64()),
        (StatusCode::OK, Some(5)),
        "{body}"
    );
    assert_eq!(balance(&db, user).await, (505, 505));

    // An unknown product is recorded, not credited; an event of another kind is ignored.
    let unknown = order("order.paid", "ord_3", "paid", &email, "mystery");
    let (status, body) = parts(deliver(&api, &sign("msg_4", now, &unknown), &unknown).await).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::ACCEPTED, Some("recorded"))
    );
    let other = json!({"type": "subscription.created", "data": {"id": "sub_1"}}).to_string();
    let (status, body) = parts(deliver(&api, &sign("msg_5", now, &other), &other).await).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::ACCEPTED, Some("ignored"))
    );
    assert_eq!(balance(&db, user).await, (505, 505));
    let client = db.client().await;
    let purchases: i64 = client
        .query_one(
            "SELECT count(*) FROM credits_history WHERE reason = 'purchase'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(purchases, 2);
    assert_ledger_balances(&db).await;
}

#[tokio::test]
async fn bad_signatures_stale_timestamps_and_malformed_bodies_change_nothing() {
    let db = TestDb::new().await;
    let (mut config, _dir) = config(&db);
    config.polar.webhook_secret = SECRET.into();
    config.polar.products = format!("{PRODUCT}=500");
    config.polar.timestamp_tolerance_seconds = 300;
    let api = TestApi::start(config).await;
    let (user, email, _) = user(&db, "user", 0).await;
    let now = chrono::Utc::now().timestamp();
    let paid = order("order.paid", "ord_1", "paid", &email, PRODUCT);

    // Signed for another body, another id, or with another secret.
    let good = sign("msg_1", now, &paid);
    let tampered = paid.replace("1900", "1");
    assert_error(
        deliver(&api, &good, &tampered).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    let mut other_id = good.clone();
    other_id[0].1 = "msg_2".into();
    assert_error(
        deliver(&api, &other_id, &paid).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    let mut garbage = good.clone();
    garbage[2].1 = "v1,AAAA v2,whatever nonsense".into();
    assert_error(
        deliver(&api, &garbage, &paid).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;

    // Correctly signed, but too old or too far ahead.
    for ts in [now - 301, now - 3600, now + 600] {
        let stale = sign("msg_3", ts, &paid);
        let body = assert_error(
            deliver(&api, &stale, &paid).await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        )
        .await;
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("timestamp"),
            "{body}"
        );
    }

    // Missing headers; signed bodies that are not JSON or not an order.
    assert_error(
        deliver(&api, &good[..2], &paid).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    let not_json = "{\"type\": \"order.paid\", ";
    assert_error(
        deliver(&api, &sign("msg_4", now, not_json), not_json).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    let no_order = json!({"type": "order.paid", "data": {"status": "paid"}}).to_string();
    assert_error(
        deliver(&api, &sign("msg_5", now, &no_order), &no_order).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
    )
    .await;

    assert_eq!(balance(&db, user).await, (0, 0));
    assert!(transactions(&db).await.is_empty(), "nothing recorded");

    // Without a configured secret every delivery is refused.
    let (config, _dir2) = super::config(&db);
    let unconfigured = TestApi::start(config).await;
    assert_error(
        deliver(&unconfigured, &good, &paid).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
    )
    .await;
    assert_eq!(balance(&db, user).await, (0, 0));
    // The valid delivery still works afterwards.
    assert_eq!(deliver(&api, &good, &paid).await.status(), StatusCode::OK);
    assert_eq!(balance(&db, user).await, (500, 500));
}
