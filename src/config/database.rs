//! `[database]`: where PostgreSQL is and how processes connect to it.

use super::checks::{Invalid, positive};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: String,
    pub pool_size: u32,
    pub connect_timeout_seconds: u64,
    pub migrate_on_start: bool,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "postgres://postgres@127.0.0.1:5432/octavia".into(),
            pool_size: 16,
            connect_timeout_seconds: 5,
            migrate_on_start: true,
        }
    }
}

impl DatabaseConfig {
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        if self.url.parse::<tokio_postgres::Config>().is_err() {
            return Err((
                "database.url",
                format!("`{}` is not a PostgreSQL connection URL", self.url),
            ));
        }
        positive("database.pool_size", self.pool_size.into())?;
        positive(
            "database.connect_timeout_seconds",
            self.connect_timeout_seconds,
        )?;
        Ok(())
    }
}
