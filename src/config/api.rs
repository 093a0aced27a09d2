//! `[api]`: how `octavia-api` listens and what it accepts. What a job costs is
//! `[pricing]` ([`super::PricingConfig`]), payments `[polar]` ([`super::PolarConfig`]).

use super::checks::{Invalid, is_http, positive};
use serde::{Deserialize, Serialize};

/// `[api]`: how `octavia-api` listens and what it accepts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    pub listen: String,
    pub public_url: String,
    pub body_limit_bytes: u64,
    pub request_timeout_seconds: u64,
    /// Largest file an upload may declare (and the local store's upload route accepts).
    pub max_upload_bytes: u64,
    /// Lifetime of a session's bearer token.
    pub session_ttl_seconds: u64,
    /// Failed sign-ins to one account (known or not) within a window; the next attempt,
    /// even with the right password, is answered 429 until the window ends. 0: no limit.
    pub sign_in_failures_per_account: u64,
    /// Failed sign-ins from one client address within a window, whatever the accounts.
    /// 0: no limit.
    pub sign_in_failures_per_ip: u64,
    /// The sign-in windows' length: one opens with the first failure counted.
    pub sign_in_window_seconds: u64,
    /// `POST /api/jobs` requests of one user within a minute; 0: no limit.
    pub job_creations_per_minute: u64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            public_url: "http://127.0.0.1:8080".into(),
            body_limit_bytes: 1 << 20,
            request_timeout_seconds: 30,
            // A presigned S3 PUT is a single request, which S3 caps at 5 GiB.
            max_upload_bytes: 5 << 30,
            session_ttl_seconds: 30 * 24 * 3600,
            sign_in_failures_per_account: 30,
            sign_in_failures_per_ip: 100,
            sign_in_window_seconds: 60,
            job_creations_per_minute: 60,
        }
    }
}

impl ApiConfig {
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err((
                "api.listen",
                format!("`{}` is not an address such as 127.0.0.1:8080", self.listen),
            ));
        }
        if !is_http(&self.public_url) {
            return Err((
                "api.public_url",
                format!("`{}` is not an http(s) URL", self.public_url),
            ));
        }
        positive("api.body_limit_bytes", self.body_limit_bytes)?;
        positive("api.request_timeout_seconds", self.request_timeout_seconds)?;
        positive("api.max_upload_bytes", self.max_upload_bytes)?;
        positive("api.session_ttl_seconds", self.session_ttl_seconds)?;
        // Beyond i64 the database's bigint columns could not hold the values.
        if self.max_upload_bytes > i64::MAX as u64 {
            return Err(("api.max_upload_bytes", "is too large".into()));
        }
        if self.session_ttl_seconds > 10 * 365 * 24 * 3600 {
            return Err((
                "api.session_ttl_seconds",
                "must be at most ten years".into(),
            ));
        }
        positive("api.sign_in_window_seconds", self.sign_in_window_seconds)?;
        if self.sign_in_window_seconds > 24 * 3600 {
            return Err(("api.sign_in_window_seconds", "must be at most a day".into()));
        }
        // The counters are the database's int.
        for (name, limit) in [
            (
                "api.sign_in_failures_per_account",
                self.sign_in_failures_per_account,
            ),
            ("api.sign_in_failures_per_ip", self.sign_in_failures_per_ip),
            (
                "api.job_creations_per_minute",
                self.job_creations_per_minute,
            ),
        ] {
            if limit > 1_000_000 {
                return Err((name, "must be at most 1000000 (0: no limit)".into()));
            }
        }
        Ok(())
    }
}
