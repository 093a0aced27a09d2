//! The library's error type.

use crate::config::ConfigError;

/// Errors of the library's own operations. Binaries wrap them with `anyhow`; the API maps
/// them to HTTP statuses; handlers have their own [`crate::worker::HandlerError`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("database pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("migration failed: {0}")]
    Migrate(#[from] refinery::Error),
    #[error("storage: {0}")]
    Storage(#[from] object_store::Error),
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
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
