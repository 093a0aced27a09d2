//! The whisper helper processes: `helper.py` (built into the binary) run by the configured
//! Python, each keeping faster-whisper's models loaded and transcribing one file at a
//! time over JSON lines on its stdin and stdout.
//!
//! A worker keeps up to `engines.whisper_helpers` of them. A request takes an idle helper
//! (or starts one) for as long as it runs, so a helper is only ever owned by one request:
//! if that request is dropped (its job was cancelled or timed out), the helper is dropped
//! with it and killed, and the next request starts a fresh one. A helper that dies during
//! a request fails that request with its exit status and the end of its stderr, an error
//! the queue retries.

use crate::pipeline::process::tail;
use crate::pipeline::{PipelineError, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

const SCRIPT: &str = include_str!("helper.py");

/// The helper's first argument: it names the process in `ps` (`python -c` shows no file).
pub const HELPER_ARG: &str = "octavia-whisper-helper";

/// What the error of a missing engine tells to run.
pub(super) const INSTALL: &str = "bin/deps --demo";

/// The helper's exit status when faster_whisper cannot be imported.
const EXIT_NO_FASTER_WHISPER: i32 = 3;

/// How long a helper may take to import faster-whisper and say it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How much of a helper's stderr is kept for errors.
const STDERR_KEPT: usize = 4096;

/// What the program is called in errors.
const PROGRAM: &str = "whisper helper";

/// Transcribes `wav` with the model in directory `model`: in `language`, or detected
/// among `languages` when `language` is `None`.
#[derive(Debug, Serialize)]
pub(super) struct Transcribe<'a> {
    pub wav: &'a Path,
    pub model: &'a Path,
    pub language: Option<&'static str>,
    pub languages: Vec<&'static str>,
    /// Text Whisper takes as what came before: its style (punctuation) carries over.
    pub prompt: Option<&'static str>,
    pub beam_size: u32,
    pub threads: u32,
}

/// Detects the language spoken in `detect`, among `languages`.
#[derive(Debug, Serialize)]
pub(super) struct Detect<'a> {
    pub detect: &'a Path,
    pub model: &'a Path,
    pub languages: Vec<&'static str>,
    pub threads: u32,
}

/// The answer to [`Detect`].
#[derive(Debug, Deserialize)]
pub(super) struct DetectedLanguage {
    /// The likeliest of the languages asked for.
    pub language: String,
    pub probability: f64,
    /// The likeliest of all the languages the model knows.
    pub top_language: String,
    pub top_probability: f64,
}

/// Loads a model before its first request.
#[derive(Debug, Serialize)]
pub(super) struct Load<'a> {
    pub load: &'a Path,
    pub threads: u32,
}

/// A word the helper heard, times in seconds from the start of the file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(super) struct HeardWord {
    pub start: f64,
    pub end: f64,
    pub text: String,
    /// Which of faster-whisper's segments (about a sentence each) it belongs to.
    pub segment: usize,
}

/// The answer to [`Transcribe`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(super) struct Heard {
    pub language: String,
    pub probability: f64,
    pub words: Vec<HeardWord>,
}

/// The answer to [`Load`].
#[derive(Debug, Deserialize)]
pub(super) struct Loaded {
    pub loaded: PathBuf,
}

/// A helper's answer: what was asked for, or why not.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Reply<T> {
    Failed { error: String },
    Done(T),
}

#[derive(Deserialize)]
struct Ready {
    ready: bool,
}

/// One running helper.
struct Helper {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_reader: Option<JoinHandle<()>>,
}

