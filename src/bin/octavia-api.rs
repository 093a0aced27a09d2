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

#[tokio::main]
async fn main() -> ExitCode {
    octavia::telemetry::init();
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<()> {
    let mut loader = args.common.loader()?;
    if let Some(listen) = &args.listen {
        loader = loader.flag("api.listen", listen, "--listen");
    }
    if let Some(url) = &args.public_url {
        loader = loader.flag("api.public_url", url, "--public-url");
    }
    let config = loader.load()?;
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
