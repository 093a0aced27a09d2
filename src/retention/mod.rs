//! Retention: deleting the stored objects nothing needs any more, so the store holds the
//! uploads and outputs users keep and the intermediates of jobs still in hand, and nothing
//! else for long. Four ways out, each claimed like the queue's work, so any number of
//! workers run the sweeper side by side:
//!
//! - a completed job's intermediates are deleted by the worker that completed it, right
//!   after the commit (`Handler::completed`); the completion marked its run swept;
//! - a failed or cancelled job keeps them `storage.failed_job_retention_seconds`, so a retry
//!   resumes; then [`Sweeper::sweep_failed_jobs`] marks its run swept and deletes them, and
//!   a retry plans the job again from its input;
//! - outputs and uploads past `storage.output_retention_days` / `upload_retention_days`
//!   (uploads never completed, `pending_upload_retention_days`) are deleted by
//!   [`Sweeper::expire_media`]; their rows stay, `expired`;
//! - everything else nobody needs (what attempts that lost their lease wrote, what a crash
//!   left between a commit and its deletions) is found by the [`census`] of the whole store,
//!   which one worker of the fleet takes at a time every
//!   `storage.orphan_sweep_interval_seconds`.

pub mod census;
pub mod delete;

use crate::config::StorageConfig;
use crate::error::Result;
use crate::job::output_files;
use crate::storage::Storage;
use crate::{db, sql};
use deadpool_postgres::Pool;
use rand::RngExt;
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Rows one sweeping statement claims.
const BATCH: i64 = 100;

/// What a pass deleted, or with `dry_run` would have.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SweepReport {
    pub dry_run: bool,
    /// Failed or cancelled jobs past their retention whose intermediates were deleted.
    pub failed_jobs: u64,
    /// Media files past their retention, now expired.
    pub expired_media: u64,
    /// Objects of those jobs and media files.
    pub objects_deleted: u64,
    /// The orphan pass, when it ran.
    pub orphans: Option<census::Census>,
}

/// The store's sweeper: any worker runs one ([`Sweeper::run`]); `octavia storage sweep`
/// runs a pass by hand.
#[derive(Clone)]
pub struct Sweeper {
    pool: Pool,
    storage: Storage,
    config: StorageConfig,
    worker_id: String,
}

impl Sweeper {
    pub fn new(pool: Pool, storage: Storage, config: StorageConfig, worker_id: &str) -> Sweeper {
        Sweeper {
            pool,
            storage,
            config,
            worker_id: worker_id.to_string(),
        }
    }

