//! The library's error type.

use crate::config::ConfigError;

/// Errors of the library's own operations. Binaries wrap them with `anyhow`; the API maps
/// them to HTTP statuses; handlers have their own [`crate::worker::HandlerError`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database: {}", describe(.0))]
    Db(#[from] tokio_postgres::Error),
    #[error("database pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("migration failed: {0}")]
    Migrate(#[from] refinery::Error),
    #[error("storage: {}", chain(.0))]
    Storage(#[from] object_store::Error),
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    #[error("{0}")]
    Invalid(String),
    #[error("not enough credits: the price is {price}, the balance is {balance}")]
    InsufficientCredits { price: i64, balance: i64 },
    #[error("{0}")]
    Conflict(String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// A database error with the server's message (tokio-postgres' own Display says only
/// "db error").
pub fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut text = format!("{} ({})", db.message(), db.code().code());
            if let Some(detail) = db.detail() {
                text.push_str(": ");
                text.push_str(detail);
            }
            text
        }
        None => match std::error::Error::source(e) {
            Some(source) => format!("{e}: {source}"),
            None => e.to_string(),
        },
    }
}

/// An error with its causes: object_store's own message stops at "error sending
/// request", while the cause that tells an operator what to fix ("Connection refused", a
/// DNS failure, a TLS error) is further down the chain.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        // Wrappers often repeat their cause's text: keep each piece once.
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The SQLSTATE of a database error, to branch on (never on message text).
    pub fn sql_state(&self) -> Option<&tokio_postgres::error::SqlState> {
        match self {
            Error::Db(e) => e.code(),
            Error::Pool(deadpool_postgres::PoolError::Backend(e)) => e.code(),
            _ => None,
        }
    }
}
