//! The LISTEN connection that wakes idle workers when work becomes ready. It is a
//! dedicated connection (a pooled one would be handed to other queries), reconnects with
//! backoff when it breaks, and wakes the worker after every (re)connect, since
//! notifications sent while it was down are lost. Workers also poll, so a lost
//! notification delays work by at most one poll interval.

use futures_util::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_postgres::{AsyncMessage, NoTls};
use tokio_util::sync::CancellationToken;

/// LISTEN is a utility statement (it cannot be prepared, so it is not in `sql/`); the
/// channel is [`super::WORK_CHANNEL`].
const LISTEN: &str = "LISTEN octavia_work";

/// A running listener.
pub struct Listener {
    connected: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Listener {
    /// Starts listening at `url`; every notification (and every reconnect) calls
    /// `wake.notify_one()`. Stops when `stop` is cancelled.
    pub fn start(url: String, wake: Arc<Notify>, stop: CancellationToken) -> Listener {
        let connected = Arc::new(AtomicBool::new(false));
        let flag = connected.clone();
        let task = tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    outcome = listen_once(&url, &wake, &flag) => {
                        flag.store(false, Ordering::SeqCst);
                        match outcome {
                            // It had been connected: start over quickly.
                            Ok(()) => backoff = Duration::from_millis(100),
                            Err(e) => tracing::warn!(error = %e, retry_in = ?backoff, "LISTEN connection failed"),
                        }
                    }
                }
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        });
        Listener { connected, task }
    }

    /// Whether the LISTEN is in place right now.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst)
    }

    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// Connects, LISTENs and forwards notifications until the connection ends. Ok means it
/// was connected and then lost.
async fn listen_once(
    url: &str,
    wake: &Notify,
    connected: &AtomicBool,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = tokio_postgres::connect(url, NoTls).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(_)) => {
                    if tx.send(()).is_err() {
                        return Ok(());
                    }
                }
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    });
    client.batch_execute(LISTEN).await?;
    connected.store(true, Ordering::SeqCst);
    tracing::debug!("listening for work");
    // Anything notified while we were not listening is lost: look for work now.
    wake.notify_one();
    while rx.recv().await.is_some() {
        wake.notify_one();
    }
    drop(client);
    match driver.await {
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "LISTEN connection lost");
            Ok(())
        }
        _ => Ok(()),
    }
}
