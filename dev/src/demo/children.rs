//! The demo's child processes (`octavia-api` and the workers): started with the demo's
//! configuration file and a log file each, watched so that one dying early fails the demo
//! with its log's last lines, and stopped with SIGTERM as an operator would.

use super::error::DemoError;
use crate::process::{self, Child, OnDrop, Output};
use std::ffi::OsString;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

/// Lines of a log shown when its process fails.
pub use process::TAIL_LINES;

/// A program of this build: the binaries are built side by side, so the demo finds the
/// API and worker next to its own executable.
pub fn sibling_program(name: &str) -> Result<PathBuf, DemoError> {
    process::sibling(name).map_err(|e| DemoError::Failed(e.to_string()))
}

/// How a child ended when the demo stopped it.
#[derive(Debug)]
pub struct Stopped {
    pub name: String,
    pub status: Option<ExitStatus>,
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(s) if s.success() => write!(f, "{} (exit 0)", self.name),
            Some(s) => write!(f, "{} ({s})", self.name),
            None => write!(f, "{} (killed: it ignored SIGTERM)", self.name),
        }
    }
}

/// The children, stopped (SIGTERM) when dropped if [`Children::stop`] was not called, so
/// an error on the way out of the demo leaves no process behind.
#[derive(Default)]
pub struct Children {
    running: Vec<Child>,
}

impl Children {
    /// Starts `program` with `args` as `name`, its stdout and stderr in `{logs}/{name}.log`
    /// (truncated: the log of this run only), plain-text logs, and an environment without
    /// `OCTAVIA_*` or `DATABASE_URL`, so the configuration file given in `args` is all of
    /// its configuration and cannot disagree with the demo's.
    pub fn spawn(
        &mut self,
        name: &str,
        program: &Path,
        args: &[OsString],
        logs: &Path,
    ) -> Result<(), DemoError> {
        std::fs::create_dir_all(logs).map_err(|e| io(logs, e))?;
        let log = logs.join(format!("{name}.log"));
        File::create(&log).map_err(|e| io(&log, e))?;
        let mut command = Command::new(program);
        command
            .args(args)
            .env("NO_COLOR", "1")
            // Its own process group: the terminal's Ctrl-C reaches the demo only, which
            // then stops each child with exactly one SIGTERM (a second signal would make it
            // exit at once, abandoning its work).
            .process_group(0);
        for (key, _) in std::env::vars_os() {
            let key_text = key.to_string_lossy();
            if key_text.starts_with("OCTAVIA_") || key_text == "DATABASE_URL" {
                command.env_remove(&key);
            }
        }
        // SAFETY: prctl is async-signal-safe and touches only the new process. It asks the
        // kernel to SIGTERM the child when the thread that started it ends, so a demo
        // killed with SIGKILL does not leave its API and workers running.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = Child::spawn(name, &mut command, Output::Log(&log))
            .map_err(|e| DemoError::Failed(e.to_string()))?;
        self.running.push(child.on_drop(OnDrop::Signal));
        Ok(())
    }

    /// Fails with the log tail of the first child that has exited: none should before the
    /// demo stops them.
    pub fn check(&mut self) -> Result<(), DemoError> {
        for child in &mut self.running {
            if let Some(exited) = child.exited() {
                let log = child.log().unwrap_or(Path::new(""));
                return Err(DemoError::ChildDied {
                    name: exited.name,
                    status: exited.status.to_string(),
                    log: log.display().to_string(),
                    tail: exited.tail.unwrap_or_default(),
                });
            }
        }
        Ok(())
    }

    /// The death of a child, if one dies within `wait`. A request to a child that just
    /// died fails (its sockets close) a moment before the kernel lets its parent reap it;
    /// this tells that failure's real cause.
    pub async fn dead_child(&mut self, wait: Duration) -> Option<DemoError> {
        let deadline = Instant::now() + wait;
        loop {
            if let Err(died) = self.check() {
                return Some(died);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the log of `name` has a line containing `needle` (what the process
    /// logs once it is ready), failing if any child dies or `timeout` passes first.
    pub async fn wait_for_log(
        &mut self,
        name: &str,
        needle: &str,
        timeout: Duration,
    ) -> Result<(), DemoError> {
        let log = self
            .log_of(name)
            .map(Path::to_path_buf)
            .ok_or_else(|| DemoError::Failed(format!("no child process named {name}")))?;
        let deadline = Instant::now() + timeout;
        loop {
            self.check()?;
            if std::fs::read_to_string(&log).is_ok_and(|t| t.contains(needle)) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(DemoError::Failed(format!(
                    "{name} did not start within {} s; last lines of {}:\n{}",
                    timeout.as_secs(),
                    log.display(),
                    process::tail(&log, TAIL_LINES)
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The log file of `name`.
    pub fn log_of(&self, name: &str) -> Option<&Path> {
        self.running
            .iter()
            .find(|c| c.name() == name)
            .and_then(Child::log)
    }

    /// Sends SIGTERM to every child and waits up to `grace` for them all; any still alive
    /// then is killed. Returns how each ended.
    pub async fn stop(&mut self, grace: Duration) -> Vec<Stopped> {
        for child in &mut self.running {
            child.terminate();
        }
        let deadline = Instant::now() + grace;
        let mut stopped = Vec::new();
        for mut child in std::mem::take(&mut self.running) {
            let left = deadline.saturating_duration_since(Instant::now());
            let status = child.stop(left).await;
            stopped.push(Stopped {
                name: child.name().to_string(),
                status,
            });
        }
        stopped
    }
}

fn io(path: &Path, e: std::io::Error) -> DemoError {
    DemoError::Failed(format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_child_that_dies_early_fails_with_its_log_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut children = Children::default();
        let args: Vec<OsString> = vec!["-c".into(), "echo starting; echo boom >&2; exit 3".into()];
        children
            .spawn("early", Path::new("/bin/sh"), &args, dir.path())
            .unwrap();
        let e = children
            .wait_for_log("early", "never logged", Duration::from_secs(10))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("early") && e.contains("exit status: 3"), "{e}");
        assert!(e.contains("starting\nboom"), "{e}");
    }

    #[tokio::test]
    async fn stop_sends_sigterm_and_reports_the_exit() {
        let dir = tempfile::tempdir().unwrap();
        let mut children = Children::default();
        // Exits 0 on SIGTERM, as the API and workers do once their work is done.
        let script = "trap 'exit 0' TERM; echo ready; while :; do sleep 0.05; done";
        let args: Vec<OsString> = vec!["-c".into(), script.into()];
        children
            .spawn("polite", Path::new("/bin/sh"), &args, dir.path())
            .unwrap();
        children
            .wait_for_log("polite", "ready", Duration::from_secs(10))
            .await
            .unwrap();
        children.check().unwrap();
        let stopped = children.stop(Duration::from_secs(10)).await;
        assert_eq!(stopped.len(), 1);
        assert!(
            stopped[0].status.is_some_and(|s| s.success()),
            "{stopped:?}"
        );
    }
}