    /// Sweeps every `storage.sweep_interval_seconds` (give or take a quarter, so a fleet
    /// started together does not sweep in lockstep) until `stop`, and takes the orphan
    /// pass whenever it is due and no other worker has it.
    pub async fn run(self, stop: CancellationToken) {
        let every = self.config.sweep_interval_seconds as f64;
        loop {
            let wait = Duration::from_secs_f64(every * rand::rng().random_range(0.75..=1.25));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.cancelled() => return,
            }
            match self.pass(false, false).await {
                Ok(report) if report.failed_jobs + report.expired_media > 0 => {
                    tracing::info!(
                        failed_jobs = report.failed_jobs,
                        expired_media = report.expired_media,
                        objects = report.objects_deleted,
                        "swept the store"
                    )
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "sweeping the store failed"),
            }
        }
    }

    /// One pass: failed jobs past retention, media past retention, and the orphan pass if
    /// `orphans_now` or if it is due and this worker takes it. With `dry_run` nothing is
    /// marked or deleted, and the report says what would have been.
    pub async fn pass(&self, dry_run: bool, orphans_now: bool) -> Result<SweepReport> {
        let mut report = SweepReport {
            dry_run,
            ..SweepReport::default()
        };
        let (jobs, objects) = self.sweep_failed_jobs(dry_run).await?;
        report.failed_jobs = jobs;
        report.objects_deleted += objects;
        let (media, objects) = self.expire_media(dry_run).await?;
        report.expired_media = media;
        report.objects_deleted += objects;
        if orphans_now || self.take_orphan_chore().await? {
            let census = self.orphans(dry_run).await;
            if !orphans_now {
                let outcome = match &census {
                    Ok(c) => serde_json::to_value(c.kinds.clone()).unwrap_or_default(),
                    Err(e) => serde_json::json!({ "error": e.to_string() }),
                };
                let client = self.pool.get().await?;
                db::execute(&client, sql::FINISH_CHORE, &[&"orphans", &outcome]).await?;
            }
            report.orphans = Some(census?);
        }
        Ok(report)
    }

    /// Marks failed and cancelled jobs past `storage.failed_job_retention_seconds` swept
    /// and deletes the intermediates their segments name; returns (jobs, objects).
    pub async fn sweep_failed_jobs(&self, dry_run: bool) -> Result<(u64, u64)> {
        let retention = self.config.failed_job_retention_seconds as f64;
        let (mut jobs, mut objects) = (0, 0);
        loop {
            let claimed = self
                .claim(dry_run, sql::SWEEP_FINISHED_JOBS, &[&retention, &BATCH])
                .await?;
            let keys: Vec<String> = claimed
                .iter()
                .flat_map(|r| r.get::<_, Vec<String>>("keys"))
                .collect();
            jobs += claimed.len() as u64;
            objects += keys.len() as u64;
            if !dry_run {
                self.storage.delete_many(&keys).await?;
                for r in &claimed {
                    let id: Uuid = r.get("id");
                    tracing::info!(job.id = %id, "deleted a failed job's intermediates");
                }
            }
            // A dry run sees the same first batch again: one is all it can count.
            if dry_run || (claimed.len() as i64) < BATCH {
                return Ok((jobs, objects));
            }
        }
    }

    /// Expires outputs and uploads past their retention and deletes their objects;
    /// returns (media files, objects).
    pub async fn expire_media(&self, dry_run: bool) -> Result<(u64, u64)> {
        let days = |d: u64| i32::try_from(d).unwrap_or(i32::MAX);
        let (outputs, uploads, pending) = (
            days(self.config.output_retention_days),
            days(self.config.upload_retention_days),
            days(self.config.pending_upload_retention_days),
        );
        if outputs == 0 && uploads == 0 && pending == 0 {
            return Ok((0, 0));
        }
        let (mut media, mut objects) = (0, 0);
        loop {
            let claimed = self
                .claim(
                    dry_run,
                    sql::EXPIRE_MEDIA,
                    &[&outputs, &uploads, &BATCH, &pending],
                )
                .await?;
            let keys: Vec<String> = claimed.iter().flat_map(stored_keys).collect();
            media += claimed.len() as u64;
            objects += keys.len() as u64;
            if !dry_run {
                self.storage.delete_many(&keys).await?;
            }
            if dry_run || (claimed.len() as i64) < BATCH {
                return Ok((media, objects));
            }
        }
    }

    /// Runs a claiming statement; with `dry_run`, in a transaction rolled back, so it says
    /// what it would claim and changes nothing.
    async fn claim(
        &self,
        dry_run: bool,
        statement: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>> {
        let mut client = self.pool.get().await?;
        if !dry_run {
            return db::query(&client, statement, params).await;
        }
        let tx = client.transaction().await?;
        let rows = db::query(&tx, statement, params).await?;
        tx.rollback().await?;
        Ok(rows)
    }

    /// Whether this worker takes the orphan pass now: it is due and no one else has it.
    async fn take_orphan_chore(&self) -> Result<bool> {
        let client = self.pool.get().await?;
        let every = self.config.orphan_sweep_interval_seconds as f64;
        Ok(db::query_opt(
            &client,
            sql::CLAIM_CHORE,
            &[&"orphans", &every, &self.worker_id],
        )
        .await?
        .is_some())
    }

    /// The census of the store, and its orphans deleted unless `dry_run`.
    pub async fn orphans(&self, dry_run: bool) -> Result<census::Census> {
        let client = self.pool.get().await?;
        let census = census::take(&client, &self.storage, self.config.orphan_grace_seconds).await?;
        if !dry_run && !census.orphans.is_empty() {
            let keys: Vec<String> = census.orphans.iter().map(|o| o.key.clone()).collect();
            self.storage.delete_many(&keys).await?;
            tracing::info!(objects = keys.len(), "deleted orphaned objects");
        }
        Ok(census)
    }

    /// The census alone, for `octavia storage stats`.
    pub async fn census(&self) -> Result<census::Census> {
        let client = self.pool.get().await?;
        census::take(&client, &self.storage, self.config.orphan_grace_seconds).await
    }
}

/// Every stored object of the media row `r` (its `s3_key` and `metadata`): its own file and
/// each one `metadata.files` lists.
fn stored_keys(r: &tokio_postgres::Row) -> Vec<String> {
    let metadata: Option<Value> = r.get("metadata");
    let key: String = r.get("s3_key");
    output_files(&metadata.unwrap_or_default(), &key)
        .into_iter()
        .map(|(_, f)| f.key)
        .collect()
}
