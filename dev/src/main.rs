//! `octavia-dev`: Octavia's dev tooling. `bin/demo`, `bin/bench` and `bin/chaos` run it.

use anyhow::Result;
use clap::{Parser, Subcommand};
use octavia::config::CommonArgs;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "octavia-dev",
    version,
    about = "Octavia's dev tooling: the demo, benchmarks, fault scenarios"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run Octavia locally and dub a sample video through the API (embedded PostgreSQL
    /// unless DATABASE_URL is set)
    Demo(CommonArgs),
    /// Measure the queue on a fresh database and print JSON figures
    Bench(octavia_dev::bench::BenchArgs),
    /// Fault scenarios on a fresh database, checking every promise (report as JSON)
    #[command(subcommand)]
    Chaos(octavia_dev::chaos::Scenario),
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
    match cli.command {
        Command::Demo(common) => {
            let config = common.loader()?.load()?;
            Ok(octavia_dev::demo::run(config).await?)
        }
        Command::Bench(args) => Ok(octavia_dev::bench::run(args).await?),
        Command::Chaos(scenario) => Ok(octavia_dev::chaos::run_cli(scenario).await?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Clap's own checks of the whole command line (duplicate names, conflicts): they
    /// otherwise run only when a subcommand is first parsed.
    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["octavia-dev", "bench", "--quality", "--no-video"]);
        assert!(cli.is_ok());
        assert!(Cli::try_parse_from(["octavia-dev", "bench", "--quality", "--suite"]).is_err());
    }
}
