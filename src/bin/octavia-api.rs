//! `octavia-api`: the HTTP API, until SIGTERM or SIGINT.

use anyhow::{Context, Result};
use clap::Parser;
use octavia::api::{self, ApiState};
use octavia::config::CommonArgs;
use octavia::shutdown;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "octavia-api", version, about = "Octavia HTTP API")]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Address to listen on, e.g. 0.0.0.0:8080 (api.listen)
    #[arg(long)]
    listen: Option<String>,
    /// The API's public URL, the base of local-store links (api.public_url)
    #[arg(long)]
    public_url: Option<String>,
}

fn main() -> ExitCode {
    let outcome = config(&Args::parse()).and_then(|config| {
        // Traces' exporter is made before the runtime and flushed after it (it blocks).
        let tracing = octavia::telemetry::init_with(&config.telemetry, "octavia-api")?;
        let runtime = tokio::runtime::Runtime::new()?;
        let served = runtime.block_on(run(config));
        drop(runtime);
        tracing.shutdown();
        served
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The configuration: file, environment, then this command's flags.
fn config(args: &Args) -> Result<octavia::config::Config> {
    let mut loader = args.common.loader()?;
    if let Some(listen) = &args.listen {
        loader = loader.flag("api.listen", listen, "--listen");
    }
    if let Some(url) = &args.public_url {
        loader = loader.flag("api.public_url", url, "--public-url");
    }
    Ok(loader.load()?)
}

async fn run(config: octavia::config::Config) -> Result<()> {
    let pool = octavia::migrate::prepare(&config).await?;
    let listener = tokio::net::TcpListener::bind(&config.api.listen)
        .await
        .with_context(|| format!("cannot listen on {} (api.listen)", config.api.listen))?;
    let shutdown = shutdown::on_signals(shutdown::Messages {
        first: "signal received: finishing requests in flight (a second signal exits at once)",
        second: "second signal: exiting now",
    })?;
    let state = ApiState::new(config, pool, shutdown.clone())?;
    tracing::info!(address = %listener.local_addr()?, "octavia-api listening");
    api::serve(listener, state, shutdown).await?;
    tracing::info!("octavia-api stopped");
    Ok(())
}
