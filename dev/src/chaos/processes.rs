//! The real processes a scenario runs: `octavia-worker`s and `octavia-api`, each logging
//! into the scenario's log directory, killed if still running when dropped
//! ([`crate::process::Child`]), and watched while the scenario waits: one that exits on its
//! own fails the scenario at once with its last lines ([`running`]).

use crate::process::{self, Child, Output};
use octavia::error::{Error, Result};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The executables a scenario starts.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub worker: PathBuf,
    pub api: PathBuf,
}

impl Binaries {
    /// `octavia-worker` and `octavia-api` beside the running program (how `octavia-dev chaos`
    /// finds the binaries built with it).
    pub fn beside_this_program() -> Result<Binaries> {
        Ok(Binaries {
            worker: process::sibling("octavia-worker")?,
            api: process::sibling("octavia-api")?,
        })
    }
}

/// Where a scenario's processes write their logs: removed at the end unless the scenario
/// found a violation or one of its processes exited on its own, when it is kept for the
/// post-mortem.
pub(crate) struct Logs {
    dir: Option<TempDir>,
    kept: Cell<bool>,
}

impl Logs {
    pub fn new(scenario: &str) -> Result<Logs> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("octavia-chaos-{scenario}-"))
            .tempdir()?;
        Ok(Logs {
            dir: Some(dir),
            kept: Cell::new(false),
        })
    }

    fn path(&self) -> &Path {
        self.dir.as_ref().expect("until dropped").path()
    }

    /// The log file of the process `name`.
    fn file(&self, name: &str) -> PathBuf {
        self.path().join(format!("{name}.log"))
    }

    /// Keeps the directory and returns its path.
    pub fn keep(self) -> String {
        self.kept.set(true);
        self.path().display().to_string()
    }
}

impl Drop for Logs {
    fn drop(&mut self) {
        if self.kept.get()
            && let Some(dir) = self.dir.take()
        {
            let _ = dir.keep();
        }
    }
}

/// Fails if one of `children` has exited: every process of a scenario runs until the
/// scenario stops it (a killed worker is taken out of the list before its kill). The error
/// is the process's own, from its log's last lines, and the logs are kept.
pub(crate) fn running(children: &mut [Child], logs: &Logs) -> Result<()> {
    for child in children {
        if let Some(exited) = child.exited() {
            logs.kept.set(true);
            return Err(Error::Invalid(format!(
                "the scenario's {exited}\n(every log of the scenario is kept in {})",
                logs.path().display()
            )));
        }
    }
    Ok(())
}

/// Starts `command` as `name` (a worker id, or `api`), its output in the scenario's log
/// `name.log`.
fn spawn(mut command: Command, name: &str, logs: &Logs) -> Result<Child> {
    command.env("RUST_LOG", "warn").env("NO_COLOR", "1");
    Ok(Child::spawn(
        name,
        &mut command,
        Output::Log(&logs.file(name)),
    )?)
}

/// An `octavia-worker` on `url` with short leases and intervals, so a scenario's faults
/// are recovered from in seconds, plus `settings` (`section.key=value`) of its own.
pub(crate) fn start_worker(
    exe: &Path,
    url: &str,
    id: &str,
    concurrency: u32,
    settings: &[String],
    logs: &Logs,
) -> Result<Child> {
    let mut command = Command::new(exe);
    command
        .args(["--no-migrate", "--worker-id", id])
        .args(["--concurrency", &concurrency.to_string()])
        .env("DATABASE_URL", url);
    let defaults = [
        "worker.lease_seconds=2",
        "worker.heartbeat_seconds=1",
        "worker.rescue_interval_seconds=1",
        "worker.poll_interval_ms=200",
        "worker.backoff_base_ms=50",
        "worker.backoff_max_ms=1000",
        "database.connect_timeout_seconds=2",
    ];
    // Later settings win, so the scenario's own override these defaults.
    for s in defaults
        .iter()
        .map(|s| s.to_string())
        .chain(settings.iter().cloned())
    {
        command.args(["--set", &s]);
    }
    spawn(command, id, logs)
}

/// An `octavia-api` on a free loopback port with the local store in `store_dir`, ready
/// (answering /healthz) when this returns. Returns the process and its base URL.
pub(crate) async fn start_api(
    exe: &Path,
    url: &str,
    store_dir: &Path,
    settings: &[String],
    logs: &Logs,
) -> Result<(Child, String)> {
    let port = process::free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let mut command = Command::new(exe);
    command
        .args(["--no-migrate", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--public-url", &base])
        .env("DATABASE_URL", url);
    let secret = format!("chaos-{}", uuid::Uuid::new_v4().simple());
    let defaults = [
        format!("storage.local_dir={}", store_dir.display()),
        format!("storage.signing_secret={secret}"),
        "database.connect_timeout_seconds=2".into(),
    ];
    for s in defaults.iter().chain(settings) {
        command.args(["--set", s]);
    }
    let mut process = spawn(command, "api", logs)?;
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        running(std::slice::from_mut(&mut process), logs)?;
        if let Ok(r) = http.get(format!("{base}/healthz")).send().await
            && r.status().is_success()
        {
            return Ok((process, base));
        }
        if Instant::now() > deadline {
            return Err(Error::Invalid(format!(
                "octavia-api did not answer on {base} within 30 s"
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