impl Helper {
    /// Starts a helper and waits until it has imported faster-whisper.
    async fn start(python: &Path) -> Result<Helper> {
        let mut child = Command::new(python)
            .args(["-I", "-u", "-c", SCRIPT, HELPER_ARG])
            // Nothing may be fetched at run time: the models are local directories.
            .env("HF_HUB_OFFLINE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own group: a Ctrl-C meant for the worker must not kill the helper while
            // the worker finishes its segments.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
                    PipelineError::EngineMissing {
                        engine: "whisper",
                        missing: format!(
                            "the Python interpreter {} (engines.whisper_python): {e}",
                            python.display()
                        ),
                        install: INSTALL,
                    }
                }
                _ => PipelineError::io(format!("cannot start {}", python.display()), e),
            })?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut pipe = child.stderr.take().expect("piped");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let kept = stderr.clone();
        let stderr_reader = tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buf).await {
                let mut kept = kept.lock().expect("not poisoned");
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > STDERR_KEPT {
                    let cut = kept.len() - STDERR_KEPT;
                    kept.drain(..cut);
                }
            }
        });
        let mut helper = Helper {
            child,
            stdin,
            stdout,
            stderr,
            stderr_reader: Some(stderr_reader),
        };
        match tokio::time::timeout(READY_TIMEOUT, helper.read::<Ready>()).await {
            Ok(Ok(Ready { ready: true })) => Ok(helper),
            Ok(Ok(Ready { ready: false })) => Err(helper.bad_output("not ready".into())),
            Ok(Err(PipelineError::ToolFailed { status, stderr, .. }))
                if status.contains(&format!("exit status: {EXIT_NO_FASTER_WHISPER}")) =>
            {
                Err(PipelineError::EngineMissing {
                    engine: "whisper",
                    missing: format!(
                        "faster-whisper in {} (engines.whisper_python): {stderr}",
                        python.display()
                    ),
                    install: INSTALL,
                })
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(PipelineError::ToolFailed {
                program: PROGRAM,
                status: format!("not ready after {} s", READY_TIMEOUT.as_secs()),
                stderr: helper.stderr_tail(),
            }),
        }
    }

    /// Whether the process is still running.
    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends one request and reads its answer: `Err` when the helper is broken (it died,
    /// or said something that is not the protocol), `Ok(Err(message))` when it refused
    /// the request and is well.
    async fn call<T: DeserializeOwned>(
        &mut self,
        request: &impl Serialize,
    ) -> Result<Result<T, String>> {
        let mut line = serde_json::to_vec(request).expect("serializable");
        line.push(b'\n');
        let sent = async {
            self.stdin.write_all(&line).await?;
            self.stdin.flush().await
        }
        .await;
        if sent.is_err() {
            // The helper is gone; reading tells how it ended.
            return Err(self.died().await);
        }
        Ok(match self.read::<Reply<T>>().await? {
            Reply::Done(answer) => Ok(answer),
            Reply::Failed { error } => Err(error),
        })
    }

    /// Reads one line of the protocol.
    async fn read<T: DeserializeOwned>(&mut self) -> Result<T> {
        let mut line = String::new();
        match self.stdout.read_line(&mut line).await {
            Ok(0) | Err(_) => Err(self.died().await),
            Ok(_) => serde_json::from_str(&line).map_err(|e| self.bad_output(format!("{e}"))),
        }
    }

    /// The error of a helper that exited: its status and the end of its stderr.
    async fn died(&mut self) -> PipelineError {
        let status = match tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await {
            Ok(Ok(status)) => status.to_string(),
            _ => "closed its output".into(),
        };
        if let Some(reader) = self.stderr_reader.take() {
            let _ = tokio::time::timeout(Duration::from_secs(1), reader).await;
        }
        PipelineError::ToolFailed {
            program: PROGRAM,
            status,
            stderr: self.stderr_tail(),
        }
    }

    fn bad_output(&self, message: String) -> PipelineError {
        PipelineError::BadOutput {
            engine: PROGRAM,
            message,
        }
    }

    fn stderr_tail(&self) -> String {
        tail(&self.stderr.lock().expect("not poisoned"))
    }
}

/// Up to a number of helpers, each serving one request at a time.
pub(super) struct Pool {
    python: PathBuf,
    idle: Mutex<Vec<Helper>>,
    slots: Semaphore,
}

impl Pool {
    pub fn new(python: PathBuf, helpers: usize) -> Pool {
        Pool {
            python,
            idle: Mutex::new(Vec::new()),
            slots: Semaphore::new(helpers.max(1)),
        }
    }

    /// Sends `request` to a helper, waiting for one to be free, and returns its answer.
    pub async fn call<T: DeserializeOwned>(&self, request: &impl Serialize) -> Result<T> {
        let _slot = self.slots.acquire().await.expect("never closed");
        let mut helper = self.take().await?;
        // A broken helper, or one whose request is dropped with this future, is dropped
        // (killed); one that answered, even with a refusal, serves the next request.
        let answer = helper.call(request).await?;
        self.idle.lock().expect("not poisoned").push(helper);
        answer.map_err(|error| PipelineError::ToolFailed {
            program: PROGRAM,
            status: "the request failed".into(),
            stderr: error,
        })
    }

    /// An idle helper that is still running, or a new one.
    async fn take(&self) -> Result<Helper> {
        loop {
            let idle = self.idle.lock().expect("not poisoned").pop();
            match idle {
                Some(mut helper) => {
                    if helper.alive() {
                        return Ok(helper);
                    }
                }
                None => return Helper::start(&self.python).await,
            }
        }
    }
}
