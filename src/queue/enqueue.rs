//! Inserting jobs, with their credit reservations, in the caller's transaction.

use crate::credits::{self, Reservation};
use crate::db;
use crate::error::Result;
use crate::sql;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use uuid::Uuid;

/// A job to insert.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Time-ordered (UUIDv7), so at equal priority older jobs are claimed first.
    pub id: Uuid,
    pub user_id: Option<Uuid>,
    pub project_id: Option<Uuid>,
    pub job_type: String,
    pub input_media_id: Option<Uuid>,
    /// Stored as `metadata.options`.
    pub options: serde_json::Value,
    /// Reserved from the user's balance now, refunded if the run fails or is cancelled.
    pub cost_credits: i64,
    pub priority: i16,
    /// Not before this instant (`None`: now, on the database clock).
    pub run_at: Option<DateTime<Utc>>,
    pub max_attempts: i32,
}

impl NewJob {
    pub fn new(job_type: &str, options: serde_json::Value) -> NewJob {
        NewJob {
            id: Uuid::now_v7(),
            user_id: None,
            project_id: None,
            job_type: job_type.to_string(),
            input_media_id: None,
            options,
            cost_credits: 0,
            priority: 0,
            run_at: None,
            max_attempts: 5,
        }
    }
}

/// Inserts `jobs` as queued, reserves their credits and wakes the workers, all in the
/// caller's transaction: if the balance does not cover them, nothing is inserted
/// ([`crate::Error::InsufficientCredits`], the transaction to be rolled back). Two
/// statements in all, whatever the number of jobs and users, plus one per paying user.
pub async fn insert<C: GenericClient + Sync>(client: &C, jobs: &[NewJob]) -> Result<()> {
    if jobs.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = jobs.iter().map(|j| j.id).collect();
    let users: Vec<Option<Uuid>> = jobs.iter().map(|j| j.user_id).collect();
    let projects: Vec<Option<Uuid>> = jobs.iter().map(|j| j.project_id).collect();
    let types: Vec<&str> = jobs.iter().map(|j| j.job_type.as_str()).collect();
    let inputs: Vec<Option<Uuid>> = jobs.iter().map(|j| j.input_media_id).collect();
    let metadata: Vec<serde_json::Value> = jobs
        .iter()
        .map(|j| serde_json::json!({ "options": j.options }))
        .collect();
    let costs: Vec<i64> = jobs.iter().map(|j| j.cost_credits).collect();
    let priorities: Vec<i16> = jobs.iter().map(|j| j.priority).collect();
    let run_at: Vec<Option<DateTime<Utc>>> = jobs.iter().map(|j| j.run_at).collect();
    let max_attempts: Vec<i32> = jobs.iter().map(|j| j.max_attempts).collect();
    db::execute(
        client,
        sql::INSERT_JOBS,
        &[
            &ids,
            &users,
            &projects,
            &types,
            &inputs,
            &metadata,
            &costs,
            &priorities,
            &run_at,
            &max_attempts,
        ],
    )
    .await?;
    let reservations: Vec<Reservation> = jobs
        .iter()
        .filter_map(|j| {
            Some(Reservation {
                user_id: j.user_id?,
                job_id: j.id,
                run: 1,
                amount: j.cost_credits,
            })
        })
        .collect();
    credits::reserve(client, &reservations).await?;
    Ok(())
}
