//! Octavia's dev tooling, outside the product library: the demo, the benchmarks and the
//! fault scenarios the `octavia-dev` binary runs (`bin/demo`, `bin/bench`, `bin/chaos`),
//! and what the integration tests share with them: the throwaway PostgreSQL
//! ([`cluster`]) and child processes ([`process`]).
//!
//! It uses the product only through the library's public API, as a deployment's
//! operator or client would, plus its own statements ([`sql`]) to measure and check.

pub mod bench;
pub mod chaos;
pub mod cluster;
pub mod demo;
pub mod process;
pub mod sql;
pub mod wer;
