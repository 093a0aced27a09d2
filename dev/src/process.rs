//! Child processes of the dev tooling and the tests (Octavia's binaries, s3s-fs, wrk's
//! peer): one way to start one with its output in a log file, signal it, stop it with
//! SIGTERM as an operator does or kill it as a crash does, tell that it exited on its own
//! and what it last wrote, and never leave it running once its owner is gone; plus a free
//! port to give it and where the workspace's binaries are.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Where a child's standard output and error go.
#[derive(Debug, Clone, Copy)]
pub enum Output<'a> {
    /// Appended to this file, both of them.
    Log(&'a Path),
    /// This process's own.
    Inherit,
    /// Nowhere.
    Null,
}

/// What dropping a [`Child`] still running does to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDrop {
    /// SIGKILL, then reaped: what a crash does (the default).
    Kill,
    /// SIGTERM (unless it had one already), then reaped once it has stopped.
    Stop,
    /// SIGTERM (unless it had one already), not waited for: the owner is leaving on an
    /// error and must not hang on it.
    Signal,
}

/// A running child process, never left behind: see [`OnDrop`]. Derefs to the
/// [`std::process::Child`] it wraps.
#[derive(Debug)]
pub struct Child {
    name: String,
    log: Option<PathBuf>,
    child: std::process::Child,
    on_drop: OnDrop,
    /// SIGTERM was sent: a second one would make Octavia's binaries exit at once.
    terminated: bool,
}

impl Child {
    /// Starts `command` as `name` with no standard input and its output where `output`
    /// says.
    pub fn spawn(name: &str, command: &mut Command, output: Output<'_>) -> io::Result<Child> {
        let (out, err) = match output {
            Output::Log(path) => {
                let file = append(path)?;
                (Stdio::from(file.try_clone()?), Stdio::from(file))
            }
            Output::Inherit => (Stdio::inherit(), Stdio::inherit()),
            Output::Null => (Stdio::null(), Stdio::null()),
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot start {name} ({:?}): {e}", command.get_program()),
                )
            })?;
        Ok(Child {
            name: name.to_string(),
            log: match output {
                Output::Log(path) => Some(path.to_path_buf()),
                _ => None,
            },
            child,
            on_drop: OnDrop::Kill,
            terminated: false,
        })
    }

    /// What dropping it does, if it still runs.
    pub fn on_drop(mut self, on_drop: OnDrop) -> Child {
        self.on_drop = on_drop;
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file its output goes to, if it has one.
    pub fn log(&self) -> Option<&Path> {
        self.log.as_deref()
    }

    /// How it ended, once it has.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// How it ended and the last lines of its log, once it has ended: what its owner, who
    /// expected it to run until stopped, reports instead of waiting for work it will never do.
    pub fn exited(&mut self) -> Option<Exited> {
        let status = self.exit_status()?;
        Some(Exited {
            name: self.name.clone(),
            status,
            tail: self.log.as_deref().map(|log| tail(log, TAIL_LINES)),
        })
    }

    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends `signal` (`libc::SIGTERM`, `libc::SIGKILL`, …).
    pub fn signal(&mut self, signal: i32) -> io::Result<()> {
        if signal == libc::SIGTERM {
            self.terminated = true;
        }
        // SAFETY: kill(2) on a child this process started; until it is reaped its pid is
        // still ours, so no other process can be hit.
        match unsafe { libc::kill(self.child.id() as i32, signal) } {
            0 => Ok(()),
            _ => Err(io::Error::last_os_error()),
        }
    }

    /// Asks it to stop (SIGTERM), as an operator would; see [`Child::stop`] to wait.
    pub fn terminate(&mut self) {
        let _ = self.signal(libc::SIGTERM);
    }

    /// SIGKILL, and reaped.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then up to `grace` for it to exit; killed if it has not. Its exit status,
    /// or `None` when it had to be killed.
    pub async fn stop(&mut self, grace: Duration) -> Option<ExitStatus> {
        if !self.terminated {
            self.terminate();
        }
        let deadline = Instant::now() + grace;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                _ => {
                    self.kill();
                    return None;
                }
            }
        }
    }
}

/// Lines of a log shown when its process ended on its own.
pub const TAIL_LINES: usize = 20;

/// A child that ended before its owner stopped it: how, and the last lines it wrote.
#[derive(Debug, Clone)]
pub struct Exited {
    pub name: String,
    pub status: ExitStatus,
    /// The last [`TAIL_LINES`] lines of its log; `None` when its output went elsewhere.
    pub tail: Option<String>,
}

