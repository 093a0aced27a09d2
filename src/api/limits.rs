//! Request limits: failed sign-ins per account and per client address, and job creations
//! per user, answered 429 with `Retry-After` once reached (docs/api.md#limits).
//!
//! The counters are rows of `request_limits` (migrations/V11), so every API process on the
//! database sees the same ones. Each is a fixed window: it opens with the first request it
//! counts and lasts `api.sign_in_window_seconds` (a minute for job creations); one
//! statement (sql/count_requests.sql) counts a request and returns where its windows stand.
//!
//! A sign-in attempt is counted *before* its password is checked, against the account and
//! the address at once: so a burst of concurrent guesses can never get more than the limit
//! checked, a throttled attempt costs no argon2 verification, and an unknown email takes
//! exactly the path of a known one (the account key is the hash of whatever was typed).
//! A successful sign-in then clears the account's count and takes its attempt back from the
//! address's, which limits failures only (sql/sign_in_succeeded.sql).

use super::error::ApiError;
use crate::config::ApiConfig;
use crate::db::Session;
use crate::{db, sql};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The `kind`s of `request_limits` (its CHECK constraint lists the same).
const SIGN_IN_ACCOUNT: &str = "sign_in_account";
const SIGN_IN_IP: &str = "sign_in_ip";
const JOB_CREATE: &str = "job_create";

/// The message of every throttled sign-in, whichever limit it reached: the account's and
/// the address's are not told apart, nor known accounts from unknown ones.
const SIGN_IN_THROTTLED: &str = "too many failed sign-ins; wait before trying again";

/// The account key of a sign-in: the SHA-256 (hex) of the email as `users::by_email`
/// compares it (trimmed, case-insensitive), so every spelling of one address shares a
/// counter and no typed address is stored readable.
pub fn account_key(email: &str) -> String {
    hex::encode(Sha256::digest(email.trim().to_lowercase().as_bytes()))
}

/// A counter's state after a request was counted.
struct Counted {
    kind: String,
    hits: i64,
    seconds_left: f64,
}

/// Counts one request against each (kind, key) in windows of `window_seconds`, pruning a
/// few ended windows when this one opened a new window (the only time a row is added).
async fn count<C: Session>(
    client: &C,
    counters: &[(&str, String)],
    window_seconds: u64,
) -> Result<Vec<Counted>, ApiError> {
    let kinds: Vec<&str> = counters.iter().map(|(kind, _)| *kind).collect();
    let keys: Vec<&str> = counters.iter().map(|(_, key)| key.as_str()).collect();
    let rows = db::query(
        client,
        sql::COUNT_REQUESTS,
        &[&kinds, &keys, &(window_seconds as f64)],
    )
    .await?;
    let counted: Vec<Counted> = rows
        .iter()
        .map(|r| Counted {
            kind: r.get("kind"),
            hits: i64::from(r.get::<_, i32>("hits")),
            seconds_left: r.get("seconds_left"),
        })
        .collect();
    if counted.iter().any(|c| c.hits == 1) {
        db::execute(client, sql::PRUNE_REQUEST_LIMITS, &[]).await?;
    }
    Ok(counted)
}

/// The 429 for the counters past their limits (`limit_of` a kind; 0 is none), if any:
/// `Retry-After` is when the last of them ends, in whole seconds, at least 1.
fn over(
    counted: &[Counted],
    limit_of: impl Fn(&str) -> u64,
    message: &str,
) -> Result<(), ApiError> {
    let wait = counted
        .iter()
        .filter(|c| {
            let limit = limit_of(&c.kind);
            limit > 0 && c.hits > limit as i64
        })
        .map(|c| c.seconds_left)
        .reduce(f64::max);
    match wait {
        None => Ok(()),
        Some(seconds) => Err(ApiError::TooManyRequests {
            message: message.to_string(),
            retry_after_seconds: (seconds.ceil() as u64).max(1),
        }),
    }
}

/// A sign-in attempt, counted before its password is checked.
pub struct SignIn {
    account: String,
    ip: Option<String>,
}

