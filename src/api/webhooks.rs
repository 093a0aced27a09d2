//! `POST /api/webhooks/polar`: Polar.sh payments, credited exactly once.
//!
//! Deliveries are signed by the Standard Webhooks scheme Polar uses: `webhook-signature`
//! holds `v1,<base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}">` entries
//! (several during a secret rotation), keyed with `polar.webhook_secret`
//! ([`crate::webhooks::signature`], which also signs Octavia's own webhooks). A delivery whose
//! timestamp is more than `polar.timestamp_tolerance_seconds` from now is refused, so a
//! captured request cannot be replayed later.
//!
//! Polar sends `{"type": "order.paid", "data": <Order>}`. An order event is recorded in
//! `transactions` by `(provider, provider_payment_id)` with its raw payload; when the order
//! is paid, its user and product known, the same transaction marks it succeeded and
//! credits the user (`credits_history` `purchase`), which happens once per order however
//! many times, or how concurrently, the webhook is delivered: see
//! `sql/upsert_transaction.sql`. The user is the order's `customer.external_id` (set it to
//! the Octavia user id when creating the checkout), else the user with the customer's
//! email; credits come from `polar.products`.

use super::error::{ApiError, ErrorBody};
use super::state::ApiState;
use crate::webhooks::signature;
use crate::{credits, db, sql, users};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

/// The `provider` of Polar's transactions.
const PROVIDER: &str = "polar";

/// What became of a delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookOutcome {
    /// `credited` (this delivery credited the order), `already_credited` (an earlier one
    /// did), `recorded` (stored, nothing credited: not paid yet, or an unknown user or
    /// product), or `ignored` (not an order event).
    pub status: String,
    pub transaction_id: Option<Uuid>,
    pub credits: Option<i64>,
}

/// Checks a delivery's signature and timestamp (unix seconds) against `now`.
pub fn verify(
    key: &[u8],
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
    tolerance: u64,
) -> Result<(), ApiError> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ApiError::BadRequest(format!("the {name} header is missing")))
    };
    let id = header("webhook-id")?;
    let timestamp = header("webhook-timestamp")?;
    let signatures = header("webhook-signature")?;
    let valid = signature::verify(key, id, timestamp, body, signatures);
    if !valid {
        return Err(ApiError::Unauthorized(
            "the webhook signature is not valid".into(),
        ));
    }
    // Checked after the signature: only the holder of the secret learns about timing.
    let at: i64 = timestamp
        .parse()
        .map_err(|_| ApiError::BadRequest("webhook-timestamp is not unix seconds".into()))?;
    if now.abs_diff(at) > tolerance {
        return Err(ApiError::Unauthorized(format!(
            "the webhook timestamp is more than {tolerance} s from now: refusing a stale or replayed delivery"
        )));
    }
    Ok(())
}

/// What an order event says, as far as crediting goes.
struct Order<'a> {
    id: &'a str,
    paid: bool,
    product: Option<&'a str>,
    external_id: Option<&'a str>,
    email: Option<&'a str>,
    amount_cents: Option<i64>,
}

fn order<'a>(event_type: &str, data: &'a Value) -> Result<Order<'a>, ApiError> {
    let id = data["id"]
        .as_str()
        .filter(|id| !id.is_empty() && id.len() <= 200 && !id.contains('\0'))
        .ok_or_else(|| ApiError::Invalid("the order has no id".into()))?;
    let status = data["status"].as_str();
    Ok(Order {
        id,
        // order.paid is sent once the payment went through; other order events carry the
        // status (pending, paid, refunded...), and only `paid` buys credits.
        paid: status == Some("paid") || (event_type == "order.paid" && status.is_none()),
        product: data["product_id"]
            .as_str()
            .or_else(|| data["product"]["id"].as_str()),
        external_id: data["customer"]["external_id"].as_str(),
        email: data["customer"]["email"].as_str(),
        amount_cents: data["total_amount"].as_i64(),
    })
}

