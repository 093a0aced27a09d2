//! Claiming: one short statement leases ready rows to a worker. See the SQL files for the
//! protocol's details.

use crate::db;
use crate::db::Session;
use crate::error::Result;
use crate::job::{ClaimedSegment, ClaimedStep, JobInfo, Step};
use crate::sql;
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;
use uuid::Uuid;

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

/// Leases up to `limit` segments, shared between users by their weights, then between
/// each user's jobs (see `sql/claim_segments.sql`).
///
/// A user's `max_running_segments` holds across every worker without a lock that all
/// claims wait for: the claim statement leases at most a user's ceiling minus the leases it
/// sees, but two claims running at once each see the other's leases only once it commits.
/// So a claim that leased segments of users with a ceiling takes those users' advisory
/// locks (in user id order), then, in a statement of its own and so with a snapshot taken
/// after every earlier claim of those users committed, counts their leases and gives back
/// what is over the ceiling, before it commits. Claims of users without a ceiling take no
/// lock; those of one capped user wait for each other only for that check.
pub async fn segments<C: Session>(
    client: &mut C,
    options: &ClaimOptions,
    limit: i64,
) -> Result<Vec<ClaimedSegment>> {
    let lease = options.lease.as_secs_f64();
    let tx = client.transaction().await?;
    let rows = db::query(
        &tx,
        sql::CLAIM_SEGMENTS,
        &[&options.worker_id, &limit, &options.job_types, &lease],
    )
    .await?;
    // The capped users among the rows (in id order, the locks' order) and their rows.
    let mut capped: BTreeMap<Uuid, i32> = BTreeMap::new();
    let (mut ids, mut of) = (Vec::new(), Vec::new());
    for row in &rows {
        if let Some(ceiling) = row.get::<_, Option<i32>>("ceiling") {
            let owner: Uuid = row.get("owner_id");
            capped.insert(owner, ceiling);
            ids.push(row.get::<_, Uuid>("id"));
            of.push(owner);
        }
    }
    let mut released = HashSet::new();
    if !capped.is_empty() {
        let owners: Vec<Uuid> = capped.keys().copied().collect();
        let ceilings: Vec<i32> = capped.values().copied().collect();
        db::query(&tx, sql::LOCK_OWNERS, &[&owners]).await?;
        for row in db::query(
            &tx,
            sql::RELEASE_OVER_CEILING,
            &[&ids, &of, &owners, &ceilings],
        )
        .await?
        {
            released.insert(row.get::<_, Uuid>(0));
        }
    }
    tx.commit().await?;
    Ok(rows
        .iter()
        .filter(|r| !released.contains(&r.get::<_, Uuid>("id")))
        .map(ClaimedSegment::from_row)
        .collect())
}
