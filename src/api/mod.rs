//! The HTTP API (`octavia-api`): a thin layer that authenticates, reserves credits, inserts
//! rows, signs storage URLs and reports. It never touches media bytes itself, except
//! through the local store's signed routes, which stand in for S3's presigned URLs.
//!
//! One module per concept: [`auth`] (bearer tokens), `sessions`, `projects`, `uploads`,
//! `media` (media rows and their download links), `jobs` and `create` (job creation with
//! its price and idempotency), `limits` (sign-in throttling and job creation rates, counted
//! in PostgreSQL), `events` (live progress over SSE, fed by `feed`, the process's LISTEN
//! connection), `me`, `webhooks` (Polar payments), `webhook_endpoints` (the job webhooks
//! a user registers, and their deliveries), `inspect` (what an
//! upload is), `storage_routes` (the local store's signed links), `health`, `metrics`,
//! `openapi`; `state`, what every route shares; and [`error`], the one error type every
//! route answers with. Routes need the job model and the queue, never the job types'
//! implementations.
//!
//! [`router`] builds the whole application from the handlers' `#[utoipa::path]`
//! annotations, so the OpenAPI document at `/api/openapi.json` lists exactly the routes
//! that are served.

pub mod auth;
mod create;
pub mod error;
mod events;
mod feed;
mod health;
mod inspect;
mod jobs;
mod keys;
pub mod limits;
mod me;
mod media;
mod metrics;
mod openapi;
mod projects;
mod sessions;
mod state;
mod storage_routes;
mod transcript;
mod uploads;
mod webhook_endpoints;
mod webhooks;

pub use auth::Caller;
pub use error::ApiError;
pub use events::JobEvent;
pub use feed::JobEvents;
pub use state::ApiState;

use crate::Config;
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The whole OpenAPI document, as `/api/openapi.json` serves it.
pub fn document() -> utoipa::openapi::OpenApi {
    routes(&Config::default()).into_openapi()
}

/// Every route with its documentation. Routes under the request timeout and body limit are
/// separate from the local store's upload route, whose body is a whole media file that
/// takes as long as it takes.
fn routes(config: &Config) -> OpenApiRouter<ApiState> {
    let body_limit = config.api.body_limit_bytes as usize;
    let timeout = Duration::from_secs(config.api.request_timeout_seconds);
    let limited = OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(sessions::create))
        .routes(routes!(sessions::delete_current))
        .routes(routes!(keys::create, keys::list))
        .routes(routes!(keys::delete))
        .routes(routes!(projects::create, projects::list))
        .routes(routes!(projects::delete))
        .routes(routes!(uploads::create))
        .routes(routes!(uploads::complete))
        .routes(routes!(media::get, media::delete))
        .routes(routes!(media::download))
        .routes(routes!(create::create_job, jobs::list))
        .routes(routes!(jobs::get))
        .routes(routes!(transcript::get))
        .routes(routes!(jobs::cancel))
        .routes(routes!(jobs::retry))
        .routes(routes!(events::job_events))
        .routes(routes!(me::me))
        .routes(routes!(webhooks::polar))
        .routes(routes!(webhook_endpoints::create, webhook_endpoints::list))
        .routes(routes!(webhook_endpoints::delete))
        .routes(routes!(webhook_endpoints::rotate))
        .routes(routes!(webhook_endpoints::deliveries))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(metrics::render))
        .routes(routes!(openapi::serve))
        // An event stream's response starts at once, so the timeout never cuts it.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        // Refuses a declared Content-Length over the limit before reading anything; the
        // extractors enforce the same limit on bodies without one.
        .layer(RequestBodyLimitLayer::new(body_limit))
        .layer(DefaultBodyLimit::max(body_limit));
    limited.merge(storage_routes::routes())
}

/// The application: every route, the OpenAPI document, and the layers every request
/// passes (request id, tracing, metrics, panics and errors as JSON).
pub fn router(state: ApiState) -> Router {
    let (app, doc) = routes(&state.config).split_for_parts();
    let doc = Arc::new(doc);
    app.fallback(|| async { ApiError::NotFound("route") })
        .layer(axum::Extension(doc))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("a handler panicked");
            error::error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error; the request id identifies it in the server's logs",
            )
        }))
        .layer(middleware::from_fn(normalize_errors))
        .layer(middleware::from_fn(metrics::track))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<Body>| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                // A span per request, named for its route and continuing the caller's trace
                // when it sends a `traceparent`.
                let route = req
                    .extensions()
                    .get::<axum::extract::MatchedPath>()
                    .map_or("", |p| p.as_str());
                let span = tracing::info_span!(
                    "request",
                    otel.name = %format!("{} {route}", req.method()).trim_end(),
                    otel.kind = "server",
                    http.route = route,
                    request_id = %id,
                    method = %req.method(),
                    path = %req.uri().path(),
                    trace_id = tracing::field::Empty,
                );
                let traceparent = req
                    .headers()
                    .get("traceparent")
                    .and_then(|v| v.to_str().ok());
                crate::telemetry::follow(&span, traceparent, 1);
                span
            }),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// Serves `router(state)` on `listener` until `shutdown` is cancelled, then finishes the
/// requests in flight (event streams end at once) and returns.
pub async fn serve(
    listener: TcpListener,
    state: ApiState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let streams = state.shutdown.clone();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        signal.cancelled().await;
        streams.cancel();
    });
    let app = router(state);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await
}

/// Gives error responses that did not come from an [`ApiError`] (axum's 405, the timeout's
/// 408, the body limit's 413) the same JSON body, keeping their headers (such as `Allow`).
async fn normalize_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return response;
    }
    let message = match status {
        StatusCode::METHOD_NOT_ALLOWED => "this route does not take that method",
        StatusCode::REQUEST_TIMEOUT => "the request took longer than api.request_timeout_seconds",
        StatusCode::PAYLOAD_TOO_LARGE => "the request body is larger than api.body_limit_bytes",
        other => other.canonical_reason().unwrap_or("error"),
    };
    let (mut parts, _) = response.into_parts();
    let replacement = error::error_response(status, error::code_of(status), message);
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, replacement.into_body())
}
