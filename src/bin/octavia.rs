//! `octavia`: the operator's command line.

use anyhow::Result;
use clap::{Parser, Subcommand};
use octavia::config::CommonArgs;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "octavia", version, about = "Octavia operator CLI")]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending migrations (a no-op when the schema is current) and list the tables
    Migrate,
    /// Run Octavia locally (embedded PostgreSQL unless DATABASE_URL is set)
    Demo,
}

#[tokio::main]
async fn main() -> ExitCode {
    octavia::telemetry::init();
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    let config = cli.common.loader()?.load()?;
    match cli.command {
        Command::Migrate => {
            let applied = octavia::migrate::run_url(&config.database.url).await?;
            if applied.is_empty() {
                println!(
                    "schema is current (version {})",
                    octavia::migrate::latest_version()
                );
            }
            for m in &applied {
                println!("applied {m}");
            }
            let client = octavia::db::connect(&config.database.url).await?;
            for row in client.query(octavia::sql::TABLE_ROWS, &[]).await? {
                println!(
                    "{:<24} {:>10} rows",
                    row.get::<_, String>(0),
                    row.get::<_, i64>(1)
                );
            }
        }
        Command::Demo => octavia::demo::run(config).await?,
    }
    Ok(())
}
