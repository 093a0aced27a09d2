//! The queue: every statement that moves jobs and segments through their states, as
//! functions over a connection. The worker runtime (`crate::worker`), the CLI and the API
//! call these; none of them writes queue state any other way.
//!
//! - [`enqueue`]: insert jobs (bulk), reserving their credits.
//! - [`claim`]: lease job-level steps and segments with `FOR UPDATE SKIP LOCKED`.
//! - [`heartbeat`]: renew a worker's leases in one statement; learn of cancels.
//! - [`complete`]: record results and failures, fenced by attempt.
//! - [`rescue`]: take back expired leases.
//! - [`admin`]: cancel, retry, inspect.
//! - [`listener`]: the LISTEN connection that wakes idle workers.
//! - [`waker`]: one NOTIFY for many transactions' work, sent after they commit.
//! - [`job_events`]: the same for the worker's changes of jobs' status and progress.

pub mod admin;
pub mod claim;
pub mod complete;
pub mod enqueue;
pub mod heartbeat;
pub mod job_events;
pub mod listener;
pub mod rescue;
pub mod waker;

/// The channel workers LISTEN on; see `sql/notify_work.sql`.
pub const WORK_CHANNEL: &str = "octavia_work";
