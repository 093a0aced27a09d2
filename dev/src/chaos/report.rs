//! What a scenario observed, the end-of-run checks that fill it from the database, and
//! its short human summary.

use crate::sql;
use octavia::error::Result;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write;
use uuid::Uuid;

/// A scenario's outcome. `violations` is empty when every promise held.
#[derive(Debug, Default, Serialize)]
pub struct ChaosReport {
    pub scenario: String,
    /// Wall time of the whole scenario.
    pub seconds: f64,
    pub jobs_by_status: BTreeMap<String, i64>,
    pub segments_by_status: BTreeMap<String, i64>,
    pub segments: SegmentFigures,
    /// Every fault, in order, with how long things took to recover after it.
    pub faults: Vec<FaultRecord>,
    /// What a client of the API saw, when the scenario runs one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api: Option<ApiFigures>,
    /// Every user's balance against their ledger.
    pub ledgers: Vec<Ledger>,
    /// From the last fault's end until every job had ended.
    pub seconds_to_settle: f64,
    /// Promise violations.
    pub violations: Vec<String>,
    /// Where the processes' logs were kept (only when something was violated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logs: Option<String>,
}

/// Segments that ran more than once, and why.
#[derive(Debug, Default, Serialize)]
pub struct SegmentFigures {
    pub total: i64,
    /// Attempts beyond the first, all causes.
    pub extra_attempts: i64,
    /// Segments that ran more than once.
    pub rerun: usize,
    /// Segments leased when a fault struck: each may run once more.
    pub in_flight_at_faults: usize,
    /// Segments that ran more than once without a fault catching them in flight: retried
    /// after a failed attempt (simulated failures, an unreachable store).
    pub rerun_not_in_flight: usize,
}

/// One fault.
#[derive(Debug, Serialize)]
pub struct FaultRecord {
    /// `sigkill`, `pg_restart` (`pg_ctl restart -m fast`), `pg_crash` (stopped with
    /// `-m immediate`, started again after the outage), `terminate_backends`,
    /// `storage_stop` (started again after the outage), `storage_gone` (never again).
    pub kind: &'static str,
    /// Seconds from the scenario's start.
    pub at_seconds: f64,
    /// How long the fault lasted: 0 for an instant one (a kill, a terminate).
    pub outage_seconds: f64,
    /// Segments leased when it struck.
    pub in_flight: usize,
    pub recovery: Recovery,
}

/// Times to recover, each from the fault's end; `None` when not measured or never seen.
#[derive(Debug, Default, Serialize)]
pub struct Recovery {
    /// Until the first segment or job completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_completion_seconds: Option<f64>,
    /// Until the API's first 2xx answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_2xx_seconds: Option<f64>,
    /// Until every worker and API process was LISTENing again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listeners_seconds: Option<f64>,
    /// Until every segment a killed worker held had completed elsewhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub work_back_seconds: Option<f64>,
}

/// What the scenario's API client saw.
#[derive(Debug, Default, Serialize)]
pub struct ApiFigures {
    /// Authenticated requests (GET /api/me) sent while faults came and went.
    pub probes: usize,
    pub ok: usize,
    /// 503 with the JSON error `unavailable`: the promised answer during an outage.
    pub unavailable: usize,
    /// Anything else (another status, a body off its schema, no answer): violations.
    pub unexpected: usize,
    /// Jobs created with POST /api/jobs, each under an Idempotency-Key of its own.
    pub jobs_created: usize,
    /// Creations sent again with the same key after a 503 or a lost connection.
    pub creations_retried: usize,
    /// Of those, answered with the job an earlier try had created (Idempotent-Replayed).
    pub replays: usize,
}

/// One user's ledger check.
#[derive(Debug, Serialize)]
pub struct Ledger {
    pub email: String,
    pub balance: i64,
    pub ledger_sum: i64,
    pub reservations: i64,
    pub refunds: i64,
    pub balanced: bool,
}

