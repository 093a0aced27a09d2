//! The HTTP API's settings: `[api]` (listening, limits, sessions), `[pricing]` (what a job
//! costs) and `[polar]` (payment webhooks).
//!
//! Every setting is a scalar so the environment and `--set` can override each one like any
//! other (`OCTAVIA_PRICING_VIDEO_TRANSLATION=12`). The one map, Polar's product → credits,
//! is therefore a string of `product_id=credits` pairs separated by commas, parsed and
//! checked at start-up ([`PolarConfig::products`]).

use crate::job::JobType;
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
        }
    }
}

impl ApiConfig {
    pub(super) fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err((
                "api.listen",
                format!("`{}` is not an address such as 127.0.0.1:8080", self.listen),
            ));
        }
        if !(self.public_url.starts_with("http://") || self.public_url.starts_with("https://")) {
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
        Ok(())
    }
}

/// `[pricing]`: credits per started minute of input, one setting per job type. A job's
/// price is `rate × ceil(minutes)`, at least one minute; the minutes of a subtitle input
/// are the summed durations of its cues, and a job without input counts one minute.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PricingConfig {
    pub noop: i64,
    pub video_translation: i64,
    pub audio_translation: i64,
    pub subtitles: i64,
    pub subtitle_translation: i64,
    pub subtitle_to_audio: i64,
}

impl Default for PricingConfig {
    fn default() -> Self {
        Self {
            noop: 0,
            video_translation: 10,
            audio_translation: 6,
            subtitles: 2,
            subtitle_translation: 1,
            subtitle_to_audio: 3,
        }
    }
}

impl PricingConfig {
    /// Credits per started minute of `job_type`.
    pub fn per_minute(&self, job_type: JobType) -> i64 {
        self.rate(job_type).1
    }

    /// The setting of `job_type`'s price and its value.
    fn rate(&self, job_type: JobType) -> (&'static str, i64) {
        match job_type {
            JobType::Noop => ("pricing.noop", self.noop),
            JobType::VideoTranslation => ("pricing.video_translation", self.video_translation),
            JobType::AudioTranslation => ("pricing.audio_translation", self.audio_translation),
            JobType::Subtitles => ("pricing.subtitles", self.subtitles),
            JobType::SubtitleTranslation => {
                ("pricing.subtitle_translation", self.subtitle_translation)
            }
            JobType::SubtitleToAudio => ("pricing.subtitle_to_audio", self.subtitle_to_audio),
        }
    }

    pub(super) fn validate(&self) -> Result<(), (&'static str, String)> {
        for (setting, rate) in JobType::ALL.iter().map(|t| self.rate(*t)) {
            // The cap keeps rate × minutes far from overflowing for any real input.
            if !(0..=1_000_000).contains(&rate) {
                return Err((setting, "must be between 0 and 1000000".into()));
            }
        }
        Ok(())
    }
}

/// `[polar]`: Polar.sh payment webhooks.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PolarConfig {
    /// The webhook's signing secret: `whsec_<base64>` (Standard Webhooks' form), or the
    /// secret exactly as Polar's dashboard shows it, whose UTF-8 bytes are then the key.
    pub webhook_secret: String,
    /// Deliveries whose `webhook-timestamp` is further than this from now are refused.
    pub timestamp_tolerance_seconds: u64,
    /// `product_id=credits` pairs separated by commas: what each product buys.
    pub products: String,
}

impl Default for PolarConfig {
    fn default() -> Self {
        Self {
            webhook_secret: String::new(),
            timestamp_tolerance_seconds: 300,
            products: String::new(),
        }
    }
}

impl PolarConfig {
    /// The HMAC key of the webhook signatures; `None` when no secret is configured.
    pub fn signing_key(&self) -> Option<Vec<u8>> {
        use base64::Engine;
        if self.webhook_secret.is_empty() {
            return None;
        }
        match self.webhook_secret.strip_prefix("whsec_") {
            Some(encoded) => base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok(),
            None => Some(self.webhook_secret.as_bytes().to_vec()),
        }
    }

