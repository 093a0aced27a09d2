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
    /// libpq's TLS parameters, for a URL that does not carry them (see `crate::db::tls`).
    pub sslmode: String,
    pub sslrootcert: String,
    pub sslcert: String,
    pub sslkey: String,
    /// What stands between the processes and PostgreSQL ([`Pooler`]).
    pub pooler: Pooler,
    /// A URL to PostgreSQL itself, past the pooler, for what a transaction pooler cannot
    /// carry: LISTEN (worker wake-ups, the API's event streams) and the migrations'
    /// advisory lock. Empty: `url`.
    pub direct_url: String,
}

/// What `database.url` leads to.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Pooler {
    /// PostgreSQL itself, or a pooler in session mode (a server connection per client
    /// connection, kept until it closes): everything works as on a direct connection.
    #[default]
    None,
    /// A pooler in transaction mode (PgBouncer's `pool_mode = transaction`, Supavisor,
    /// pgcat, RDS Proxy): a server connection per transaction. Statements are sent
    /// unnamed, session settings are made with `SET LOCAL` in each transaction, and LISTEN
    /// and migrations go through `direct_url` (without it there is no LISTEN: workers
    /// poll, event streams re-read).
    Transaction,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "postgres://postgres@127.0.0.1:5432/octavia".into(),
            pool_size: 16,
            connect_timeout_seconds: 5,
            migrate_on_start: true,
            sslmode: String::new(),
            sslrootcert: String::new(),
            sslcert: String::new(),
            sslkey: String::new(),
            pooler: Pooler::None,
            direct_url: String::new(),
        }
    }
}

impl DatabaseConfig {
    /// `url` with this section's TLS settings added where the URL has none: what every
    /// connection of the process uses.
    pub fn connection_url(&self) -> String {
        self.with_tls(&self.url)
    }

    /// Where LISTEN connects: `direct_url`, else `url` unless that is a transaction
    /// pooler, which cannot deliver notifications (`None`: poll instead).
    pub fn listen_url(&self) -> Option<String> {
        if !self.direct_url.is_empty() {
            Some(self.with_tls(&self.direct_url))
        } else if self.pooler == Pooler::Transaction {
            None
        } else {
            Some(self.connection_url())
        }
    }

    /// Where migrations connect, holding a session's advisory lock: `direct_url`, else
    /// `url` unless that is a transaction pooler.
    pub fn migration_url(&self) -> crate::Result<String> {
        self.listen_url().ok_or_else(|| {
            crate::Error::Invalid(
                "database.direct_url: migrations hold a session's advisory lock, which a \
                 transaction pooler cannot carry; set it to PostgreSQL itself (past the \
                 pooler), or migrate with `octavia migrate` against such a URL"
                    .into(),
            )
        })
    }

    /// `url` with this section's TLS settings added where it has none.
    fn with_tls(&self, url: &str) -> String {
        let (_, given) = crate::db::tls::split(url).unwrap_or_default();
        let mut url = url.to_string();
        let uri = url.starts_with("postgres://") || url.starts_with("postgresql://");
        for (key, value, in_url) in [
            ("sslmode", &self.sslmode, &given.sslmode),
            ("sslrootcert", &self.sslrootcert, &given.sslrootcert),
            ("sslcert", &self.sslcert, &given.sslcert),
            ("sslkey", &self.sslkey, &given.sslkey),
        ] {
            if value.is_empty() || in_url.is_some() {
                continue;
            }
            if uri {
                let sep = if url.contains('?') { '&' } else { '?' };
                let encoded: String = value
                    .bytes()
                    .map(|b| match b {
                        b'A'..=b'Z'
                        | b'a'..=b'z'
                        | b'0'..=b'9'
                        | b'-'
                        | b'_'
                        | b'.'
                        | b'~'
                        | b'/' => (b as char).to_string(),
                        b => format!("%{b:02X}"),
                    })
                    .collect();
                url.push_str(&format!("{sep}{key}={encoded}"));
            } else {
                let quoted = value.replace('\\', "\\\\").replace('\'', "\\'");
                url.push_str(&format!(" {key}='{quoted}'"));
            }
        }
        url
    }

    pub(super) fn validate(&self) -> Result<(), Invalid> {
        for (key, url) in [
            ("database.url", &self.url),
            ("database.direct_url", &self.direct_url),
        ] {
            if url.is_empty() && key == "database.direct_url" {
                continue;
            }
            let (rest, _) =
                crate::db::tls::split(&self.with_tls(url)).map_err(|e| (key, e.to_string()))?;
            if rest.parse::<tokio_postgres::Config>().is_err() {
                return Err((key, format!("`{url}` is not a PostgreSQL connection URL")));
            }
        }
        let (_, tls) = crate::db::tls::split(&self.connection_url())
            .map_err(|e| ("database.url", e.to_string()))?;
        if let Some(mode) = &tls.sslmode {
            crate::db::tls::SslMode::parse(mode)
                .map_err(|e| ("database.sslmode", e.to_string()))?;
        }
        positive("database.pool_size", self.pool_size.into())?;
        positive(
            "database.connect_timeout_seconds",
            self.connect_timeout_seconds,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sections_tls_settings_fill_in_what_the_url_does_not_say() {
        let config = DatabaseConfig {
            url: "postgres://u@db/app?sslmode=require".into(),
            sslmode: "verify-full".into(),
            sslrootcert: "/etc/ssl/our ca.pem".into(),
            ..DatabaseConfig::default()
        };
        assert_eq!(
            config.connection_url(),
            "postgres://u@db/app?sslmode=require&sslrootcert=/etc/ssl/our%20ca.pem",
            "the URL's own sslmode wins"
        );
        let config = DatabaseConfig {
            url: "host=db user=u".into(),
            sslmode: "verify-ca".into(),
            sslrootcert: "system".into(),
            ..DatabaseConfig::default()
        };
        assert_eq!(
            config.connection_url(),
            "host=db user=u sslmode='verify-ca' sslrootcert='system'"
        );
        let (rest, tls) = crate::db::tls::split(&config.connection_url()).unwrap();
        assert_eq!(rest, "host=db user=u");
        assert_eq!(tls.sslrootcert.as_deref(), Some("system"));
        assert!(config.validate().is_ok());
        let bad = DatabaseConfig {
            sslmode: "sometimes".into(),
            ..DatabaseConfig::default()
        };
        assert_eq!(bad.validate().unwrap_err().0, "database.sslmode");
    }
}
