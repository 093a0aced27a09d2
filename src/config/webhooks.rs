//! `[webhooks]`: how workers deliver job webhooks (docs/api.md#webhooks), and which
//! targets the API accepts for them.

use super::checks::{Invalid, positive};
use serde::{Deserialize, Serialize};

/// `[webhooks]`: delivery of job webhooks.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Deliveries one worker has in flight at most; 0: this worker delivers none.
    pub concurrency: u32,
    /// Longest a delivery may take, connection included; longer is a failed attempt.
    pub timeout_seconds: u64,
    /// How long a claimed delivery is the claimer's: when it expires (the worker died
    /// mid-delivery) another worker delivers it. Longer than `timeout_seconds`.
    pub lease_seconds: u64,
    /// How often an idle worker looks for due deliveries.
    pub poll_interval_ms: u64,
    /// Wait after a first failed attempt; doubled at each further one, with jitter.
    pub backoff_initial_ms: u64,
    /// Longest wait between two attempts.
    pub backoff_max_seconds: u64,
    /// A delivery not accepted within this time of its event is given up (`failed`).
    pub retry_for_seconds: u64,
    /// Deliveries delivered or given up are deleted this long after their event.
    pub history_seconds: u64,
    /// After a rotation, deliveries are signed with the old secret too for this long, so
    /// a receiver can switch without rejecting any.
    pub rotation_overlap_seconds: u64,
    /// Allows targets at loopback, private, link-local and other internal addresses.
    /// Off in production: a webhook URL is chosen by a user.
    pub allow_private_targets: bool,
    /// Allows plain http:// targets (payloads and signatures then travel in clear).
    pub allow_http_targets: bool,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            concurrency: 8,
            timeout_seconds: 10,
            lease_seconds: 60,
            poll_interval_ms: 1000,
            backoff_initial_ms: 5000,
            backoff_max_seconds: 3600,
            retry_for_seconds: 24 * 3600,
            history_seconds: 30 * 24 * 3600,
            rotation_overlap_seconds: 24 * 3600,
            allow_private_targets: false,
            allow_http_targets: false,
        }
    }
}

impl WebhooksConfig {
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        positive("webhooks.timeout_seconds", self.timeout_seconds)?;
        positive("webhooks.poll_interval_ms", self.poll_interval_ms)?;
        positive("webhooks.backoff_initial_ms", self.backoff_initial_ms)?;
        positive("webhooks.backoff_max_seconds", self.backoff_max_seconds)?;
        positive("webhooks.retry_for_seconds", self.retry_for_seconds)?;
        if self.lease_seconds <= self.timeout_seconds {
            return Err((
                "webhooks.lease_seconds",
                format!(
                    "must be longer than webhooks.timeout_seconds ({}): a delivery still \
                     waiting for its answer would be delivered again by another worker",
                    self.timeout_seconds
                ),
            ));
        }
        if self.backoff_initial_ms > self.backoff_max_seconds.saturating_mul(1000) {
            return Err((
                "webhooks.backoff_initial_ms",
                "must be at most webhooks.backoff_max_seconds".into(),
            ));
        }
        // Intervals of the database, and the history must outlast the retries.
        for (name, v) in [
            ("webhooks.lease_seconds", self.lease_seconds),
            ("webhooks.backoff_max_seconds", self.backoff_max_seconds),
            ("webhooks.retry_for_seconds", self.retry_for_seconds),
            ("webhooks.history_seconds", self.history_seconds),
            (
                "webhooks.rotation_overlap_seconds",
                self.rotation_overlap_seconds,
            ),
        ] {
            if v > 10 * 365 * 24 * 3600 {
                return Err((name, "must be at most ten years".into()));
            }
        }
        if self.history_seconds < self.retry_for_seconds {
            return Err((
                "webhooks.history_seconds",
                "must be at least webhooks.retry_for_seconds".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_outlast_timeouts_and_history_outlasts_retries() {
        assert!(WebhooksConfig::default().validate().is_ok());
        let with = |f: fn(&mut WebhooksConfig)| {
            let mut c = WebhooksConfig::default();
            f(&mut c);
            c.validate().map_err(|e| e.0)
        };
        assert_eq!(
            with(|c| c.lease_seconds = c.timeout_seconds),
            Err("webhooks.lease_seconds")
        );
        assert_eq!(
            with(|c| c.history_seconds = 60),
            Err("webhooks.history_seconds")
        );
        assert_eq!(
            with(|c| c.backoff_initial_ms = 3_600_001),
            Err("webhooks.backoff_initial_ms")
        );
        assert_eq!(
            with(|c| c.timeout_seconds = 0),
            Err("webhooks.timeout_seconds")
        );
        assert_eq!(with(|c| c.concurrency = 0), Ok(()));
    }
}
