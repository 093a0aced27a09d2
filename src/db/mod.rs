//! Connections: the pooled ones every process uses, and single ones for LISTEN and
//! migrations; and the way statements of `sql/` run on them ([`query`]).

use crate::config::DatabaseConfig;
use crate::config::Pooler;
use crate::error::{Error, Result};
use deadpool_postgres::{
    GenericClient, Hook, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, StatementCache,
};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::Client;
use tokio_postgres::Row;
use tokio_postgres::types::{ToSql, Type};

mod pooled;
pub mod tls;

/// A pool of `pool_size` connections. Statements prepared with `prepare_cached` stay
/// prepared on each connection for its lifetime.
pub fn pool(config: &DatabaseConfig) -> Result<Pool> {
    pool_with(config, config.pool_size, None)
}

/// A pool of `size` connections whose sessions start with the given server `options`
/// (e.g. `-c synchronous_commit=off`); behind a transaction pooler, [`query`] makes them
/// in each transaction instead.
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
    let behind_pooler = config.pooler == Pooler::Transaction;
    if let (Some(options), false) = (options, behind_pooler) {
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
    let mut builder = Pool::builder(manager)
        .max_size(size as usize)
        .runtime(Runtime::Tokio1)
        .create_timeout(Some(Duration::from_secs(config.connect_timeout_seconds)))
        .wait_timeout(Some(Duration::from_secs(30)));
    if behind_pooler {
        let mode = Arc::new(pooled::Mode::new(options));
        builder = builder.post_create(Hook::sync_fn(move |client, _| {
            pooled::register(&client.statement_cache, &mode);
            Ok(())
        }));
    }
    builder
        .build()
        .map_err(|e| Error::Invalid(format!("database pool: {e}")))
}

/// What the statements of `sql/` run on: a pooled connection, or a transaction on one.
pub trait Session: GenericClient {
    #[doc(hidden)]
    fn statement_cache(&self) -> &Arc<StatementCache>;
    #[doc(hidden)]
    fn in_transaction(&self) -> bool;
    /// Runs `sql` as an unnamed statement with parameters of the types given; returns its
    /// rows and how many it changed.
    #[doc(hidden)]
    fn run_typed(
        &self,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> impl Future<Output = std::result::Result<(Vec<Row>, u64), tokio_postgres::Error>> + Send;
    #[doc(hidden)]
    fn simple(
        &self,
        sql: &str,
    ) -> impl Future<
        Output = std::result::Result<
            Vec<tokio_postgres::SimpleQueryMessage>,
            tokio_postgres::Error,
        >,
    > + Send;
}

/// The rows and the count of changed rows of an unnamed statement.
async fn collect(
    rows: std::result::Result<tokio_postgres::RowStream, tokio_postgres::Error>,
) -> std::result::Result<(Vec<Row>, u64), tokio_postgres::Error> {
    use futures_util::TryStreamExt;
    let rows = rows?;
    futures_util::pin_mut!(rows);
    let mut all = Vec::new();
    while let Some(row) = rows.try_next().await? {
        all.push(row);
    }
    Ok((all, rows.rows_affected().unwrap_or(0)))
}

impl Session for deadpool_postgres::Client {
    fn statement_cache(&self) -> &Arc<StatementCache> {
        &self.statement_cache
    }
    fn in_transaction(&self) -> bool {
        false
    }
    async fn run_typed(
        &self,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> std::result::Result<(Vec<Row>, u64), tokio_postgres::Error> {
        let client: &Client = self;
        collect(
            client
                .query_typed_raw(sql, params.iter().map(|(v, t)| (*v, t.clone())))
                .await,
        )
        .await
    }
    async fn simple(
        &self,
        sql: &str,
    ) -> std::result::Result<Vec<tokio_postgres::SimpleQueryMessage>, tokio_postgres::Error> {
        let client: &Client = self;
        client.simple_query(sql).await
    }
}

impl Session for deadpool_postgres::Transaction<'_> {
    fn statement_cache(&self) -> &Arc<StatementCache> {
        &self.statement_cache
    }
    fn in_transaction(&self) -> bool {
        true
    }
    async fn run_typed(
        &self,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> std::result::Result<(Vec<Row>, u64), tokio_postgres::Error> {
        let transaction: &tokio_postgres::Transaction<'_> = self;
        collect(
            transaction
                .query_typed_raw(sql, params.iter().map(|(v, t)| (*v, t.clone())))
                .await,
        )
        .await
    }
    async fn simple(
        &self,
        sql: &str,
    ) -> std::result::Result<Vec<tokio_postgres::SimpleQueryMessage>, tokio_postgres::Error> {
        let transaction: &tokio_postgres::Transaction<'_> = self;
        transaction.simple_query(sql).await
    }
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

/// Runs a statement of `sql/`: prepared once per connection and cached there, or, behind
/// a transaction pooler, unnamed ([`pooled`]).
pub async fn query<C: Session>(
    client: &C,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>> {
    if let Some(mode) = pooled::mode_of(client) {
        return Ok(pooled::query(client, &mode, sql, params).await?.0);
    }
    let statement = client.prepare_cached(sql).await?;
    Ok(client.query(&statement, params).await?)
}

/// [`query`] for statements returning at most one row.
pub async fn query_opt<C: Session>(
    client: &C,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Option<Row>> {
    if let Some(mode) = pooled::mode_of(client) {
        let mut rows = pooled::query(client, &mode, sql, params).await?.0;
        if rows.len() > 1 {
            return Err(Error::Invalid(format!("more than one row from: {sql}")));
        }
        return Ok(rows.pop());
    }
    let statement = client.prepare_cached(sql).await?;
    Ok(client.query_opt(&statement, params).await?)
}

/// [`query`] for statements whose rows are not needed; returns how many rows changed.
pub async fn execute<C: Session>(
    client: &C,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64> {
    if let Some(mode) = pooled::mode_of(client) {
        return Ok(pooled::query(client, &mode, sql, params).await?.1);
    }
    let statement = client.prepare_cached(sql).await?;
    Ok(client.execute(&statement, params).await?)
}
