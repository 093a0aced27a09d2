//! Users: creation with an argon2 password hash, lookup, password checks, fair shares.

use crate::credits;
use crate::db;
use crate::db::Session;
use crate::error::{Error, Result};
use crate::sql;
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use uuid::Uuid;

/// The roles of the seed data model.
pub const ROLES: &[&str] = &["user", "admin", "team"];

#[derive(Debug, Clone)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub password_hash: String,
    pub role: String,
    pub credits: i64,
}

/// Hashes a password to a PHC string (argon2id, random salt).
pub fn hash_password(password: &str) -> Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| Error::Invalid(format!("cannot hash the password: {e}")))
}

/// Whether `password` matches the stored PHC `hash`. A malformed hash matches nothing.
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Checks an email address well enough to catch typos of the operator; the address is
/// stored trimmed and lower-cased.
pub fn normalize_email(email: &str) -> Result<String> {
    let email = email.trim().to_lowercase();
    let valid = email.split_once('@').is_some_and(|(user, domain)| {
        !user.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
    }) && !email.contains(char::is_whitespace);
    if !valid {
        return Err(Error::Invalid(format!("`{email}` is not an email address")));
    }
    Ok(email)
}

/// Creates a user, with a `grant` of `credits` if positive. Fails with
/// [`Error::Conflict`] when the email is taken.
pub async fn create<C: Session>(
    client: &C,
    email: &str,
    password: &str,
    role: &str,
    credits: i64,
) -> Result<Uuid> {
    let email = normalize_email(email)?;
    if password.chars().count() < 8 {
        return Err(Error::Invalid(
            "the password must have at least 8 characters".into(),
        ));
    }
    if !ROLES.contains(&role) {
        return Err(Error::Invalid(format!(
            "`{role}` is not a role (one of {})",
            ROLES.join(", ")
        )));
    }
    if credits < 0 {
        return Err(Error::Invalid("credits cannot be negative".into()));
    }
    let hash = hash_password(password)?;
    let row = db::query_opt(client, sql::INSERT_USER, &[&email, &hash, &role]).await;
    let id: Uuid = match row {
        Ok(row) => row.expect("INSERT … RETURNING returns a row").get("id"),
        Err(e) if e.sql_state() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
            return Err(Error::Conflict(format!(
                "a user with email {email} already exists"
            )));
        }
        Err(e) => return Err(e),
    };
    if credits > 0 {
        credits::credit(client, id, credits, credits::GRANT).await?;
    }
    Ok(id)
}

/// A user by email, if there is one.
pub async fn by_email<C: Session>(client: &C, email: &str) -> Result<Option<User>> {
    Ok(db::query_opt(client, sql::USER_BY_EMAIL, &[&email.trim()])
        .await?
        .map(|r| User {
            id: r.get("id"),
            email: r.get("email"),
            password_hash: r.get("password_hash"),
            role: r.get("role"),
            credits: r.get("credits"),
        }))
}

/// A user's fair share of the fleet, as `set_share` left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    pub email: String,
    pub weight: i32,
    pub max_running_segments: Option<i32>,
}

/// Who [`set_share`] changes.
#[derive(Debug, Clone)]
pub enum Whom<'a> {
    Email(&'a str),
    /// Every user of the role, as they are now (users created later have weight 1 and no
    /// ceiling).
    Role(&'a str),
}

/// Sets the share weight (1 to 10,000) and the ceiling on leased segments (`Some(0)`: none)
/// of a user or of every user of a role, leaving what is `None` unchanged. Returns each user
/// changed: none when no user matched.
pub async fn set_share<C: Session>(
    client: &C,
    whom: Whom<'_>,
    weight: Option<i32>,
    max_running_segments: Option<i32>,
) -> Result<Vec<Share>> {
    if let Some(w) = weight
        && !(1..=10_000).contains(&w)
    {
        return Err(Error::Invalid(format!(
            "the share weight must be between 1 and 10000, not {w}"
        )));
    }
    if let Some(m) = max_running_segments
        && m < 0
    {
        return Err(Error::Invalid(format!(
            "the ceiling on running segments must be positive (or 0 for none), not {m}"
        )));
    }
    if let Whom::Role(r) = whom
        && !ROLES.contains(&r)
    {
        return Err(Error::Invalid(format!(
            "`{r}` is not a role (roles: {})",
            ROLES.join(", ")
        )));
    }
    let (email, role) = match whom {
        Whom::Email(e) => (Some(e), None),
        Whom::Role(r) => (None, Some(r)),
    };
    let rows = db::query(
        client,
        sql::SET_USER_SHARE,
        &[&email, &role, &weight, &max_running_segments],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| Share {
            email: r.get("email"),
            weight: r.get("share_weight"),
            max_running_segments: r.get("max_running_segments"),
        })
        .collect())
}
