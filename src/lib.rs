//! Octavia: a Postgres-native job system that translates media.
//!
//! The library holds the product; the binaries in `src/bin/` parse flags, load the
//! configuration and call into it. The dev tooling (demo, benchmarks, chaos scenarios)
//! is the `octavia-dev` crate in `dev/`. See README.md for the architecture and a map of
//! the modules.

pub mod api;
pub mod config;
pub mod credits;
pub mod db;
pub mod error;
pub mod job;
pub mod job_types;
pub mod migrate;
pub mod pipeline;
pub mod queue;
pub mod retention;
pub mod shutdown;
pub mod sql;
pub mod storage;
pub mod telemetry;
pub mod users;
pub mod webhooks;
pub mod worker;

pub use config::Config;
pub use error::{Error, Result};
