//! Waking the workers on behalf of a process that makes work ready in many small
//! transactions of its own: the API, one job creation per request.
//!
//! A `NOTIFY` inside each of those transactions would be sent on commit, but PostgreSQL
//! serialises every transaction that notifies on one lock held through its commit, WAL
//! flush included: with 32 connections, transactions that each insert a row and notify
//! commit about 1,500-2,000 times a second on this machine, against 10,000-11,000 without
//! the notification. The waker instead sends one notification after the commits, from a
//! task of its own, and folds every wake-up asked for while it is sending into the next
//! one. Workers poll besides, so a notification lost with the process costs at most one
//! poll interval.

use crate::db;
use crate::sql;
use deadpool_postgres::Pool;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Handle of the task that notifies [`super::WORK_CHANNEL`]; cloning is cheap.
#[derive(Clone)]
pub struct Waker {
    pending: Arc<AtomicBool>,
    asked: Arc<Notify>,
}

impl Waker {
    /// Starts the task, which runs until `stop` is cancelled.
    pub fn start(pool: Pool, stop: CancellationToken) -> Waker {
        let waker = Waker {
            pending: Arc::default(),
            asked: Arc::default(),
        };
        let pending = waker.pending.clone();
        let asked = waker.asked.clone();
        tokio::spawn(async move {
            send_when_asked(&asked, &stop, || async {
                if !pending.swap(false, Ordering::SeqCst) {
                    return;
                }
                let sent = async {
                    let client = pool.get().await?;
                    db::execute(&client, sql::NOTIFY_WORK, &[]).await
                }
                .await;
                if let Err(e) = sent {
                    tracing::warn!(error = %e, "could not wake the workers; they will poll");
                }
            })
            .await
        });
        waker
    }

    /// Asks for a notification, sent after this call; call it once the work is committed.
    pub fn wake(&self) {
        self.pending.store(true, Ordering::SeqCst);
        self.asked.notify_one();
    }
}

/// The loop of a task that sends, after commits, what others ask for: `send` runs at each
/// wake-up on `asked` (what is asked for while it runs folds into the next run), and once
/// more when `stop` is cancelled, so nothing asked for before the stop is left unsent.
/// `send` takes what is pending itself and does nothing when nothing is.
pub(crate) async fn send_when_asked<F, Fut>(asked: &Notify, stop: &CancellationToken, mut send: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    loop {
        let stopping = tokio::select! {
            _ = asked.notified() => false,
            _ = stop.cancelled() => true,
        };
        send().await;
        if stopping {
            return;
        }
    }
}
