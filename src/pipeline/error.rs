//! The pipeline's one error type, and whether an error is worth a retry.

use std::path::PathBuf;

/// A subtitle file that cannot be read, with the line at fault when there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
pub struct SubtitleError {
    /// 1-based line of the input where the problem is; `None` for the file as a whole.
    pub line: Option<usize>,
    pub message: String,
}

impl SubtitleError {
    pub(crate) fn at(line: usize, message: impl Into<String>) -> Self {
        Self {
            line: Some(line),
            message: message.into(),
        }
    }

    pub(crate) fn file(message: impl Into<String>) -> Self {
        Self {
            line: None,
            message: message.into(),
        }
    }
}

/// Everything that can go wrong in the pipeline's engines and media operations.
///
/// Handlers turn these into queue decisions with [`PipelineError::is_retryable`]: a
/// retryable error is the environment's fault (a crashed or missing program, the disk, the
/// network, an overloaded service) and may pass on another attempt; a fatal one is the
/// input's fault and fails the same way every time.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A program the pipeline runs is not installed on this machine.
    #[error(
        "`{program}` is not installed: install it with `apt-get install -y {package}` (or run bin/deps)"
    )]
    ToolMissing {
        program: &'static str,
        package: &'static str,
    },
    /// The start-up check found programs or data the configured engines need missing.
    #[error(
        "the pipeline cannot run: missing {missing}; install with `apt-get install -y {packages}` (or run bin/deps)"
    )]
    EnginesUnavailable { missing: String, packages: String },
    /// An engine installed outside Debian's packages (the whisper engine's Python and
    /// models) is missing: `install` is the command that installs it.
    #[error("the {engine} engine cannot run: {missing}; install it with `{install}`")]
    EngineMissing {
        engine: &'static str,
        missing: String,
        install: &'static str,
    },
    /// A program ran and failed; `stderr` is the end of what it printed.
    #[error("`{program}` failed ({status}): {stderr}")]
    ToolFailed {
        program: &'static str,
        status: String,
        stderr: String,
    },
    /// The input is not media we can use (not media at all, no audio, zero length).
    #[error("{}: {reason}", path.display())]
    InvalidMedia { path: PathBuf, reason: String },
    /// A subtitle file that cannot be parsed.
    #[error("invalid subtitles: {0}")]
    Subtitles(#[from] SubtitleError),
    /// A language, or a pair of languages, an engine does not support.
    #[error("unsupported language: {0}")]
    UnsupportedLanguage(String),
    /// A caller's argument that can never work (an empty window, a zero duration).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// An engine answered with something we cannot use.
    #[error("{engine} returned unusable output: {message}")]
    BadOutput {
        engine: &'static str,
        message: String,
    },
    /// Reading or writing a local file failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    /// An HTTP engine answered with an error status.
    #[error("{engine}: HTTP {status} from {url}: {body}")]
    HttpStatus {
        engine: &'static str,
        url: String,
        status: u16,
        body: String,
    },
    /// An HTTP engine could not be reached, timed out, or sent a body we could not read.
    #[error("{engine}: request to {url} failed: {source}")]
    Http {
        engine: &'static str,
        url: String,
        source: reqwest::Error,
    },
}

/// The pipeline's result type.
pub type Result<T, E = PipelineError> = std::result::Result<T, E>;

impl PipelineError {
    /// Whether another attempt may succeed.
    ///
    /// A missing program is retryable: the worker's start-up check should have caught it,
    /// so it is this machine's problem and another worker may have the program.
    pub fn is_retryable(&self) -> bool {
        match self {
            PipelineError::ToolMissing { .. }
            | PipelineError::EnginesUnavailable { .. }
            | PipelineError::EngineMissing { .. }
            | PipelineError::ToolFailed { .. }
            | PipelineError::Io { .. }
            | PipelineError::Http { .. } => true,
            // 408 and 429 ask the client to come back later; 5xx is the server's fault.
            PipelineError::HttpStatus { status, .. } => {
                *status >= 500 || *status == 408 || *status == 429
            }
            PipelineError::InvalidMedia { .. }
            | PipelineError::Subtitles(_)
            | PipelineError::UnsupportedLanguage(_)
            | PipelineError::InvalidInput(_)
            | PipelineError::BadOutput { .. } => false,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        PipelineError::Io {
            context: context.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_is_the_environment_fatal_is_the_input() {
        let status = |status| PipelineError::HttpStatus {
            engine: "t",
            url: "u".into(),
            status,
            body: String::new(),
        };
        assert!(status(503).is_retryable());
        assert!(status(429).is_retryable());
        assert!(!status(400).is_retryable());
        assert!(!status(401).is_retryable());
        assert!(PipelineError::io("x", std::io::Error::other("disk")).is_retryable());
        assert!(!PipelineError::Subtitles(SubtitleError::file("empty")).is_retryable());
        assert!(!PipelineError::UnsupportedLanguage("fr".into()).is_retryable());
    }

    #[test]
    fn subtitle_errors_name_the_line() {
        assert_eq!(SubtitleError::at(3, "bad").to_string(), "line 3: bad");
        assert_eq!(SubtitleError::file("empty").to_string(), "empty");
    }
}
