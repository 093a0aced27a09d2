//! The rescuer: expired leases (a worker died, hung, or lost its connection) go back to
//! claimable, or fail their job when no attempt is left. Every worker runs it on an
//! interval; SKIP LOCKED keeps concurrent rescuers apart.

use super::complete::{fail_job, settle};
use crate::db;
use crate::error::Result;
use crate::job::SegmentStatus;
use crate::sql;
use deadpool_postgres::Object;
use uuid::Uuid;

/// What one rescue pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Rescued {
    pub segments_requeued: usize,
    pub segments_failed: usize,
    pub steps_requeued: usize,
    pub jobs_failed: usize,
}

impl Rescued {
    pub fn any(&self) -> bool {
        *self != Rescued::default()
    }
}

/// Rescues up to `limit` expired segment leases and `limit` expired step leases.
pub async fn run(client: &mut Object, limit: i64) -> Result<Rescued> {
    let mut report = Rescued::default();

    let tx = client.transaction().await?;
    let rows = db::query(&tx, sql::RESCUE_SEGMENTS, &[&limit]).await?;
    let mut jobs: Vec<Uuid> = Vec::new();
    let mut failed: Vec<(Uuid, i32)> = Vec::new();
    for row in &rows {
        let job: Uuid = row.get("job_id");
        if row.get::<_, SegmentStatus>("status") == SegmentStatus::Failed {
            failed.push((job, row.get("segment_index")));
            report.segments_failed += 1;
        } else {
            report.segments_requeued += 1;
        }
        if !jobs.contains(&job) {
            jobs.push(job);
        }
    }
    if !jobs.is_empty() {
        let locked = db::query(&tx, sql::LOCK_JOBS, &[&jobs]).await?;
        let stopping: Vec<Uuid> = locked
            .iter()
            .filter(|r| r.get::<_, bool>("stopping"))
            .map(|r| r.get("id"))
            .collect();
        for (job, index) in &failed {
            if !stopping.contains(job) {
                let why = format!("segment {index} failed: its lease expired on its last attempt");
                if fail_job(&tx, *job, &why).await? {
                    report.jobs_failed += 1;
                }
            }
        }
        // Jobs being cancelled (or just failed) whose rescued segment was the last thing
        // running end now.
        settle(&tx, &jobs).await?;
        if report.segments_requeued > 0 {
            db::execute(&tx, sql::NOTIFY_WORK, &[]).await?;
        }
    }
    tx.commit().await?;

    let tx = client.transaction().await?;
    let rows = db::query(&tx, sql::RESCUE_STEPS, &[&limit]).await?;
    let mut notify = false;
    for row in &rows {
        let job: Uuid = row.get("id");
        let step: String = row.get("step");
        let exhausted: bool = row.get("exhausted");
        let cancelling: bool = row.get("cancelling");
        if cancelling {
            settle(&tx, &[job]).await?;
        } else if exhausted {
            let why = format!("{step} failed: its lease expired on its last attempt");
            if fail_job(&tx, job, &why).await? {
                report.jobs_failed += 1;
            }
        } else {
            report.steps_requeued += 1;
            notify = true;
        }
    }
    if notify {
        db::execute(&tx, sql::NOTIFY_WORK, &[]).await?;
    }
    tx.commit().await?;
    Ok(report)
}

/// Deletes the segment rows of up to `limit` jobs completed more than `retention` ago.
/// Returns (jobs pruned, segment rows deleted).
pub async fn prune<C: crate::db::Session>(
    client: &C,
    retention: std::time::Duration,
    limit: i64,
) -> Result<(i64, i64)> {
    let seconds = retention.as_secs_f64();
    let row = db::query(client, sql::PRUNE_SEGMENTS, &[&seconds, &limit]).await?;
    Ok(row
        .first()
        .map(|r| (r.get("jobs"), r.get("rows")))
        .unwrap_or((0, 0)))
}
