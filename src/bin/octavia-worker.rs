//! `octavia-worker`: claims and runs jobs until SIGTERM or SIGINT.

use anyhow::{Context, Result};
use clap::Parser;
use octavia::config::CommonArgs;
use octavia::job::JobType;
use octavia::shutdown;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "octavia-worker",
    version,
    about = "Octavia worker: claims and runs jobs"
)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Segments and steps run at once (worker.concurrency)
    #[arg(long)]
    concurrency: Option<u32>,
    /// Only claim these job types, comma-separated (worker.job_types)
    #[arg(long, value_delimiter = ',')]
    job_types: Option<Vec<String>>,
    /// The id recorded in locked_by (worker.worker_id)
    #[arg(long)]
    worker_id: Option<String>,
    /// Do not LISTEN; find work by polling only (worker.listen = false)
    #[arg(long)]
    poll_only: bool,
    /// Seconds to wait for in-flight work on shutdown (worker.shutdown_grace_seconds)
    #[arg(long)]
    shutdown_grace_seconds: Option<u64>,
    /// Serve Prometheus metrics at http://ADDR/metrics (worker.metrics_listen)
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<String>,
}

fn main() -> ExitCode {
    let outcome = config(&Args::parse()).and_then(|config| {
        // Traces' exporter is made before the runtime and flushed after it (it blocks).
        let tracing = octavia::telemetry::init_with(&config.telemetry, "octavia-worker")?;
        // The runtime's threads are a setting (worker.threads), so the configuration is
        // read before the runtime starts.
        let runtime = if config.worker.threads == 1 {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
        } else {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(config.worker.threads as usize)
                .enable_all()
                .build()?
        };
        let worked = runtime.block_on(run(config));
        drop(runtime);
        tracing.shutdown();
        worked
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
    if let Some(n) = args.concurrency {
        loader = loader.flag("worker.concurrency", n, "--concurrency");
    }
    if let Some(types) = &args.job_types {
        loader = loader.flag("worker.job_types", types.join(","), "--job-types");
    }
    if let Some(id) = &args.worker_id {
        loader = loader.flag("worker.worker_id", id, "--worker-id");
    }
    if args.poll_only {
        loader = loader.flag("worker.listen", false, "--poll-only");
    }
    if let Some(s) = args.shutdown_grace_seconds {
        loader = loader.flag(
            "worker.shutdown_grace_seconds",
            s,
            "--shutdown-grace-seconds",
        );
    }
    if let Some(addr) = &args.metrics_listen {
        loader = loader.flag("worker.metrics_listen", addr, "--metrics-listen");
    }
    Ok(loader.load()?)
}

async fn run(config: octavia::config::Config) -> Result<()> {
    let pipeline = octavia::job_types::Pipeline::from_config(&config)?;
    let registry = octavia::job_types::registry_with(pipeline.clone())?;
    if let Some(unknown) = config
        .worker
        .job_types
        .iter()
        .find(|t| registry.get(t).is_none())
    {
        anyhow::bail!(
            "worker.job_types: `{unknown}` is not a job type (known: {})",
            registry.job_types().join(", ")
        );
    }
    // Refuse to start rather than fail every pipeline job this worker would claim.
    let claims_pipeline = config.worker.job_types.is_empty()
        || config
            .worker
            .job_types
            .iter()
            .any(|t| JobType::from_name(t).is_some_and(JobType::runs_pipeline));
    if claims_pipeline {
        pipeline
            .engines
            .check()
            .await
            .context("this worker runs pipeline jobs (limit it with --job-types noop)")?;
    }
    let pool = octavia::migrate::prepare(&config).await?;
    let shutdown = shutdown::on_signals(shutdown::Messages {
        first: "signal received: finishing in-flight work (a second signal exits at once)",
        second: "second signal: exiting now; leases will expire and be rescued",
    })?;
    let storage_config = config.storage.clone();
    let worker = octavia::worker::Worker::new(config, pool.clone(), registry)?;
    // Every worker sweeps the store beside its work (see octavia::retention).
    let sweeper = octavia::retention::Sweeper::new(
        pool,
        pipeline.storage.clone(),
        storage_config,
        worker.worker_id(),
    );
    let sweeping = tokio::spawn(sweeper.run(shutdown.clone()));
    worker.run(shutdown).await?;
    sweeping.abort();
    Ok(())
}
