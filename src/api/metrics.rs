//! Prometheus metrics: requests by route, method and status, their latency, and jobs
//! created by type, rendered at `GET /metrics`.
//!
//! The `metrics` macros record into one global recorder per process
//! ([`crate::telemetry::metrics`]; tests start several APIs and workers, which share it).

use super::state::ApiState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Instant;

/// Counts and times every request under its route's pattern (never the raw path, whose
/// ids would make a new series per job).
pub async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let start = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("octavia_http_requests_total",
        "route" => route.clone(), "method" => method.clone(), "status" => status)
    .increment(1);
    metrics::histogram!("octavia_http_request_duration_seconds",
        "route" => route, "method" => method)
    .record(start.elapsed().as_secs_f64());
    response
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(
    get,
    operation_id = "getMetrics",
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)),
    security(())
)]
pub async fn render(State(state): State<ApiState>) -> impl IntoResponse {
    state.metrics.run_upkeep();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
