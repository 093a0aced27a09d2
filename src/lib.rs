//! Octavia: a Postgres-native job system that translates media.
//!
//! The library holds everything; the binaries in `src/bin/` parse flags, load the
//! configuration and call into it. See README.md for the architecture.

pub mod api;
pub mod bench;
pub mod chaos;
pub mod config;
pub mod credits;
pub mod db;
pub mod demo;
pub mod error;
pub mod job;
pub mod job_types;
pub mod migrate;
pub mod pg;
pub mod pipeline;
pub mod queue;
pub mod shutdown;
pub mod sql;
pub mod storage;
pub mod telemetry;
pub mod users;
pub mod worker;

pub use config::Config;
pub use error::{Error, Result};
