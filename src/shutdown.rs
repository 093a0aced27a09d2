//! Stopping on a signal, the same way in both long-running binaries: the first SIGTERM or
//! SIGINT cancels a token, on which the process stops taking work and finishes what it
//! has; a second one exits at once (status 130), abandoning the rest.

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// What the process logs at each signal.
#[derive(Debug, Clone, Copy)]
pub struct Messages {
    /// At the first signal: what it finishes before it exits.
    pub first: &'static str,
    /// At the second: what becomes of what it abandons.
    pub second: &'static str,
}

/// A token cancelled at the first SIGTERM or SIGINT; the second exits the process. Must
/// be called inside a Tokio runtime.
pub fn on_signals(messages: Messages) -> std::io::Result<CancellationToken> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let shutdown = CancellationToken::new();
    let first = shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("{}", messages.first);
        first.cancel();
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::warn!("{}", messages.second);
        std::process::exit(130);
    });
    Ok(shutdown)
}