    /// The product → credits map of `products`, or why it cannot be read.
    pub fn products(&self) -> Result<Vec<(String, i64)>, String> {
        let mut products = Vec::new();
        for item in self.products.split(',').map(str::trim) {
            if item.is_empty() {
                continue;
            }
            let Some((product, credits)) = item.split_once('=') else {
                return Err(format!("`{item}` is not `product_id=credits`"));
            };
            let product = product.trim();
            let credits: i64 = credits
                .trim()
                .parse()
                .ok()
                .filter(|c| *c > 0)
                .ok_or_else(|| format!("`{item}`: credits must be a positive integer"))?;
            if product.is_empty() {
                return Err(format!("`{item}`: the product id is empty"));
            }
            if products.iter().any(|(p, _)| p == product) {
                return Err(format!("product `{product}` is listed twice"));
            }
            products.push((product.to_string(), credits));
        }
        Ok(products)
    }

    /// Credits bought by one order of `product_id`, if it is a known product.
    pub fn credits_for(&self, product_id: &str) -> Option<i64> {
        self.products()
            .ok()?
            .into_iter()
            .find(|(p, _)| p == product_id)
            .map(|(_, c)| c)
    }

    pub(super) fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.webhook_secret.starts_with("whsec_") && self.signing_key().is_none() {
            return Err((
                "polar.webhook_secret",
                "`whsec_` must be followed by base64".into(),
            ));
        }
        if !self.webhook_secret.is_empty() && self.signing_key().is_some_and(|k| k.len() < 16) {
            return Err((
                "polar.webhook_secret",
                "is too short to be a webhook secret (at least 16 bytes)".into(),
            ));
        }
        positive(
            "polar.timestamp_tolerance_seconds",
            self.timestamp_tolerance_seconds,
        )?;
        self.products().map_err(|m| ("polar.products", m))?;
        Ok(())
    }
}

fn positive(name: &'static str, v: u64) -> Result<(), (&'static str, String)> {
    if v == 0 {
        return Err((name, "must be greater than 0".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_job_type_has_a_price() {
        let pricing = PricingConfig::default();
        for job_type in JobType::ALL {
            let (setting, _) = pricing.rate(*job_type);
            assert_eq!(
                setting,
                format!("pricing.{job_type}"),
                "[pricing] names the setting of `{job_type}` after it"
            );
        }
        assert_eq!(pricing.per_minute(JobType::VideoTranslation), 10);
    }

    #[test]
    fn products_parse_and_bad_ones_are_named() {
        let polar = |products: &str| PolarConfig {
            products: products.into(),
            ..PolarConfig::default()
        };
        assert_eq!(polar("").products().unwrap(), vec![]);
        let p = polar(" a=100, b-2 = 5 ,");
        assert_eq!(
            p.products().unwrap(),
            vec![("a".into(), 100), ("b-2".into(), 5)]
        );
        assert_eq!(p.credits_for("b-2"), Some(5));
        assert_eq!(p.credits_for("c"), None);
        for bad in ["a", "a=0", "a=-1", "a=x", "=3", "a=1,a=2"] {
            let e = polar(bad).validate().unwrap_err();
            assert_eq!(e.0, "polar.products", "{bad}: {e:?}");
        }
    }

    #[test]
    fn webhook_secrets_in_both_forms() {
        let polar = |secret: &str| PolarConfig {
            webhook_secret: secret.into(),
            ..PolarConfig::default()
        };
        assert_eq!(polar("").signing_key(), None);
        assert_eq!(
            polar("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
                .signing_key()
                .unwrap()
                .len(),
            24
        );
        assert_eq!(
            polar("polar_whs_abcdefghijklmnop").signing_key().unwrap(),
            b"polar_whs_abcdefghijklmnop"
        );
        assert_eq!(
            polar("whsec_not base64!").validate().unwrap_err().0,
            "polar.webhook_secret"
        );
        assert_eq!(
            polar("short").validate().unwrap_err().0,
            "polar.webhook_secret"
        );
    }
}