impl SignIn {
    /// Counts an attempt at `email` from `ip`; 429 if the account or the address is over
    /// its limit, in which case the password must not be checked.
    pub async fn attempt<C: Session>(
        client: &C,
        config: &ApiConfig,
        email: &str,
        ip: Option<&str>,
    ) -> Result<SignIn, ApiError> {
        let attempt = SignIn {
            account: account_key(email),
            ip: ip.map(str::to_string),
        };
        let mut counters = Vec::new();
        if config.sign_in_failures_per_account > 0 {
            counters.push((SIGN_IN_ACCOUNT, attempt.account.clone()));
        }
        if config.sign_in_failures_per_ip > 0
            && let Some(ip) = &attempt.ip
        {
            counters.push((SIGN_IN_IP, ip.clone()));
        }
        if counters.is_empty() {
            return Ok(attempt);
        }
        let counted = count(client, &counters, config.sign_in_window_seconds).await?;
        let limit_of = |kind: &str| match kind {
            SIGN_IN_ACCOUNT => config.sign_in_failures_per_account,
            _ => config.sign_in_failures_per_ip,
        };
        if let Err(e) = over(&counted, limit_of, SIGN_IN_THROTTLED) {
            metrics::counter!("octavia_sign_ins_throttled_total").increment(1);
            tracing::info!("sign-in throttled");
            return Err(e);
        }
        Ok(attempt)
    }

    /// The password was right: the account's failures are forgiven and the address gets
    /// this attempt back.
    pub async fn succeeded<C: Session>(self, client: &C) -> Result<(), ApiError> {
        db::execute(client, sql::SIGN_IN_SUCCEEDED, &[&self.account, &self.ip]).await?;
        Ok(())
    }
}

/// Counts a `POST /api/jobs` of `user`; 429 past `api.job_creations_per_minute`.
pub async fn job_creation<C: Session>(
    client: &C,
    config: &ApiConfig,
    user: Uuid,
) -> Result<(), ApiError> {
    let limit = config.job_creations_per_minute;
    if limit == 0 {
        return Ok(());
    }
    let counted = count(client, &[(JOB_CREATE, user.to_string())], 60).await?;
    let message = format!("more than {limit} job creations in a minute");
    over(&counted, |_| limit, &message).inspect_err(|_| {
        metrics::counter!("octavia_job_creations_throttled_total").increment(1);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted(kind: &str, hits: i64, seconds_left: f64) -> Counted {
        Counted {
            kind: kind.into(),
            hits,
            seconds_left,
        }
    }

    #[test]
    fn every_spelling_of_an_email_shares_a_key_that_does_not_show_it() {
        let key = account_key(" Someone@Example.COM ");
        assert_eq!(key, account_key("someone@example.com"));
        assert_ne!(key, account_key("someone-else@example.com"));
        assert!(!key.contains("someone"));
        assert_eq!(key.len(), 64);
    }

    #[test]
    fn only_counters_past_their_limit_throttle_and_the_longest_wait_is_told() {
        let limit_of = |kind: &str| if kind == SIGN_IN_ACCOUNT { 30 } else { 100 };
        let under = [
            counted(SIGN_IN_ACCOUNT, 30, 50.0),
            counted(SIGN_IN_IP, 100, 9.0),
        ];
        assert!(over(&under, limit_of, "m").is_ok());
        let both = [
            counted(SIGN_IN_ACCOUNT, 31, 0.2),
            counted(SIGN_IN_IP, 101, 9.5),
        ];
        match over(&both, limit_of, "m") {
            Err(ApiError::TooManyRequests {
                retry_after_seconds,
                ..
            }) => assert_eq!(retry_after_seconds, 10),
            other => panic!("{other:?}"),
        }
        // A window about to end still says to wait a second, never 0.
        match over(&[counted(SIGN_IN_ACCOUNT, 31, 0.0)], limit_of, "m") {
            Err(ApiError::TooManyRequests {
                retry_after_seconds,
                ..
            }) => assert_eq!(retry_after_seconds, 1),
            other => panic!("{other:?}"),
        }
        assert!(over(&[counted(JOB_CREATE, 1000, 5.0)], |_| 0, "m").is_ok());
    }
}
