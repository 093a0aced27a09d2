//! The statements that move webhook deliveries: claim, record an attempt's outcome, prune
//! the history. The rows are written by the trigger of migration V13 when a job ends.

use crate::config::WebhooksConfig;
use crate::db::{self, Session};
use crate::error::Result;
use crate::sql;
use chrono::{DateTime, Utc};
use rand::RngExt;
use serde_json::{Value, json};
use std::time::Duration;
use tokio_postgres::Row;
use uuid::Uuid;

/// A delivery leased to this worker, with what its attempt needs.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The delivery's id: the `webhook-id` of every attempt.
    pub id: Uuid,
    /// This attempt's number, from 1: the fence of its outcome's write.
    pub attempt: i32,
    pub event: String,
    /// The job as it was when the event happened.
    pub data: Value,
    /// When the event happened.
    pub created_at: DateTime<Utc>,
    pub job_id: Uuid,
    pub endpoint_id: Uuid,
    pub url: String,
    /// The keys to sign with: the endpoint's, then the one it replaced while that still
    /// signs after a rotation.
    pub keys: Vec<Vec<u8>>,
}

impl Claimed {
    fn from_row(row: &Row) -> Claimed {
        let mut keys = vec![row.get::<_, Vec<u8>>("secret")];
        if let Some(previous) = row.get::<_, Option<Vec<u8>>>("previous_secret") {
            keys.push(previous);
        }
        Claimed {
            id: row.get("id"),
            attempt: row.get("attempts"),
            event: row.get("event"),
            data: row.get("data"),
            created_at: row.get("created_at"),
            job_id: row.get("job_id"),
            endpoint_id: row.get("endpoint_id"),
            url: row.get("url"),
            keys,
        }
    }

    /// The request body: `{"type", "timestamp", "data"}`, the same at every attempt (the
    /// timestamp is the event's; each attempt's own is its `webhook-timestamp` header).
    pub fn body(&self) -> Vec<u8> {
        let payload = json!({
            "type": self.event,
            "timestamp": self.created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "data": self.data,
        });
        serde_json::to_vec(&payload).expect("a JSON value serialises")
    }
}

/// Leases up to `n` due deliveries to `worker_id` for `lease`.
pub async fn claim<C: Session>(
    client: &C,
    worker_id: &str,
    n: i64,
    lease: Duration,
) -> Result<Vec<Claimed>> {
    let rows = db::query(
        client,
        sql::WEBHOOK_CLAIM_DELIVERIES,
        &[&worker_id, &n, &lease.as_secs_f64()],
    )
    .await?;
    Ok(rows.iter().map(Claimed::from_row).collect())
}

/// Records that `attempt` of `id` was accepted with HTTP `status`; false when the lease
/// was lost meanwhile (another worker holds the delivery now).
pub async fn delivered<C: Session>(
    client: &C,
    id: Uuid,
    attempt: i32,
    status: i32,
) -> Result<bool> {
    let row = db::query_opt(client, sql::WEBHOOK_DELIVERED, &[&id, &attempt, &status]).await?;
    Ok(row.is_some())
}

/// Records that `attempt` of `id` failed (HTTP `status`, if there was an answer, and
/// why), to be attempted again after the backoff of `config`, or given up. Returns the
/// delivery's status after it (`pending` or `failed`), `None` when the lease was lost.
pub async fn failed<C: Session>(
    client: &C,
    config: &WebhooksConfig,
    id: Uuid,
    attempt: i32,
    status: Option<i32>,
    error: &str,
) -> Result<Option<String>> {
    let retry_in = backoff(config, attempt).as_secs_f64();
    let retry_for = config.retry_for_seconds as f64;
    let row = db::query_opt(
        client,
        sql::WEBHOOK_ATTEMPT_FAILED,
        &[&id, &attempt, &status, &error, &retry_in, &retry_for],
    )
    .await?;
    Ok(row.map(|r| r.get("status")))
}

/// Deletes up to `n` finished deliveries older than `webhooks.history_seconds`; returns
/// how many.
pub async fn prune<C: Session>(client: &C, config: &WebhooksConfig, n: i64) -> Result<i64> {
    let older_than = config.history_seconds as f64;
    let row = db::query_opt(client, sql::WEBHOOK_PRUNE_DELIVERIES, &[&older_than, &n]).await?;
    Ok(row.map_or(0, |r| r.get("pruned")))
}

/// The wait after failed attempt `attempt` (from 1): `backoff_initial_ms` doubled at each
/// further attempt, at most `backoff_max_seconds`, give or take a fifth so the retries of
/// many deliveries to one receiver that was down spread out.
pub fn backoff(config: &WebhooksConfig, attempt: i32) -> Duration {
    let doublings = attempt.saturating_sub(1).clamp(0, 40) as u32;
    let ms = config
        .backoff_initial_ms
        .saturating_mul(1u64 << doublings)
        .min(config.backoff_max_seconds.saturating_mul(1000));
    Duration::from_millis(ms).mul_f64(rand::rng().random_range(0.8..=1.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_ceiling() {
        let config = WebhooksConfig {
            backoff_initial_ms: 1000,
            backoff_max_seconds: 60,
            ..WebhooksConfig::default()
        };
        for (attempt, base) in [
            (1, 1.0),
            (2, 2.0),
            (3, 4.0),
            (6, 32.0),
            (7, 60.0),
            (500, 60.0),
        ] {
            let wait = backoff(&config, attempt).as_secs_f64();
            assert!(
                (base * 0.8..=base * 1.2).contains(&wait),
                "attempt {attempt}: {wait} s, expected about {base}"
            );
        }
    }

    #[test]
    fn the_body_is_the_event_and_the_same_at_every_attempt() {
        let claimed = Claimed {
            id: Uuid::nil(),
            attempt: 1,
            event: "job.completed".into(),
            data: json!({"id": "j", "status": "completed"}),
            created_at: DateTime::from_timestamp(1_700_000_000, 5_000).unwrap(),
            job_id: Uuid::nil(),
            endpoint_id: Uuid::nil(),
            url: "https://example.com/".into(),
            keys: vec![],
        };
        let body: Value = serde_json::from_slice(&claimed.body()).unwrap();
        assert_eq!(
            body,
            json!({"type": "job.completed", "timestamp": "2023-11-14T22:13:20.000005Z",
                   "data": {"id": "j", "status": "completed"}})
        );
        let again = Claimed {
            attempt: 2,
            ..claimed.clone()
        };
        assert_eq!(claimed.body(), again.body());
    }
}