/// Receive a Polar.sh webhook delivery (Standard Webhooks signature).
#[utoipa::path(
    post,
    operation_id = "receivePolarWebhook",
    path = "/api/webhooks/polar",
    tag = "payments",
    request_body(content = Object, description = "Polar's event: {\"type\", \"data\"}"),
    params(
        ("webhook-id" = String, Header, description = "The delivery's id"),
        ("webhook-timestamp" = String, Header, description = "Unix seconds"),
        ("webhook-signature" = String, Header, description = "v1,<base64 HMAC-SHA256>"),
    ),
    responses(
        (status = 200, description = "Processed", body = WebhookOutcome),
        (status = 202, description = "Recorded or ignored, nothing credited", body = WebhookOutcome),
        (status = 400, description = "Missing headers or a body that is not JSON", body = ErrorBody),
        (status = 401, description = "Bad signature or stale timestamp", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 422, description = "An order event without an order", body = ErrorBody),
        (status = 503, description = "polar.webhook_secret is not configured", body = ErrorBody),
    ),
    security(())
)]
pub async fn polar(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, axum::Json<WebhookOutcome>), ApiError> {
    let config = &state.config.polar;
    let key = config.signing_key().ok_or_else(|| {
        ApiError::Unavailable("polar.webhook_secret is not set: refusing every delivery".into())
    })?;
    verify(
        &key,
        &headers,
        &body,
        chrono::Utc::now().timestamp(),
        config.timestamp_tolerance_seconds,
    )?;
    let payload: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not JSON: {e}")))?;
    let event_type = payload["type"].as_str().unwrap_or_default();
    if !matches!(event_type, "order.created" | "order.paid" | "order.updated") {
        return Ok((
            StatusCode::ACCEPTED,
            axum::Json(WebhookOutcome {
                status: "ignored".into(),
                transaction_id: None,
                credits: None,
            }),
        ));
    }
    super::error::check_json("the payload", &payload)?;
    let order = order(event_type, &payload["data"])?;

    let mut client = state.pool.get().await?;
    let user_id = match order.external_id.and_then(|id| id.parse::<Uuid>().ok()) {
        Some(id) => db::query_opt(&client, sql::USER_BY_ID, &[&id])
            .await?
            .map(|r| r.get::<_, Uuid>("id")),
        None => None,
    };
    let user_id = match (user_id, order.email) {
        (Some(id), _) => Some(id),
        (None, Some(email)) => users::by_email(&client, email).await?.map(|u| u.id),
        (None, None) => None,
    };
    let credits = order.product.and_then(|p| config.credits_for(p));

    let tx = client.transaction().await?;
    let row = db::query_opt(
        &tx,
        sql::UPSERT_TRANSACTION,
        &[
            &PROVIDER,
            &order.id,
            &user_id,
            &order.amount_cents,
            &credits,
            &payload,
        ],
    )
    .await?
    .ok_or_else(|| ApiError::Internal("upsert returned no row".into()))?;
    let transaction_id: Uuid = row.get("id");
    let was: String = row.get("status");
    let mut outcome = WebhookOutcome {
        status: "recorded".into(),
        transaction_id: Some(transaction_id),
        credits: None,
    };
    if was == "succeeded" {
        outcome.status = "already_credited".into();
    } else if order.paid
        && let Some(settled) =
            db::query_opt(&tx, sql::SETTLE_TRANSACTION, &[&transaction_id]).await?
    {
        let (user, amount): (Uuid, i64) = (settled.get("user_id"), settled.get("credits_bought"));
        credits::credit(&tx, user, amount, credits::PURCHASE).await?;
        tracing::info!(user.id = %user, credits = amount, order = order.id, "purchase credited");
        outcome.status = "credited".into();
        outcome.credits = Some(amount);
    }
    tx.commit().await?;
    if outcome.status == "recorded" && order.paid {
        tracing::warn!(
            order = order.id,
            user_known = user_id.is_some(),
            product = order.product.unwrap_or_default(),
            "paid order recorded but not credited: unknown user or product (see polar.products)"
        );
    }
    let status = if outcome.status == "recorded" {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(outcome)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(id: &str, ts: &str, sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("webhook-id", id.parse().unwrap());
        h.insert("webhook-timestamp", ts.parse().unwrap());
        h.insert("webhook-signature", sig.parse().unwrap());
        h
    }

    /// The example of the Standard Webhooks specification's test suite: secret
    /// `whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw`, id `msg_p5jXN8AQM9LWM0D4loKWxJek`,
    /// timestamp 1614265330, body `{"test": 2432232314}`.
    #[test]
    fn verifies_the_specification_example() {
        let key = signature::decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let good = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        let h = headers("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", good);
        assert!(verify(&key, &h, body, 1614265330, 300).is_ok());
        let rotated = format!("v1,bm9wZQ== {good}");
        let h2 = headers("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", &rotated);
        assert!(verify(&key, &h2, body, 1614265330, 300).is_ok());
        assert!(matches!(
            verify(&key, &h, body, 1614265330 + 301, 300),
            Err(ApiError::Unauthorized(_))
        ));
        assert!(matches!(
            verify(&key, &h, br#"{"test": 2432232315}"#, 1614265330, 300),
            Err(ApiError::Unauthorized(_))
        ));
        let other_id = headers("msg_other", "1614265330", good);
        assert!(verify(&key, &other_id, body, 1614265330, 300).is_err());
        assert!(matches!(
            verify(&key, &HeaderMap::new(), body, 1614265330, 300),
            Err(ApiError::BadRequest(_))
        ));
    }
}
