//! Claiming: one short statement leases ready rows to a worker. See the SQL files for the
//! protocol's details.

use super::{ClaimedSegment, ClaimedStep, JobInfo, Step};
use crate::db;
use crate::error::Result;
use crate::sql;
use deadpool_postgres::GenericClient;
use serde_json::Value;
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
pub async fn steps<C: GenericClient + Sync>(
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
            job: JobInfo::from_row(r, 0),
            step: if r.get::<_, &str>(9) == "plan" {
                Step::Plan
            } else {
                Step::Finalize
            },
            attempt: r.get(10),
            max_attempts: r.get(11),
        })
        .collect())
}

/// Leases up to `limit` segments, shared fairly between jobs.
pub async fn segments<C: GenericClient + Sync>(
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
    Ok(rows
        .iter()
        .map(|r| ClaimedSegment {
            id: r.get(0),
            job_id: r.get(1),
            job_type: r.get(2),
            run: r.get(3),
            index: r.get(4),
            start_ms: r.get(5),
            end_ms: r.get(6),
            attempt: r.get(7),
            max_attempts: r.get(8),
            input: r.get::<_, Option<Value>>(9).unwrap_or(Value::Null),
        })
        .collect())
}
