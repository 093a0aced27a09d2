//! `[worker]`: how `octavia-worker` claims, runs, leases and shuts down.

use super::checks::{Invalid, positive};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerConfig {
    pub concurrency: u32,
    pub threads: u32,
    pub job_types: Vec<String>,
    pub worker_id: String,
    pub claim_batch: u32,
    pub prefetch_ms: u64,
    pub lease_seconds: u64,
    pub heartbeat_seconds: u64,
    pub poll_interval_ms: u64,
    pub listen: bool,
    pub rescue_interval_seconds: u64,
    pub max_attempts: u32,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    pub handler_timeout_seconds: u64,
    pub shutdown_grace_seconds: u64,
    pub async_commit: bool,
    pub segment_retention_seconds: u64,
    pub metrics_listen: String,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            concurrency: 16,
            threads: 1,
            job_types: Vec::new(),
            worker_id: String::new(),
            claim_batch: 300,
            prefetch_ms: 10,
            lease_seconds: 30,
            heartbeat_seconds: 5,
            poll_interval_ms: 1000,
            listen: true,
            rescue_interval_seconds: 5,
            max_attempts: 5,
            backoff_base_ms: 1000,
            backoff_max_ms: 300_000,
            handler_timeout_seconds: 1800,
            shutdown_grace_seconds: 30,
            async_commit: true,
            segment_retention_seconds: 604_800,
            metrics_listen: String::new(),
        }
    }
}

impl WorkerConfig {
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        positive("worker.concurrency", self.concurrency.into())?;
        positive("worker.claim_batch", self.claim_batch.into())?;
        positive("worker.lease_seconds", self.lease_seconds)?;
        positive("worker.heartbeat_seconds", self.heartbeat_seconds)?;
        if self.heartbeat_seconds * 2 > self.lease_seconds {
            return Err((
                "worker.heartbeat_seconds",
                format!(
                    "must be at most half of worker.lease_seconds ({}) so a lease is renewed before it expires",
                    self.lease_seconds
                ),
            ));
        }
        positive("worker.threads", self.threads.into())?;
        if self.threads > 64 {
            return Err((
                "worker.threads",
                "must be at most 64: the worker's own work is waiting on the database, storage and engine processes".into(),
            ));
        }
        if self.prefetch_ms > 1000 {
            return Err((
                "worker.prefetch_ms",
                "must be at most 1000: prefetched segments wait leased where no other worker can take them".into(),
            ));
        }
        positive("worker.poll_interval_ms", self.poll_interval_ms)?;
        positive(
            "worker.rescue_interval_seconds",
            self.rescue_interval_seconds,
        )?;
        positive("worker.max_attempts", self.max_attempts.into())?;
        if self.backoff_max_ms < self.backoff_base_ms {
            return Err((
                "worker.backoff_max_ms",
                "must be at least worker.backoff_base_ms".into(),
            ));
        }
        positive(
            "worker.handler_timeout_seconds",
            self.handler_timeout_seconds,
        )?;
        if !self.metrics_listen.is_empty()
            && self.metrics_listen.parse::<std::net::SocketAddr>().is_err()
        {
            return Err((
                "worker.metrics_listen",
                format!(
                    "`{}` is not an address to listen on (such as 127.0.0.1:9464); empty serves no metrics",
                    self.metrics_listen
                ),
            ));
        }
        Ok(())
    }
}
