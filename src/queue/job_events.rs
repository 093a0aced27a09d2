//! Announcing the worker's changes of jobs' status and progress to the API's event
//! streams (`octavia_job_events`, see `crate::api::events`), after they commit.
//!
//! A trigger on `jobs` notifies each change from inside its transaction, but the worker's
//! queue sessions turn it off (`octavia.job_events = 'deferred'`, migration V6): a
//! notification makes its transaction take PostgreSQL's one notification lock at commit
//! and hold it through the commit, so the worker's concurrent writers (claims, segment and
//! plan completions) would commit one after another, and the trigger's function would run
//! once per row. The worker hands the jobs it wrote to a [`Publisher`] instead, which
//! sends them from a task of its own, many ids per notification, folding in every id
//! handed over while it is sending. A notification lost with the process (or sent for a
//! job that did not change) costs nothing: every stream re-reads its job every few
//! seconds, and re-reading an unchanged job sends nothing.

use crate::db;
use crate::sql;
use deadpool_postgres::Pool;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The session option that turns the trigger off for a connection's statements.
pub const DEFERRED: &str = "-c octavia.job_events=deferred";

/// Job ids per notification: 200 of 36 characters and their commas stay well inside
/// NOTIFY's 8,000-byte payload.
const IDS_PER_NOTIFICATION: usize = 200;

/// What is to be announced, and the wake-up of [`Publisher::run`]; cloning is cheap.
#[derive(Clone, Default)]
pub struct Publisher {
    pending: Arc<Mutex<HashSet<Uuid>>>,
    asked: Arc<Notify>,
}

impl Publisher {
    /// Sends what is handed over until `stop` is cancelled, then what is left, once.
    pub async fn run(&self, pool: Pool, stop: CancellationToken) {
        super::waker::send_when_asked(&self.asked, &stop, || async {
            let ids = self.take();
            if !ids.is_empty()
                && let Err(e) = send(&pool, &ids).await
            {
                tracing::warn!(error = %e, jobs = ids.len(),
                    "could not announce job changes; event streams will poll");
            }
        })
        .await
    }

    /// Announces that these jobs changed; call it once the change is committed.
    pub fn publish(&self, jobs: impl IntoIterator<Item = Uuid>) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let before = pending.len();
        pending.extend(jobs);
        if pending.len() > before {
            self.asked.notify_one();
        }
    }

    fn take(&self) -> Vec<Uuid> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.drain().collect()
    }
}

/// The ids as payloads of [`IDS_PER_NOTIFICATION`] comma-separated ids each.
fn payloads(ids: &[Uuid]) -> Vec<String> {
    ids.chunks(IDS_PER_NOTIFICATION)
        .map(|chunk| {
            chunk
                .iter()
                .map(Uuid::to_string)
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect()
}

/// One statement, so one transaction, for all of them.
async fn send(pool: &Pool, ids: &[Uuid]) -> crate::error::Result<()> {
    let client = pool.get().await?;
    db::query(&client, sql::NOTIFY_JOB_EVENTS, &[&payloads(ids)]).await?;
    Ok(())
}

/// The ids of a payload, whether one id (the trigger's) or several (a [`Publisher`]'s);
/// anything that is not an id is left out.
pub fn parse(payload: &str) -> impl Iterator<Item = Uuid> + '_ {
    payload.split(',').filter_map(|id| id.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_fit_a_notification_and_parse_back() {
        let ids: Vec<Uuid> = (0..450).map(|_| Uuid::now_v7()).collect();
        let payloads = payloads(&ids);
        assert_eq!(payloads.len(), 3);
        assert!(payloads.iter().all(|p| p.len() < 8000));
        let back: Vec<Uuid> = payloads.iter().flat_map(|p| parse(p)).collect();
        assert_eq!(back, ids);
        let one = ids[0].to_string();
        assert_eq!(parse(&one).collect::<Vec<_>>(), vec![ids[0]]);
        assert_eq!(parse("not an id").count(), 0);
    }
}
