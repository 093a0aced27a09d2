//! Octavia: a Postgres-native job system that translates media.
//!
//! The library holds everything; the binaries in `src/bin/` parse flags, load the
//! configuration and call into it. See README.md for the architecture.

pub mod config;
pub mod db;
pub mod demo;
pub mod error;
pub mod migrate;
pub mod pg;
pub mod pipeline;
pub mod sql;
pub mod telemetry;

pub use config::Config;
pub use error::{Error, Result};
