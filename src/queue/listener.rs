//! A LISTEN connection that survives: a dedicated connection (a pooled one would be handed
//! to other queries) that reconnects with backoff when it breaks and says so, since
//! notifications sent while it was down are lost. Workers listen for new work on
//! [`super::WORK_CHANNEL`] (and poll besides, so a lost notification delays work by at
//! most one poll interval); the API listens for job changes to feed its event streams.

use futures_util::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_postgres::AsyncMessage;
use tokio_util::sync::CancellationToken;

/// `LISTEN` for the workers' channel. LISTEN is a utility statement (it cannot be prepared,
/// so it is not in `sql/`).
pub const LISTEN_WORK: &str = "LISTEN octavia_work";

/// What a listener reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A notification arrived, with its payload.
    Notification(String),
    /// The LISTEN is (again) in place: whatever was notified meanwhile is lost.
    Listening,
}

/// A running listener.
pub struct Listener {
    connected: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Listener {
    /// Runs `listen` (a `LISTEN …` statement) at `url` and calls `on_event` for every
    /// notification and every (re)connection, until `stop` is cancelled.
    pub fn start(
        url: String,
        listen: &'static str,
        on_event: impl Fn(Event) + Send + Sync + 'static,
        stop: CancellationToken,
    ) -> Listener {
        let connected = Arc::new(AtomicBool::new(false));
        let flag = connected.clone();
        let task = tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    outcome = listen_once(&url, listen, &on_event, &flag) => {
                        flag.store(false, Ordering::SeqCst);
                        match outcome {
                            // It had been connected: start over quickly.
                            Ok(()) => backoff = Duration::from_millis(100),
                            Err(e) => tracing::warn!(error = %e, statement = listen, retry_in = ?backoff, "LISTEN connection failed"),
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

    /// The workers' listener: every notification, and every reconnection, wakes `wake`.
    pub fn for_work(url: String, wake: Arc<Notify>, stop: CancellationToken) -> Listener {
        Listener::start(url, LISTEN_WORK, move |_| wake.notify_one(), stop)
    }

    /// Whether the LISTEN is in place right now.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst)
    }

    /// A handle on [`Listener::is_connected`] that outlives borrows of the listener.
    pub fn connected_flag(&self) -> Arc<AtomicBool> {
        self.connected.clone()
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
    listen: &str,
    on_event: &(impl Fn(Event) + Send + Sync),
    connected: &AtomicBool,
) -> crate::Result<()> {
    let crate::db::tls::Target { config, tls } = crate::db::tls::target(url)?;
    let (client, mut connection) = config.connect(tls).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if tx.send(n.payload().to_string()).is_err() {
                        return Ok(());
                    }
                }
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    });
    client.batch_execute(listen).await?;
    connected.store(true, Ordering::SeqCst);
    tracing::debug!(statement = listen, "listening");
    on_event(Event::Listening);
    while let Some(payload) = rx.recv().await {
        on_event(Event::Notification(payload));
    }
    drop(client);
    if let Ok(Err(e)) = driver.await {
        tracing::warn!(error = %e, statement = listen, "LISTEN connection lost");
    }
    Ok(())
}
