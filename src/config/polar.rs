//! `[polar]`: Polar.sh payment webhooks.
//!
//! The one map of the configuration, Polar's product → credits, is a string of
//! `product_id=credits` pairs separated by commas, so the environment and `--set` can
//! override it like any other setting; it is parsed and checked at start-up
//! ([`PolarConfig::products`]).

use super::checks::{Invalid, positive};
use serde::{Deserialize, Serialize};

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
        use crate::webhooks::signature;
        if self.webhook_secret.is_empty() {
            return None;
        }
        if self.webhook_secret.starts_with(signature::SECRET_PREFIX) {
            return signature::decode_secret(&self.webhook_secret);
        }
        Some(self.webhook_secret.as_bytes().to_vec())
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

    pub(super) fn validate(&self) -> Result<(), Invalid> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
