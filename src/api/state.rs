//! What every route shares: the pool, the store, the configuration, the event streams'
//! listener, the metrics and the waker.

use super::feed::JobEvents;
use crate::Config;
use crate::error::Result;
use crate::storage::Storage;
use deadpool_postgres::Pool;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What every handler shares. Cloning is cheap: every field is a handle.
#[derive(Clone)]
pub struct ApiState {
    pub pool: Pool,
    pub storage: Storage,
    pub config: Arc<Config>,
    pub events: JobEvents,
    pub metrics: PrometheusHandle,
    /// Wakes the workers once jobs are created.
    pub waker: crate::queue::waker::Waker,
    /// Cancelled when the server shuts down: ends live event streams, which would
    /// otherwise keep a graceful shutdown waiting forever.
    pub shutdown: CancellationToken,
}

impl ApiState {
    /// Opens the object store and starts listening for job events (until `shutdown`).
    /// With the local store, `storage.signing_secret` must be set: every upload and
    /// download link the API hands out is signed with it, so starting without one would
    /// only fail later, request by request.
    pub fn new(config: Config, pool: Pool, shutdown: CancellationToken) -> Result<ApiState> {
        if config.storage.backend == "local" && config.storage.signing_secret.is_empty() {
            return Err(crate::Error::Invalid(
                "storage.signing_secret is empty: with the local store the API signs its upload \
                 and download links with it; set it (OCTAVIA_STORAGE_SIGNING_SECRET) to at least \
                 32 random characters, the same on every API process"
                    .into(),
            ));
        }
        let storage =
            Storage::from_config(&config.storage)?.with_public_url(&config.api.public_url)?;
        let events = JobEvents::start(config.database.listen_url(), shutdown.clone());
        let waker = crate::queue::waker::Waker::start(pool.clone(), shutdown.clone());
        Ok(ApiState {
            waker,
            pool,
            storage,
            config: Arc::new(config),
            events,
            metrics: crate::telemetry::metrics(),
            shutdown,
        })
    }
}
