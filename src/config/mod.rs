//! Configuration: one struct per section of `config.toml`, each in its file with its
//! defaults and its checks, and the [`loader`] that reads the layers (file, environment,
//! flags) and says which setting is wrong and where its value came from.

mod api;
mod checks;
mod database;
mod engines;
mod loader;
mod pipeline;
mod polar;
mod pricing;
mod storage;
mod telemetry;
mod webhooks;
mod worker;

pub use api::ApiConfig;
pub use database::{DatabaseConfig, Pooler};
pub use engines::EnginesConfig;
pub use loader::{CommonArgs, ConfigError, Loader, Source};
pub use pipeline::PipelineConfig;
pub use polar::PolarConfig;
pub use pricing::PricingConfig;
pub use storage::StorageConfig;
pub use telemetry::TelemetryConfig;
pub use webhooks::WebhooksConfig;
pub use worker::WorkerConfig;

use serde::{Deserialize, Serialize};

/// Every setting, by section.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub database: DatabaseConfig,
    pub storage: StorageConfig,
    pub worker: WorkerConfig,
    pub api: ApiConfig,
    pub engines: EnginesConfig,
    pub pipeline: PipelineConfig,
    pub pricing: PricingConfig,
    pub polar: PolarConfig,
    pub telemetry: TelemetryConfig,
    pub webhooks: WebhooksConfig,
}

impl Config {
    /// Semantic checks serde cannot express, section by section. Returns the offending
    /// setting and why.
    fn validate(&self) -> Result<(), checks::Invalid> {
        self.database.validate()?;
        self.storage.validate()?;
        self.worker.validate()?;
        self.api.validate()?;
        self.engines.validate()?;
        self.pipeline.validate()?;
        self.pricing.validate()?;
        self.polar.validate()?;
        self.telemetry.validate()?;
        self.webhooks.validate()?;
        Ok(())
    }

    /// The worker id used in `locked_by`: configured, or `hostname-pid`.
    pub fn worker_id(&self) -> String {
        if !self.worker.worker_id.is_empty() {
            return self.worker.worker_id.clone();
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "worker".into());
        format!("{host}-{}", std::process::id())
    }
}
