//! `[storage]`: the object store (a local directory or S3) and its signed links.

use super::checks::{Invalid, is_http, positive};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    pub backend: String,
    pub local_dir: String,
    pub s3_bucket: String,
    pub s3_endpoint: String,
    pub s3_region: String,
    pub s3_access_key_id: String,
    pub s3_secret_access_key: String,
    pub s3_path_style: bool,
    pub s3_allow_http: bool,
    pub s3_max_retries: u32,
    pub s3_retry_timeout_seconds: u64,
    pub url_expiry_seconds: u64,
    pub signing_secret: String,
    pub failed_job_retention_seconds: u64,
    pub output_retention_days: u64,
    pub upload_retention_days: u64,
    pub pending_upload_retention_days: u64,
    pub sweep_interval_seconds: u64,
    pub orphan_sweep_interval_seconds: u64,
    pub orphan_grace_seconds: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            backend: "local".into(),
            local_dir: "var/objects".into(),
            s3_bucket: "octavia".into(),
            s3_endpoint: String::new(),
            s3_region: "us-east-1".into(),
            s3_access_key_id: String::new(),
            s3_secret_access_key: String::new(),
            s3_path_style: true,
            s3_allow_http: false,
            s3_max_retries: 3,
            s3_retry_timeout_seconds: 15,
            url_expiry_seconds: 900,
            signing_secret: String::new(),
            failed_job_retention_seconds: 259_200,
            output_retention_days: 0,
            upload_retention_days: 0,
            pending_upload_retention_days: 7,
            sweep_interval_seconds: 30,
            orphan_sweep_interval_seconds: 3600,
            orphan_grace_seconds: 86_400,
        }
    }
}

impl StorageConfig {
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        match self.backend.as_str() {
            "local" => {
                if self.local_dir.is_empty() {
                    return Err(("storage.local_dir", "must not be empty".into()));
                }
            }
            "s3" => {
                if self.s3_bucket.is_empty() {
                    return Err(("storage.s3_bucket", "must not be empty".into()));
                }
                if !self.s3_endpoint.is_empty() && !is_http(&self.s3_endpoint) {
                    return Err((
                        "storage.s3_endpoint",
                        format!("`{}` is not an http(s) URL", self.s3_endpoint),
                    ));
                }
            }
            other => {
                return Err((
                    "storage.backend",
                    format!("`{other}` is not a storage backend (local or s3)"),
                ));
            }
        }
        positive(
            "storage.s3_retry_timeout_seconds",
            self.s3_retry_timeout_seconds,
        )?;
        positive("storage.url_expiry_seconds", self.url_expiry_seconds)?;
        positive(
            "storage.sweep_interval_seconds",
            self.sweep_interval_seconds,
        )?;
        positive(
            "storage.orphan_sweep_interval_seconds",
            self.orphan_sweep_interval_seconds,
        )?;
        // An object no row names yet may be an output a finalize attempt is still
        // uploading (its row is inserted when the job completes): an hour is far beyond any
        // upload, and the fencing makes the rest safe (see docs/storage.md).
        if self.orphan_grace_seconds < 3600 {
            return Err((
                "storage.orphan_grace_seconds",
                "must be at least 3600: an output being uploaded has no row yet".into(),
            ));
        }
        // S3 refuses presigned URLs that claim to live longer than a week.
        if self.url_expiry_seconds > 604_800 {
            return Err((
                "storage.url_expiry_seconds",
                "must be at most 604800 (7 days, the longest S3 accepts)".into(),
            ));
        }
        // Empty is allowed: a worker never signs URLs, and Storage::signed_url says what
        // is missing when an API process tries. A short secret is refused because anyone
        // who guesses it can read and write every object.
        if !self.signing_secret.is_empty() && self.signing_secret.len() < 32 {
            return Err((
                "storage.signing_secret",
                "must be empty or at least 32 characters long".into(),
            ));
        }
        Ok(())
    }
}
