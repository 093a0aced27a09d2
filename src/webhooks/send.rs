//! One attempt of a webhook delivery over HTTP: a POST of the event, signed, within
//! `webhooks.timeout_seconds`, to an address [`super::target`] allows, without following
//! redirects (a 3xx is a failed attempt like any other non-2xx: a redirect could lead
//! anywhere, including to an address the checks refuse).

use super::deliveries::Claimed;
use super::signature;
use super::target::{self, GuardedResolver, Policy};
use crate::config::WebhooksConfig;
use crate::error::{Error, Result};
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use std::sync::Arc;
use std::time::Duration;

/// What an attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Answered 2xx, with this status.
    Accepted(u16),
    /// Anything else: the status if there was an answer, and why it counts as a failure.
    Failed { status: Option<u16>, error: String },
}

/// Sends deliveries: one HTTP client shared by every attempt of a worker.
#[derive(Debug, Clone)]
pub struct Sender {
    client: reqwest::Client,
    policy: Policy,
}

impl Sender {
    pub fn new(config: &WebhooksConfig) -> Result<Sender> {
        let policy = Policy::from_config(config);
        let timeout = Duration::from_secs(config.timeout_seconds);
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve the target itself, out of the resolver's sight.
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver { policy }))
            .user_agent(concat!("Octavia-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Invalid(format!("webhook HTTP client: {e}")))?;
        Ok(Sender { client, policy })
    }

    /// Attempts `delivery` once, signed at this instant.
    pub async fn send(&self, delivery: &Claimed) -> Outcome {
        let failed = |error: String| Outcome::Failed {
            status: None,
            error,
        };
        // Checked again at each attempt: the configuration may have changed since the
        // endpoint was registered. Names are checked by the resolver, after resolution.
        let url = match target::check_url(&delivery.url, self.policy) {
            Ok(url) => url,
            Err(why) => return failed(why),
        };
        let id = delivery.id.to_string();
        let timestamp = chrono::Utc::now().timestamp();
        let body = delivery.body();
        let keys: Vec<&[u8]> = delivery.keys.iter().map(Vec::as_slice).collect();
        let signature = signature::sign(&keys, &id, timestamp, &body);
        let sent = self
            .client
            .post(url)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => {
                Outcome::Accepted(response.status().as_u16())
            }
            Ok(response) => {
                let status = response.status();
                let error = if status.is_redirection() {
                    format!("answered {status}: redirects are not followed")
                } else {
                    format!("answered {status}")
                };
                Outcome::Failed {
                    status: Some(status.as_u16()),
                    error,
                }
            }
            Err(e) if e.is_timeout() => failed(format!(
                "no answer within webhooks.timeout_seconds: {}",
                crate::error::chain(&e)
            )),
            Err(e) => failed(crate::error::chain(&e)),
        }
    }
}
