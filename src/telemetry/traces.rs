//! Traces over OTLP/HTTP (`telemetry.otlp_endpoint`): the `tracing` spans of the octavia
//! crate, exported in batches by a thread of their own. A request that creates a job
//! stores its W3C `traceparent` in the job ([`traceparent`]); the worker's plan, segment
//! and finalize attempts continue that trace ([`follow`]), so one trace runs from
//! `POST /api/jobs` to the job's finalize, across processes and retries.

use crate::config::TelemetryConfig;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::collections::HashMap;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The layer that turns spans into OpenTelemetry spans.
pub(super) type Layer = tracing_opentelemetry::OpenTelemetryLayer<
    tracing_subscriber::Registry,
    opentelemetry_sdk::trace::Tracer,
>;

/// The exporter of a process with traces on: [`Tracing::shutdown`] sends what is left.
#[must_use = "dropping it without shutdown loses the spans not exported yet"]
pub struct Tracing {
    provider: Option<SdkTracerProvider>,
}

impl Tracing {
    /// Exports the spans still buffered and stops the exporter. Blocks: call it outside
    /// the async runtime (or from a blocking task).
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown()
        {
            eprintln!("warning: exporting the last spans failed: {e}");
        }
    }
}

/// The exporter and the layer for `config`, or none when traces are off. Builds a
/// blocking HTTP client: call it before the async runtime starts.
pub(super) fn start(
    config: &TelemetryConfig,
    service: &str,
) -> crate::Result<(Tracing, Option<Layer>)> {
    let Some(url) = config.traces_url() else {
        return Ok((Tracing { provider: None }, None));
    };
    let headers: HashMap<String, String> = config
        .headers()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(url)
        .with_headers(headers)
        .build()
        .map_err(|e| crate::Error::Invalid(format!("telemetry.otlp_endpoint: {e}")))?;
    let name = if config.service_name.is_empty() {
        service
    } else {
        &config.service_name
    };
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(name.to_string())
                .build(),
        )
        .build();
    let tracer = provider.tracer("octavia");
    let layer = tracing_opentelemetry::layer().with_tracer(tracer);
    Ok((
        Tracing {
            provider: Some(provider),
        },
        Some(layer),
    ))
}

/// The W3C `traceparent` of the current span, when traces are on.
pub fn traceparent() -> Option<String> {
    let context = Span::current().context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.remove("traceparent")
}

/// Makes `span` a child of the remote span `traceparent` names (a job's creation, a
/// caller's request), linked to it as well from a retry (`attempt` > 1), and records its
/// trace id in its `trace_id` field, which the logs show.
pub fn follow(span: &Span, traceparent: Option<&str>, attempt: i32) {
    if let Some(traceparent) = traceparent {
        let carrier = HashMap::from([("traceparent".to_string(), traceparent.to_string())]);
        let parent = TraceContextPropagator::new().extract(&carrier);
        let remote = parent.span().span_context().clone();
        if remote.is_valid() {
            let _ = span.set_parent(parent);
            if attempt > 1 {
                span.add_link(remote);
            }
        }
    }
    let id = span.context().span().span_context().trace_id();
    if id != opentelemetry::trace::TraceId::INVALID {
        span.record("trace_id", tracing::field::display(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_an_exporter_there_is_no_traceparent_and_following_one_is_harmless() {
        assert_eq!(traceparent(), None);
        let span = tracing::info_span!("step", trace_id = tracing::field::Empty);
        follow(
            &span,
            Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
            2,
        );
        follow(&span, Some("not a traceparent"), 1);
    }
}
