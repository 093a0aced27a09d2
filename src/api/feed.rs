//! The API process's feed of job changes: one LISTEN connection on `octavia_job_events`
//! (see [`crate::queue::job_events`]), broadcast to every open event stream
//! ([`super::events`]).

use crate::queue::{job_events, listener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// LISTEN is a utility statement (it cannot be prepared, so it is not in `sql/`); the
/// channel is the one migration V3's trigger notifies.
const LISTEN: &str = "LISTEN octavia_job_events";

/// Notifications buffered per stream before it lags (and then re-reads).
const BUFFER: usize = 1024;

/// Every stream re-reads its job this often even without a notification.
pub(super) const POLL: Duration = Duration::from_secs(5);

/// What the listener tells the streams.
#[derive(Debug, Clone, Copy)]
pub(super) enum Signal {
    /// This job's status or progress changed.
    Job(Uuid),
    /// Notifications may have been lost (the listener reconnected): everyone re-reads.
    Resync,
}

/// The API process's LISTEN connection and the streams' broadcast channel.
#[derive(Clone)]
pub struct JobEvents {
    sender: broadcast::Sender<Signal>,
    connected: Arc<AtomicBool>,
}

impl JobEvents {
    /// Listens on `url` until `stop` is cancelled; without one (behind a transaction
    /// pooler with no `database.direct_url`) the streams only re-read every [`POLL`].
    pub fn start(url: Option<String>, stop: CancellationToken) -> JobEvents {
        let (sender, _) = broadcast::channel(BUFFER);
        let Some(url) = url else {
            return JobEvents {
                sender,
                connected: Arc::new(AtomicBool::new(false)),
            };
        };
        let to_streams = sender.clone();
        // No receiver is not an error: there may be no stream open.
        let listener = listener::Listener::start(
            url,
            LISTEN,
            move |event| match event {
                listener::Event::Notification(payload) => {
                    for id in job_events::parse(&payload) {
                        let _ = to_streams.send(Signal::Job(id));
                    }
                }
                // Whatever changed while nobody listened: every stream looks again.
                listener::Event::Listening => {
                    let _ = to_streams.send(Signal::Resync);
                }
            },
            stop,
        );
        JobEvents {
            sender,
            connected: listener.connected_flag(),
        }
    }

    /// Whether the LISTEN is in place right now.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst)
    }

    pub(super) fn subscribe(&self) -> broadcast::Receiver<Signal> {
        self.sender.subscribe()
    }
}
