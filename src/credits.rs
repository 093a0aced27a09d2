//! Credits: the reservation a job run takes when it is created or retried, the refund it
//! gets back exactly once when the run ends failed or cancelled, and grants and purchases.
//!
//! Every balance change writes its `credits_history` row in the same transaction, so for
//! every user `users.credits` equals the sum of their ledger's deltas; `users.credits`
//! cannot go below zero (a CHECK constraint). A run has at most one reservation and one
//! refund: the unique index `credits_history_job_run_key` makes a second one impossible.

use crate::db;
use crate::db::Session;
use crate::error::{Error, Result};
use crate::sql;
use uuid::Uuid;

/// `credits_history.reason` values.
pub const RESERVE: &str = "job_reserve";
pub const REFUND: &str = "job_refund";
pub const GRANT: &str = "grant";
pub const PURCHASE: &str = "purchase";

/// One job run's reservation.
#[derive(Debug, Clone, Copy)]
pub struct Reservation {
    pub user_id: Uuid,
    pub job_id: Uuid,
    pub run: i32,
    pub amount: i64,
}

/// Takes `amount` from the user's balance, or fails with
/// [`Error::InsufficientCredits`] and changes nothing. Call inside the transaction that
/// writes what the credits pay for.
pub async fn debit<C: Session>(client: &C, user_id: Uuid, amount: i64) -> Result<i64> {
    if let Some(row) = db::query_opt(client, sql::DEBIT_USER, &[&user_id, &amount]).await? {
        return Ok(row.get("credits"));
    }
    Err(Error::InsufficientCredits {
        price: amount,
        balance: balance(client, user_id).await?,
    })
}

/// The user's balance, or [`Error::NotFound`] when there is no such user.
pub async fn balance<C: Session>(client: &C, user_id: Uuid) -> Result<i64> {
    db::query_opt(client, sql::USER_BALANCE, &[&user_id])
        .await?
        .map(|r| r.get::<_, Option<i64>>("credits").unwrap_or(0))
        .ok_or_else(|| Error::NotFound {
            what: "user",
            id: user_id.to_string(),
        })
}

/// Reserves credits for job runs: debits each user once for the total of their runs and
/// writes one `job_reserve` row per run. The jobs must exist (same transaction is fine).
/// Free runs (amount 0) are not written.
pub async fn reserve<C: Session>(client: &C, runs: &[Reservation]) -> Result<()> {
    let paid: Vec<&Reservation> = runs.iter().filter(|r| r.amount > 0).collect();
    if paid.is_empty() {
        return Ok(());
    }
    let mut per_user: Vec<(Uuid, i64)> = Vec::new();
    for r in &paid {
        match per_user.iter_mut().find(|(u, _)| *u == r.user_id) {
            Some((_, total)) => *total += r.amount,
            None => per_user.push((r.user_id, r.amount)),
        }
    }
    // Users in id order: concurrent reservations for several users cannot deadlock.
    per_user.sort();
    for (user, total) in per_user {
        debit(client, user, total).await?;
    }
    let users: Vec<Uuid> = paid.iter().map(|r| r.user_id).collect();
    let deltas: Vec<i64> = paid.iter().map(|r| -r.amount).collect();
    let reasons: Vec<&str> = vec![RESERVE; paid.len()];
    let jobs: Vec<Uuid> = paid.iter().map(|r| r.job_id).collect();
    let job_runs: Vec<i32> = paid.iter().map(|r| r.run).collect();
    db::execute(
        client,
        sql::INSERT_CREDIT_ENTRIES,
        &[&users, &deltas, &reasons, &jobs, &job_runs],
    )
    .await?;
    Ok(())
}

/// Refunds the reservations of these (job, run) pairs, each at most once however often it
/// is called. Returns the total given back.
pub async fn refund<C: Session>(client: &C, runs: &[(Uuid, i32)]) -> Result<i64> {
    if runs.is_empty() {
        return Ok(0);
    }
    let jobs: Vec<Uuid> = runs.iter().map(|(j, _)| *j).collect();
    let run_numbers: Vec<i32> = runs.iter().map(|(_, r)| *r).collect();
    let rows = db::query(client, sql::REFUND_JOBS, &[&jobs, &run_numbers]).await?;
    Ok(rows.iter().map(|r| r.get::<_, i64>("total")).sum())
}

/// Adds credits to a user's balance with a ledger row (`grant` by an operator, `purchase`
/// from a payment). Returns the new balance.
pub async fn credit<C: Session>(
    client: &C,
    user_id: Uuid,
    amount: i64,
    reason: &str,
) -> Result<i64> {
    let balance: i64 = db::query_opt(client, sql::CREDIT_USER, &[&user_id, &amount])
        .await?
        .ok_or_else(|| Error::NotFound {
            what: "user",
            id: user_id.to_string(),
        })?
        .get("credits");
    let no_job: Vec<Option<Uuid>> = vec![None];
    let no_run: Vec<Option<i32>> = vec![None];
    db::execute(
        client,
        sql::INSERT_CREDIT_ENTRIES,
        &[
            &vec![user_id],
            &vec![amount],
            &vec![reason],
            &no_job,
            &no_run,
        ],
    )
    .await?;
    Ok(balance)
}
