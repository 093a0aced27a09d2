//! Job webhooks: a user's endpoints are told when their jobs end (and, if they ask, how
//! they progress), by HTTP POSTs signed with the Standard Webhooks scheme.
//!
//! The events are rows of `webhook_deliveries`, written by a trigger on `jobs` in the
//! transaction that ends the job (migration V13), whichever statement ends it; workers
//! claim due deliveries with SKIP LOCKED under a lease, attempt them, and record each
//! outcome fenced by attempt, retrying with exponential backoff until
//! `webhooks.retry_for_seconds` after the event. The pieces: [`signature`] (the scheme,
//! shared with the API's verification of Polar's webhooks), [`target`] (which URLs and
//! addresses may be sent to), [`deliveries`] (the statements), [`send`] (one attempt over
//! HTTP). The endpoints' routes are `crate::api`'s, the delivery loop the worker's.

pub mod deliveries;
pub mod send;
pub mod signature;
pub mod target;

/// The events an endpoint may take, as the API and the payloads name them.
pub const EVENTS: &[&str] = &[
    "job.completed",
    "job.failed",
    "job.cancelled",
    "job.progress",
];

/// Most endpoints one user may have: each is a row written at each of their events.
pub const MAX_ENDPOINTS_PER_USER: i64 = 25;
