//! Connections: the pooled ones every process uses, and single ones for LISTEN and
//! migrations.

use crate::config::DatabaseConfig;
use crate::error::{Error, Result};
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use std::time::Duration;
use tokio_postgres::Client;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

pub mod tls;

/// A pool of `pool_size` connections. Statements prepared with `prepare_cached` stay
/// prepared on each connection for its lifetime.
pub fn pool(config: &DatabaseConfig) -> Result<Pool> {
    pool_with(config, config.pool_size, None)
}

/// A pool of `size` connections whose sessions start with the given server `options`
/// (e.g. `-c synchronous_commit=off`).
pub fn pool_with(config: &DatabaseConfig, size: u32, options: Option<&str>) -> Result<Pool> {
    let tls::Target {
        config: mut pg,
        tls,
    } = tls::target(&config.connection_url())
        .map_err(|e| Error::Invalid(format!("database.url: {e}")))?;
    pg.connect_timeout(Duration::from_secs(config.connect_timeout_seconds));
    if pg.get_application_name().is_none() {
        pg.application_name("octavia");
    }
    if let Some(options) = options {
        pg.options(options);
    }
    let manager = Manager::from_config(
        pg,
        tls,
        ManagerConfig {
            // A broken connection is noticed by the query that uses it and replaced; checking
            // each one on checkout would cost a round trip per query.
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size as usize)
        .runtime(Runtime::Tokio1)
        .create_timeout(Some(Duration::from_secs(config.connect_timeout_seconds)))
        .wait_timeout(Some(Duration::from_secs(30)))
        .build()
        .map_err(|e| Error::Invalid(format!("database pool: {e}")))
}

/// One connection outside the pool, its driver running on a task that ends with it.
/// `url` may carry libpq's TLS parameters ([`tls`]).
pub async fn connect(url: &str) -> Result<Client> {
    let tls::Target { config, tls } = tls::target(url)?;
    let (client, connection) = config.connect(tls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "database connection closed");
        }
    });
    Ok(client)
}

/// Runs a statement of `sql/`, prepared once per connection and cached there.
pub async fn query<C: GenericClient + Sync>(
    client: &C,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>> {
    let statement = client.prepare_cached(sql).await?;
    Ok(client.query(&statement, params).await?)
}

/// [`query`] for statements returning at most one row.
pub async fn query_opt<C: GenericClient + Sync>(
    client: &C,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Option<Row>> {
    let statement = client.prepare_cached(sql).await?;
    Ok(client.query_opt(&statement, params).await?)
}

/// [`query`] for statements whose rows are not needed; returns how many rows changed.
pub async fn execute<C: GenericClient + Sync>(
    client: &C,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64> {
    let statement = client.prepare_cached(sql).await?;
    Ok(client.execute(&statement, params).await?)
}
