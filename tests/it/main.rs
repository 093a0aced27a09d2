//! Integration tests: one binary, so the throwaway PostgreSQL and the migrated template
//! are made once per `cargo test`.

mod api;
mod bench;
mod demo;
mod harness;
mod job_types;
mod pipeline;
mod pooler;
mod queue;
mod resilience;
mod s3;
mod schema;
mod storage;
mod support;
mod tls;
mod traces;
mod webhooks;
mod whole;
mod worker_binary;
mod worker_signals;
