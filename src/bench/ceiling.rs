//! The ceiling: what PostgreSQL itself does on this machine with the queue's SQL shapes,
//! measured with pgbench against Octavia's own schema and indexes. A claim of 100 pending
//! segments with `FOR UPDATE SKIP LOCKED` plus their completion in one statement, and the
//! same one row at a time; both without Octavia's fairness walk, job counters or fencing.

use super::measure::pool;
use crate::error::{Error, Result};
use crate::pg::{ScratchDatabase, find_bindir};
use crate::sql;
use serde::Serialize;
use std::process::Command;
use uuid::Uuid;

const BATCH: &str = include_str!("../../bench/ceiling_batch.sql");
const ONE: &str = include_str!("../../bench/ceiling_one.sql");

#[derive(Debug, Clone, Serialize)]
pub struct Ceiling {
    /// Rows claimed and completed per second, 100 per statement.
    pub batch_rows_per_second: f64,
    /// Rows claimed and completed per second, one per statement (= transactions/s).
    pub one_row_per_second: f64,
    pub clients: u32,
}

/// Runs each script for `seconds` with `clients` connections.
pub async fn measure(seconds: u64, clients: u32) -> Result<Ceiling> {
    let db = ScratchDatabase::create("ceiling").await?;
    let outcome = async {
        let pool = pool(&db.url)?;
        let client = pool.get().await?;
        // Enough pending rows for both runs at well above the expected rates.
        let rows = (seconds as i32) * 150_000;
        let job = Uuid::now_v7();
        crate::db::execute(&client, sql::BENCH_CEILING_JOB, &[&job, &rows]).await?;
        crate::db::execute(&client, sql::BENCH_CEILING_SEGMENTS, &[&job, &rows]).await?;
        client.batch_execute("VACUUM ANALYZE").await?;
        let batch = pgbench(&db.url, BATCH, seconds, clients)? * 100.0;
        let one = pgbench(&db.url, ONE, seconds, clients)?;
        Ok(Ceiling {
            batch_rows_per_second: batch,
            one_row_per_second: one,
            clients,
        })
    }
    .await;
    db.drop().await?;
    outcome
}

/// Transactions per second of `script`.
fn pgbench(url: &str, script: &str, seconds: u64, clients: u32) -> Result<f64> {
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), script)?;
    let out = Command::new(find_bindir()?.join("pgbench"))
        .args(["-n", "-M", "prepared", "-j", "2"])
        .args(["-c", &clients.to_string(), "-T", &seconds.to_string()])
        .arg("-f")
        .arg(file.path())
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
