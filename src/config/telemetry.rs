//! `[telemetry]`: where traces go.

use super::checks::Invalid;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// An OTLP/HTTP collector (e.g. `http://127.0.0.1:4318`): spans are exported in
    /// protobuf to its `/v1/traces`. Empty: no traces.
    pub otlp_endpoint: String,
    /// Headers sent with each export, as `name=value` (an API key, say).
    pub otlp_headers: Vec<String>,
    /// `service.name` of the spans; empty: the binary's name (`octavia-api`,
    /// `octavia-worker`).
    pub service_name: String,
}

impl TelemetryConfig {
    /// The URL spans are posted to: the endpoint's `/v1/traces`, unless it names a path.
    pub fn traces_url(&self) -> Option<String> {
        let endpoint = self.otlp_endpoint.trim_end_matches('/');
        if endpoint.is_empty() {
            return None;
        }
        let has_path = endpoint
            .split_once("://")
            .is_some_and(|(_, rest)| rest.contains('/'));
        Some(if has_path {
            endpoint.to_string()
        } else {
            format!("{endpoint}/v1/traces")
        })
    }

    /// The export headers, split.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.otlp_headers
            .iter()
            .filter_map(|h| h.split_once('='))
            .map(|(n, v)| (n.trim(), v.trim()))
    }

    pub(super) fn validate(&self) -> Result<(), Invalid> {
        if let Some(url) = self.traces_url()
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err((
                "telemetry.otlp_endpoint",
                format!("`{}` is not an http:// or https:// URL", self.otlp_endpoint),
            ));
        }
        if let Some(bad) = self
            .otlp_headers
            .iter()
            .find(|h| h.split_once('=').is_none_or(|(n, _)| n.trim().is_empty()))
        {
            return Err((
                "telemetry.otlp_headers",
                format!("`{bad}` is not name=value"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_gets_the_traces_path_unless_it_names_one() {
        let at = |e: &str| {
            TelemetryConfig {
                otlp_endpoint: e.into(),
                ..Default::default()
            }
            .traces_url()
        };
        assert_eq!(at(""), None);
        assert_eq!(
            at("http://collector:4318/").as_deref(),
            Some("http://collector:4318/v1/traces")
        );
        assert_eq!(
            at("https://api.example.com/otlp/v1/traces").as_deref(),
            Some("https://api.example.com/otlp/v1/traces")
        );
        let bad = TelemetryConfig {
            otlp_endpoint: "collector:4318".into(),
            ..Default::default()
        };
        assert_eq!(bad.validate().unwrap_err().0, "telemetry.otlp_endpoint");
        let bad = TelemetryConfig {
            otlp_headers: vec!["x-api-key".into()],
            ..Default::default()
        };
        assert_eq!(bad.validate().unwrap_err().0, "telemetry.otlp_headers");
    }
}
