//! Creating jobs, with their credit reservations: the paid, idempotent creation of
//! `POST /api/jobs` ([`create`]), and bulk inserts for operators and tools ([`insert`],
//! [`insert_many`]).

use crate::credits::{self, Reservation};
use crate::db;
use crate::db::Session;
use crate::error::Result;
use crate::job::JobView;
use crate::sql;
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use futures_util::{StreamExt, TryStreamExt};
use tokio_postgres::error::SqlState;
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
pub async fn insert<C: Session>(client: &C, jobs: &[NewJob]) -> Result<()> {
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

/// Jobs per transaction of [`insert_many`].
const CHUNK: usize = 10_000;
/// Transactions of [`insert_many`] written at once, each on a connection of its own: one
/// chunk's statement keeps one PostgreSQL backend busy, and a machine has more than one
/// core (two at once: 59,500–65,100 jobs/s against 37,200–40,200 one at a time).
const CHUNKS_AT_ONCE: usize = 2;

/// Inserts `count` jobs, each made by `make`, in chunks of [`CHUNK`] jobs, each chunk a
/// transaction of its own ([`insert`]), [`CHUNKS_AT_ONCE`] at a time. A chunk the balance
/// does not cover fails the call ([`crate::Error::InsufficientCredits`]); chunks already
/// committed stay.
pub async fn insert_many(pool: &Pool, count: usize, make: impl Fn() -> NewJob) -> Result<()> {
    let make = &make;
    let sizes = (0..count)
        .step_by(CHUNK)
        .map(|start| (count - start).min(CHUNK));
    futures_util::stream::iter(sizes)
        .map(|n| async move {
            let jobs: Vec<NewJob> = (0..n).map(|_| make()).collect();
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            insert(&tx, &jobs).await?;
            tx.commit().await?;
            Ok::<_, crate::Error>(())
        })
        .buffer_unordered(CHUNKS_AT_ONCE)
        .try_collect::<()>()
        .await
}

/// A job bought through the API: priced by the caller and paid for from its owner's
/// balance by the statement that creates it.
#[derive(Debug, Clone, Copy)]
pub struct PaidJob<'a> {
    /// Time-ordered (UUIDv7), as for [`NewJob::id`].
    pub id: Uuid,
    pub user_id: Uuid,
    pub project_id: Option<Uuid>,
    pub job_type: &'a str,
    pub input_media_id: Option<Uuid>,
    /// Stored as `metadata.options`.
    pub options: &'a serde_json::Value,
    pub cost_credits: i64,
    pub max_attempts: i32,
    /// The request's Idempotency-Key and the hash of what it asked for.
    pub idempotency: Option<Idempotency<'a>>,
    /// The W3C traceparent of the request, which the job's attempts continue.
    pub traceparent: Option<&'a str>,
}

/// An Idempotency-Key and the hash of the request that came with it.
#[derive(Debug, Clone, Copy)]
pub struct Idempotency<'a> {
    pub key: &'a str,
    pub request_hash: &'a [u8],
}

/// What [`create`] did.
#[derive(Debug)]
pub enum Created {
    /// The job was created, queued and paid for.
    Job(Box<JobView>),
    /// The balance does not cover the price: nothing was written.
    ShortOfCredits,
    /// The Idempotency-Key was used already (by a concurrent request that committed
    /// first): nothing was written; [`keyed`] tells what it was used for.
    KeyTaken,
}

/// Creates a paid job in one statement, its own transaction (`sql/create_job.sql`): the
/// debit, the Idempotency-Key, the job `queued` and its `job_reserve` ledger row, or
/// nothing. It wakes no worker: the caller does once it has committed
/// ([`super::waker::Waker`]), so creations do not queue on PostgreSQL's notification lock.
pub async fn create<C: Session>(client: &C, job: &PaidJob<'_>) -> Result<Created> {
    let metadata = serde_json::json!({ "options": job.options });
    let key = job.idempotency.map(|i| i.key);
    let hash = job.idempotency.map(|i| i.request_hash);
    let created = db::query_opt(
        client,
        sql::CREATE_JOB,
        &[
            &job.id,
            &job.user_id,
            &job.project_id,
            &job.job_type,
            &job.input_media_id,
            &metadata,
            &job.cost_credits,
            &job.max_attempts,
            &key,
            &hash,
            &job.traceparent,
        ],
    )
    .await;
    match created {
        Ok(Some(row)) => Ok(Created::Job(Box::new(JobView::from_row(&row)))),
        Ok(None) => Ok(Created::ShortOfCredits),
        Err(e) if key.is_some() && e.sql_state() == Some(&SqlState::UNIQUE_VIOLATION) => {
            Ok(Created::KeyTaken)
        }
        Err(e) => Err(e),
    }
}

/// What an Idempotency-Key was used for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyed {
    /// The hash of the request that first came with the key.
    pub request_hash: Vec<u8>,
    /// The job it created.
    pub job_id: Uuid,
}

/// What `user`'s Idempotency-Key `key` was used for, if it was.
pub async fn keyed<C: Session>(client: &C, user: Uuid, key: &str) -> Result<Option<Keyed>> {
    Ok(db::query_opt(client, sql::IDEMPOTENCY_KEY, &[&user, &key])
        .await?
        .map(|r| Keyed {
            request_hash: r.get("request_hash"),
            job_id: r.get("job_id"),
        }))
}
