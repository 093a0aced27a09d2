//! Why the demo failed.

use super::setup::DEMO_DIR;

/// Why the demo failed. Each message says what went wrong and, where there is one, the fix.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Octavia(#[from] octavia::Error),
    #[error("making the demo video: {0} (bin/deps installs ffmpeg and espeak-ng)")]
    Pipeline(#[from] octavia::pipeline::PipelineError),
    /// The request failed before any answer (the message has the causes: reqwest keeps
    /// them out of its own, and they are not a `source` so they are not told twice).
    #[error("{what}: {} (see the API's log in {DEMO_DIR}/logs/api.log)", chain(.error))]
    Http { what: String, error: reqwest::Error },
    #[error("{what}: the API answered {status} {code}: {message}")]
    Api {
        what: String,
        status: u16,
        code: String,
        message: String,
    },
    /// A child process ended before the demo stopped it; its log says why (a worker
    /// missing a program names the package and bin/deps).
    #[error("the demo's {name} process exited early ({status}); the last lines of {log}:\n{tail}")]
    ChildDied {
        name: String,
        status: String,
        log: String,
        tail: String,
    },
    #[error("{0}")]
    Failed(String),
    #[error("interrupted: everything the demo started was stopped; run bin/demo again")]
    Interrupted,
}

/// An error with its causes, which reqwest keeps out of its own message.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
