//! Claiming: one short statement leases ready rows to a worker. See the SQL files for the
//! protocol's details.

use crate::db;
use crate::db::Session;
use crate::error::Result;
use crate::job::{ClaimedSegment, ClaimedStep, JobInfo, Step};
use crate::sql;
use std::time::Duration;

/// Who claims and how.
#[derive(Debug, Clone)]
pub struct ClaimOptions {
    pub worker_id: String,
    /// Only these job types; `None` claims every type.
    pub job_types: Option<Vec<String>>,
    pub lease: Duration,
}

/// Leases up to `limit` plan/finalize steps, most urgent first.
pub async fn steps<C: Session>(
    client: &C,
    options: &ClaimOptions,
    limit: i64,
) -> Result<Vec<ClaimedStep>> {
    let lease = options.lease.as_secs_f64();
    let rows = db::query(
        client,
        sql::CLAIM_JOB_STEPS,
        &[&options.worker_id, &limit, &options.job_types, &lease],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| ClaimedStep {
            job: JobInfo::from_row(r),
            step: if r.get::<_, &str>("step") == "plan" {
                Step::Plan
            } else {
                Step::Finalize
            },
            attempt: r.get("attempts"),
            max_attempts: r.get("max_attempts"),
        })
        .collect())
}

/// Leases up to `limit` segments, shared fairly between jobs.
pub async fn segments<C: Session>(
    client: &C,
    options: &ClaimOptions,
    limit: i64,
) -> Result<Vec<ClaimedSegment>> {
    let lease = options.lease.as_secs_f64();
    let rows = db::query(
        client,
        sql::CLAIM_SEGMENTS,
        &[&options.worker_id, &limit, &options.job_types, &lease],
    )
    .await?;
    Ok(rows.iter().map(ClaimedSegment::from_row).collect())
}