impl std::fmt::Display for Exited {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} exited ({})", self.name, self.status)?;
        match self.tail.as_deref() {
            Some("") => write!(f, " and wrote nothing"),
            Some(tail) => write!(f, "; its last lines:\n{tail}"),
            None => Ok(()),
        }
    }
}

impl From<std::process::Child> for Child {
    /// A child started elsewhere, killed when dropped.
    fn from(child: std::process::Child) -> Child {
        Child {
            name: format!("process {}", child.id()),
            log: None,
            child,
            on_drop: OnDrop::Kill,
            terminated: false,
        }
    }
}

impl std::ops::Deref for Child {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.child
    }
}

impl std::ops::DerefMut for Child {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.child
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.is_alive() {
            return;
        }
        match self.on_drop {
            OnDrop::Kill => self.kill(),
            OnDrop::Stop => {
                if !self.terminated {
                    self.terminate();
                }
                let _ = self.child.wait();
            }
            OnDrop::Signal => {
                if !self.terminated {
                    self.terminate();
                }
            }
        }
    }
}

fn append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// A loopback port free at this moment, to give a child to listen on. Another process may
/// take it before the child does; the child then fails to start, and says so.
pub fn free_port() -> io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The workspace's binary `name` (`octavia-api`, `octavia-worker`, …), built beside the
/// running program: cargo puts them all in `target/debug` or `target/release`, and runs a
/// test from its `deps/` directory below.
pub fn sibling(name: &str) -> io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    let candidates = [Some(dir), dir.parent().filter(|_| dir.ends_with("deps"))];
    candidates
        .into_iter()
        .flatten()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{} not found: build the workspace's binaries first \
                     (`cargo build --workspace --bins`; bin/demo, bin/bench and bin/chaos do)",
                    dir.join(name).display()
                ),
            )
        })
}

/// The last `n` lines of the file at `path` (all of it if shorter; a note if unreadable).
pub fn tail(path: &Path, n: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, "a\nb\nc\nd\n").unwrap();
        assert_eq!(tail(&path, 2), "c\nd");
        assert_eq!(tail(&path, 10), "a\nb\nc\nd");
        assert!(tail(&dir.path().join("missing"), 3).contains("cannot read"));
    }

    #[tokio::test]
    async fn a_child_logs_stops_on_sigterm_and_is_killed_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("polite.log");
        // Exits 0 on SIGTERM, as Octavia's binaries do once their work is done.
        let script = "trap 'exit 0' TERM; echo ready; while :; do sleep 0.05; done";
        let mut polite = Child::spawn(
            "polite",
            Command::new("/bin/sh").args(["-c", script]),
            Output::Log(&log),
        )
        .unwrap();
        while !std::fs::read_to_string(&log).unwrap().contains("ready") {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let status = polite.stop(Duration::from_secs(10)).await;
        assert!(status.is_some_and(|s| s.success()), "{status:?}");

        // One that ignores SIGTERM is killed when dropped.
        let script = "trap '' TERM; while :; do sleep 0.05; done";
        let stubborn = Child::spawn(
            "stubborn",
            Command::new("/bin/sh").args(["-c", script]),
            Output::Null,
        )
        .unwrap();
        let pid = stubborn.id() as i32;
        drop(stubborn);
        // SAFETY: signal 0 only asks whether the pid exists.
        assert_ne!(unsafe { libc::kill(pid, 0) }, 0, "{pid} still runs");
    }

    #[test]
    fn a_child_that_exits_on_its_own_says_how_and_what_it_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("early.log");
        let script = "echo starting; echo 'error: cannot start' >&2; exit 3";
        let mut early = Child::spawn(
            "early",
            Command::new("/bin/sh").args(["-c", script]),
            Output::Log(&log),
        )
        .unwrap();
        let exited = loop {
            if let Some(exited) = early.exited() {
                break exited;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(exited.status.code(), Some(3));
        assert_eq!(
            exited.to_string(),
            "early exited (exit status: 3); its last lines:\nstarting\nerror: cannot start"
        );

        let mut silent =
            Child::spawn("silent", &mut Command::new("/bin/true"), Output::Null).unwrap();
        while silent.is_alive() {
            std::thread::sleep(Duration::from_millis(10));
        }
        let exited = silent.exited().unwrap();
        assert_eq!(exited.to_string(), "silent exited (exit status: 0)");
    }

    #[test]
    fn a_missing_sibling_names_the_build_command() {
        let e = sibling("no-such-octavia-binary").unwrap_err().to_string();
        assert!(e.contains("cargo build --workspace --bins"), "{e}");
    }
}
