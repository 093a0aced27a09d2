//! The ceiling: what PostgreSQL itself does on this machine with the queue's SQL shapes,
//! measured with pgbench against Octavia's own schema and indexes. A claim of 100 pending
//! segments with `FOR UPDATE SKIP LOCKED` plus their completion in one statement, and the
//! same one row at a time; both without Octavia's fairness walk, job counters or fencing.
//!
//! The ceiling's rows and sessions are the queue's own: time-ordered ids and a no-op plan's
//! input (random ids spread the primary key's writes over its pages: 43,000 against
//! 50,000 rows/s in one run), and the commit mode of the worker's lease statements
//! (`worker.async_commit`).

use super::measure::{self, pool};
use crate::cluster::{ScratchDatabase, find_bindir};
use octavia::error::{Error, Result};
use serde::Serialize;
use std::process::Command;

const BATCH: &str = include_str!("../../pgbench/ceiling_batch.sql");
const ONE: &str = include_str!("../../pgbench/ceiling_one.sql");

#[derive(Debug, Clone, Serialize)]
pub struct Ceiling {
    /// Rows claimed and completed per second, 100 per statement.
    pub batch_rows_per_second: f64,
    /// Rows claimed and completed per second, one per statement (= transactions/s).
    pub one_row_per_second: f64,
    pub clients: u32,
    /// Whether pgbench's commits waited for the WAL flush, as the worker's do not when
    /// `worker.async_commit` is on.
    pub synchronous_commit: bool,
}

/// Runs each script for `seconds` with `clients` connections, committing as the worker's
/// lease statements do with `async_commit`.
pub async fn measure(seconds: u64, clients: u32, async_commit: bool) -> Result<Ceiling> {
    let db = ScratchDatabase::create("ceiling").await?;
    let outcome = async {
        let pool = pool(&db.url)?;
        let client = pool.get().await?;
        // Enough pending rows for both runs at well above the expected rates.
        measure::insert_planned(&client, 1, seconds as i32 * 150_000).await?;
        client.batch_execute("VACUUM ANALYZE").await?;
        let batch = pgbench(&db.url, BATCH, seconds, clients, async_commit)? * 100.0;
        // The batch run leaves the entries of every row it claimed, dead, at the head of
        // the claim index, where a claim of one row in index order stepped over all of
        // them (1,026 rows/s after 10 s of batches, 5,552 on a vacuumed table, in runs
        // minutes apart): each script starts on a vacuumed table.
        client.batch_execute("VACUUM ANALYZE job_segments").await?;
        let one = pgbench(&db.url, ONE, seconds, clients, async_commit)?;
        Ok(Ceiling {
            batch_rows_per_second: batch,
            one_row_per_second: one,
            clients,
            synchronous_commit: !async_commit,
        })
    }
    .await;
    db.drop().await?;
    outcome
}

/// Transactions per second of `script`.
fn pgbench(url: &str, script: &str, seconds: u64, clients: u32, async_commit: bool) -> Result<f64> {
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), script)?;
    let out = Command::new(find_bindir()?.join("pgbench"))
        .args(["-n", "-M", "prepared", "-j", "2"])
        .args(["-c", &clients.to_string(), "-T", &seconds.to_string()])
        .arg("-f")
        .arg(file.path())
        .env(
            "PGOPTIONS",
            if async_commit {
                "-c synchronous_commit=off"
            } else {
                "-c synchronous_commit=on"
            },
        )
        // libpq reads a URI given as the database name.
        .arg(url)
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(Error::Invalid(format!(
            "pgbench failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    text.lines()
        .find_map(|l| {
            l.strip_prefix("tps = ")
                .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
        })
        .ok_or_else(|| Error::Invalid(format!("no tps in pgbench's output: {text}")))
}
