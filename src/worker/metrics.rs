//! The worker's Prometheus metrics, served at `http://<worker.metrics_listen>/metrics`,
//! beside its health for orchestrators: `/healthz` (the process serves) and `/readyz` (the
//! database answers and the worker is not draining; its engines were checked before it
//! started).
//!
//! What a busy worker spends its time on, as counters and histograms: each claim statement
//! (rows asked and got, seconds), each completion write (rows, seconds), each heartbeat,
//! the leases it lost and the outcomes it could not record; and, read when scraped, its
//! slots in use, prefetched segments and leases in flight. A histogram's `_sum` over
//! wall time is how busy that part was: a completion writer whose
//! `octavia_worker_write_seconds_sum{kind="segments"}` grows by 0.9 s a second is the
//! worker's bottleneck.

use super::shared::Shared;
use crate::error::{Error, Result};
use axum::http::header;
use axum::response::IntoResponse;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// One claim statement of `kind` (`steps` or `segments`): `asked` rows wanted, `got`
/// claimed, in `took`.
pub fn claim(kind: &'static str, asked: usize, got: usize, took: Duration) {
    metrics::counter!("octavia_worker_claims_total", "kind" => kind).increment(1);
    if got == 0 {
        metrics::counter!("octavia_worker_empty_claims_total", "kind" => kind).increment(1);
    }
    metrics::counter!("octavia_worker_claimed_rows_total", "kind" => kind).increment(got as u64);
    metrics::histogram!("octavia_worker_claim_asked_rows", "kind" => kind).record(asked as f64);
    metrics::histogram!("octavia_worker_claim_rows", "kind" => kind).record(got as f64);
    metrics::histogram!("octavia_worker_claim_seconds", "kind" => kind).record(took.as_secs_f64());
}

/// One batch of outcomes of one kind (`segments`, `plans`, `jobs`) written, retries
/// included; `lost` of its `rows` were not recorded (lease lost, or the database stayed
/// unreachable).
pub fn write(kind: &'static str, rows: usize, lost: usize, took: Duration) {
    metrics::counter!("octavia_worker_writes_total", "kind" => kind).increment(1);
    metrics::counter!("octavia_worker_written_rows_total", "kind" => kind).increment(rows as u64);
    if lost > 0 {
        metrics::counter!("octavia_worker_outcomes_lost_total", "kind" => kind)
            .increment(lost as u64);
    }
    metrics::histogram!("octavia_worker_write_rows", "kind" => kind).record(rows as f64);
    metrics::histogram!("octavia_worker_write_seconds", "kind" => kind).record(took.as_secs_f64());
}

/// One heartbeat: `leases` renewed or checked, `lost` of them no longer this worker's.
pub fn heartbeat(leases: usize, lost: usize, took: Duration, ok: bool) {
    let outcome = if ok { "ok" } else { "failed" };
    metrics::counter!("octavia_worker_heartbeats_total", "outcome" => outcome).increment(1);
    metrics::counter!("octavia_worker_leases_lost_total").increment(lost as u64);
    metrics::histogram!("octavia_worker_heartbeat_rows").record(leases as f64);
    metrics::histogram!("octavia_worker_heartbeat_seconds").record(took.as_secs_f64());
}

/// One webhook delivery attempt and what came of it: `delivered`, `retrying`, `given_up`
/// (out of retry time), `lease_lost` (another worker took it over meanwhile) or
/// `unrecorded` (the database did not take the outcome; attempted again after the lease).
pub fn webhook_attempt(outcome: &'static str, took: Duration) {
    metrics::counter!("octavia_worker_webhook_attempts_total", "outcome" => outcome).increment(1);
    metrics::histogram!("octavia_worker_webhook_attempt_seconds").record(took.as_secs_f64());
}

/// How long `/readyz` waits for the database.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// `/readyz`: 200 while the database answers and the worker claims work; 503 with the
/// reason otherwise (draining after SIGTERM, or the database away).
async fn readyz(shared: Arc<Shared>) -> axum::response::Response {
    use axum::http::StatusCode;
    let draining = !shared.is_claiming();
    let database = tokio::time::timeout(READY_TIMEOUT, async {
        let client = shared.pool.get().await?;
        crate::db::query_opt(&client, crate::sql::PING, &[]).await?;
        Ok::<_, Error>(())
    })
    .await;
    let database = match database {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some("the database did not answer in time".to_string()),
    };
    let ready = !draining && database.is_none();
    let body = serde_json::json!({
        "status": if ready { "ready" } else { "unavailable" },
        "worker_id": shared.worker_id(),
        "draining": draining,
        "database": database.as_deref().unwrap_or("ok"),
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

/// Binds `addr` now (so a taken port fails the start, not later) and serves `/metrics`,
/// `/healthz` and `/readyz` until `stop`.
pub async fn serve(
    shared: Arc<Shared>,
    addr: &str,
    stop: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        Error::Invalid(format!(
            "worker.metrics_listen: cannot listen on {addr}: {e}"
        ))
    })?;
    tracing::info!(address = %listener.local_addr()?, "serving worker metrics at /metrics");
    let handle = crate::telemetry::metrics();
    let ready = shared.clone();
    let app = axum::Router::new()
        .route(
            "/healthz",
            axum::routing::get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/readyz", axum::routing::get(move || readyz(ready.clone())))
        .route(
            "/metrics",
            axum::routing::get(move || {
                let (shared, handle) = (shared.clone(), handle.clone());
                async move {
                    gauges(&shared);
                    handle.run_upkeep();
                    (
                        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                        handle.render(),
                    )
                        .into_response()
                }
            }),
        );
    Ok(tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "the worker metrics server stopped");
        }
    }))
}

/// The worker's state at the moment of a scrape.
fn gauges(shared: &Shared) {
    let concurrency = shared.config.worker.concurrency as usize;
    let busy = concurrency.saturating_sub(shared.slots.available_permits());
    metrics::gauge!("octavia_worker_concurrency").set(concurrency as f64);
    metrics::gauge!("octavia_worker_slots_busy").set(busy as f64);
    metrics::gauge!("octavia_worker_prefetched").set(shared.prefetch.len() as f64);
    metrics::gauge!("octavia_worker_leases_in_flight").set(shared.inflight.len() as f64);
}
