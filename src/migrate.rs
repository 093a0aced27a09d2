//! Schema migrations: numbered, forward-only SQL files in `migrations/`, embedded in every
//! binary and applied under an advisory lock so processes starting together do not race.

use crate::error::Result;
use tokio_postgres::Client;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Key of the session advisory lock held while migrating.
const MIGRATION_LOCK: i64 = 0x6f63_7461_7669_6101; // "octavia" + 1

/// Applies pending migrations and returns the names of those it applied (none when the
/// schema is current). Safe to run from several processes at once.
pub async fn run(client: &mut Client) -> Result<Vec<String>> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let outcome = embedded::migrations::runner().run_async(client).await;
    // Unlock even when a migration failed; the session ends the lock anyway if this fails.
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    let report = outcome?;
    unlocked?;
    Ok(report
        .applied_migrations()
        .iter()
        .map(|m| m.to_string())
        .collect())
}

/// What every process does at start-up: migrate unless `database.migrate_on_start` is off,
/// then open the pool.
pub async fn prepare(config: &crate::Config) -> Result<deadpool_postgres::Pool> {
    if config.database.migrate_on_start {
        let applied = run_url(&config.database.migration_url()?).await?;
        if !applied.is_empty() {
            tracing::info!(?applied, "migrations applied");
        }
    }
    crate::db::pool(&config.database)
}

/// Connects to `url`, migrates and disconnects.
pub async fn run_url(url: &str) -> Result<Vec<String>> {
    let mut client = crate::db::connect(url).await?;
    run(&mut client).await
}

/// The version of the newest embedded migration.
pub fn latest_version() -> i32 {
    embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| m.version())
        .max()
        .unwrap_or(0)
}

/// Whether the database has every embedded migration applied.
pub async fn is_current(client: &Client) -> Result<bool> {
    let row = client
        .query_opt("SELECT max(version) FROM refinery_schema_history", &[])
        .await;
    match row {
        Ok(Some(row)) => Ok(row.get::<_, Option<i32>>(0) == Some(latest_version())),
        Ok(None) => Ok(false),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => Ok(false),
        Err(e) => Err(e.into()),
    }
}
