//! Logging, traces and metrics set-up shared by the binaries.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer as _, fmt};

mod traces;

pub use traces::{Tracing, follow, traceparent};

/// Logs to stderr, filtered by `RUST_LOG` (default `info`); `OCTAVIA_LOG_FORMAT=json`
/// writes one JSON object per line, with the fields of the spans it happened in (among
/// them `trace_id` where traces are on). No traces.
pub fn init() {
    install(None);
}

/// [`init`], and traces exported as `config` says (none when `otlp_endpoint` is empty)
/// under the service name `service` unless the configuration names one. Call it before
/// the async runtime starts, and [`Tracing::shutdown`] after it ended.
pub fn init_with(config: &crate::config::TelemetryConfig, service: &str) -> crate::Result<Tracing> {
    let (tracing, layer) = traces::start(config, service)?;
    install(layer);
    Ok(tracing)
}

fn install(traces: Option<traces::Layer>) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,refinery_core=warn,tokio_postgres=warn"));
    // Spans are exported whatever RUST_LOG says of the logs: the octavia crate's, from
    // INFO up (requests, attempts, engine and storage calls, claims and writes).
    let traces =
        traces.map(|l| l.with_filter(Targets::new().with_target("octavia", tracing::Level::INFO)));
    let registry = tracing_subscriber::registry().with(traces);
    let result = if std::env::var("OCTAVIA_LOG_FORMAT").as_deref() == Ok("json") {
        registry
            .with(
                fmt::layer()
                    .json()
                    .with_writer(std::io::stderr)
                    .with_filter(filter),
            )
            .try_init()
    } else {
        registry
            .with(
                fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_filter(filter),
            )
            .try_init()
    };
    // Already initialised (tests): keep the first subscriber.
    let _ = result;
}

/// Histogram buckets in seconds: from a cached read or a small claim to a slow upload.
const SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Buckets of histograms counting rows (names ending in `_rows`): claims and writes take
/// one to `worker.claim_batch` rows, plans thousands.
const ROWS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 300.0, 500.0, 1000.0, 5000.0, 20000.0,
];

/// The process's Prometheus recorder, installed on first use; the API's and the worker's
/// `/metrics` render it. If another recorder was installed first, metrics go there and
/// this one renders nothing.
pub fn metrics() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(SECONDS)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_rows".into()), ROWS))
                .expect("the buckets are not empty")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed: /metrics stays empty");
            }
            handle
        })
        .clone()
}

/// The sum of the samples of metric `name` in a `/metrics` page (Prometheus text format)
/// whose labels contain `label` ("" for all): what the benchmark and the tests read.
pub fn metric_sum(text: &str, name: &str, label: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, labels) = series.split_once('{').unwrap_or((series, ""));
            (metric == name && labels.contains(label)).then(|| value.parse::<f64>().ok())?
        })
        // Not `sum()`: the sum of no samples would be -0.0.
        .fold(0.0, |total, v| total + v)
}
