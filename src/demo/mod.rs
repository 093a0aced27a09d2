//! `octavia demo`: Octavia running locally from nothing, on an embedded PostgreSQL unless
//! `DATABASE_URL` names a server.

use crate::config::Config;
use crate::error::Result;
use crate::pg::{Cluster, Durability};
use std::path::Path;

/// Where the demo keeps its database and objects between runs.
pub const DEMO_DIR: &str = "var/demo";

/// The database the demo uses, started (and created) if it is the embedded one. Returns
/// the cluster when it is ours to stop.
pub async fn database(config: &mut Config) -> Result<Option<Cluster>> {
    if std::env::var("DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
        println!("database: {} (from DATABASE_URL)", config.database.url);
        return Ok(None);
    }
    let dir = Path::new(DEMO_DIR).join("pg");
    let fresh = !dir.join("PG_VERSION").exists();
    let cluster = Cluster::start(&dir, Durability::Durable)?;
    let admin = crate::db::connect(&cluster.url("postgres")).await?;
    let exists = admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = 'octavia'", &[])
        .await?
        .is_some();
    if !exists {
        crate::pg::create_database(&cluster.url("postgres"), "octavia", None).await?;
    }
    config.database.url = cluster.url("octavia");
    println!(
        "database: {} ({} embedded PostgreSQL in {})",
        config.database.url,
        if fresh { "new" } else { "reused" },
        cluster.dir.display()
    );
    Ok(Some(cluster))
}

/// Sets up the database, migrates it and lists what is there.
pub async fn run(mut config: Config) -> Result<()> {
    let cluster = database(&mut config).await?;
    let outcome = show(&config).await;
    if let Some(cluster) = cluster {
        cluster.stop()?;
        println!(
            "embedded PostgreSQL stopped; its data stays in {}",
            cluster.dir.display()
        );
    }
    outcome
}

async fn show(config: &Config) -> Result<()> {
    let applied = crate::migrate::run_url(&config.database.url).await?;
    if applied.is_empty() {
        println!(
            "schema: current (version {})",
            crate::migrate::latest_version()
        );
    } else {
        println!("schema: applied {}", applied.join(", "));
    }
    let client = crate::db::connect(&config.database.url).await?;
    for row in client.query(crate::sql::TABLE_ROWS, &[]).await? {
        println!(
            "  {:<24} {:>8} rows",
            row.get::<_, String>(0),
            row.get::<_, i64>(1)
        );
    }
    Ok(())
}
