//! The heartbeat: one statement renews every lease a worker holds and reports which of
//! them must stop (their job is being cancelled or has failed) and which were lost.

use crate::db;
use crate::db::Session;
use crate::error::Result;
use crate::sql;
use std::time::Duration;
use uuid::Uuid;

/// A lease the heartbeat found still held: renewed, or, when another statement was writing
/// its row at that moment, left for the next heartbeat to renew.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Renewed {
    pub id: Uuid,
    pub is_step: bool,
    /// The job is being cancelled or has failed: the handler should stop.
    pub stop: bool,
}

/// Renews the leases of `segments` and `steps` ((id, attempt) pairs) held by `worker_id`.
/// A pair missing from the answer is no longer this worker's.
pub async fn renew<C: Session>(
    client: &C,
    worker_id: &str,
    lease: Duration,
    segments: &[(Uuid, i32)],
    steps: &[(Uuid, i32)],
) -> Result<Vec<Renewed>> {
    let (seg_ids, seg_attempts): (Vec<Uuid>, Vec<i32>) = segments.iter().copied().unzip();
    let (step_ids, step_attempts): (Vec<Uuid>, Vec<i32>) = steps.iter().copied().unzip();
    let rows = db::query(
        client,
        sql::HEARTBEAT,
        &[
            &worker_id,
            &lease.as_secs_f64(),
            &seg_ids,
            &seg_attempts,
            &step_ids,
            &step_attempts,
        ],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| Renewed {
            id: r.get("id"),
            is_step: r.get("is_step"),
            stop: r.get("stop"),
        })
        .collect())
}