impl ChaosReport {
    pub fn new(scenario: &str) -> ChaosReport {
        ChaosReport {
            scenario: scenario.to_string(),
            ..ChaosReport::default()
        }
    }

    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }

    /// Fills the end-of-run figures from the database: statuses, re-runs (against
    /// `in_flight`, every segment leased when a fault struck), ledgers; adds the ledger
    /// problems to the violations.
    pub(crate) async fn tally(
        &mut self,
        client: &deadpool_postgres::Object,
        in_flight: &HashSet<Uuid>,
    ) -> Result<()> {
        for row in octavia::db::query(client, octavia::sql::QUEUE_STATS, &[]).await? {
            let kind: &str = row.get(0);
            let name: String = row.get::<_, Option<String>>(1).unwrap_or_default();
            let n: i64 = row.get::<_, Option<i64>>(2).unwrap_or(0);
            match kind {
                "jobs" => {
                    self.jobs_by_status.insert(name, n);
                }
                "segments" => {
                    self.segments_by_status.insert(name, n);
                }
                _ => {}
            }
        }
        self.segments.total = self.segments_by_status.values().sum();
        self.segments.extra_attempts = octavia::db::query(client, sql::EXTRA_ATTEMPTS, &[])
            .await?
            .first()
            .map(|r| r.get::<_, i64>(0))
            .unwrap_or(0);
        let rerun: Vec<Uuid> = octavia::db::query(client, sql::RERUN_SEGMENTS, &[])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        self.segments.rerun = rerun.len();
        self.segments.in_flight_at_faults = in_flight.len();
        self.segments.rerun_not_in_flight =
            rerun.iter().filter(|id| !in_flight.contains(id)).count();
        for row in octavia::db::query(client, sql::LEDGER_BY_USER, &[]).await? {
            let (balance, ledger_sum): (i64, i64) = (row.get(1), row.get(2));
            self.ledgers.push(Ledger {
                email: row.get(0),
                balance,
                ledger_sum,
                reservations: row.get(3),
                refunds: row.get(4),
                balanced: balance == ledger_sum && balance >= 0,
            });
        }
        self.violations.extend(super::check_ledgers(client).await?);
        Ok(())
    }

    /// A few lines for people: the outcome, the jobs, the segments, each fault's
    /// recovery, the ledgers and the violations.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let verdict = if self.ok() {
            "every promise held".to_string()
        } else {
            format!("{} PROMISE VIOLATIONS", self.violations.len())
        };
        let _ = writeln!(
            s,
            "chaos {}: {verdict} ({:.1} s)",
            self.scenario, self.seconds
        );
        let _ = writeln!(s, "  jobs:     {}", counts(&self.jobs_by_status));
        let g = &self.segments;
        let _ = writeln!(
            s,
            "  segments: {} ({}); run again: {} ({} in flight at a fault, {} after a failed \
             attempt); extra attempts {}",
            g.total,
            counts(&self.segments_by_status),
            g.rerun,
            g.rerun - g.rerun_not_in_flight,
            g.rerun_not_in_flight,
            g.extra_attempts
        );
        if let Some(api) = &self.api {
            let _ = writeln!(
                s,
                "  api:      {} probes: {} ok, {} answered 503 JSON, {} unexpected; {} jobs \
                 created, {} creations retried ({} replayed)",
                api.probes,
                api.ok,
                api.unavailable,
                api.unexpected,
                api.jobs_created,
                api.creations_retried,
                api.replays
            );
        }
        let _ = writeln!(s, "  faults:   {}", self.faults.len());
        for f in &self.faults {
            let mut recovered = Vec::new();
            let r = &f.recovery;
            for (what, v) in [
                ("first completion", r.first_completion_seconds),
                ("API 2xx", r.api_2xx_seconds),
                ("listeners", r.listeners_seconds),
                ("work back", r.work_back_seconds),
            ] {
                if let Some(v) = v {
                    recovered.push(format!("{what} {v:.2} s"));
                }
            }
            let _ = writeln!(
                s,
                "    {:<18} at {:>6.1} s, down {:.2} s, {:>3} in flight -> {}",
                f.kind,
                f.at_seconds,
                f.outage_seconds,
                f.in_flight,
                if recovered.is_empty() {
                    "no recovery measured".to_string()
                } else {
                    recovered.join(", ")
                }
            );
        }
        let balanced = self.ledgers.iter().filter(|l| l.balanced).count();
        let _ = writeln!(
            s,
            "  ledgers:  {balanced}/{} users balanced",
            self.ledgers.len()
        );
        let _ = writeln!(
            s,
            "  settled:  {:.1} s after the faults",
            self.seconds_to_settle
        );
        for v in self.violations.iter().take(20) {
            let _ = writeln!(s, "  VIOLATION: {v}");
        }
        if let Some(logs) = &self.logs {
            let _ = writeln!(s, "  logs kept in {logs}");
        }
        s
    }
}

fn counts(by: &BTreeMap<String, i64>) -> String {
    if by.is_empty() {
        return "none".into();
    }
    by.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
