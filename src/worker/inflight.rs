//! The attempts a worker is running, for the heartbeat (which renews their leases) and for
//! shutdown (which releases what is left).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// One attempt: a segment or a job-level step, and its attempt number (the same row can
/// come back to this worker under a later attempt while an old one still winds down).
/// A job's plan and its finalize can both be in flight under attempt 1 (the finalize
/// leased while the plan's record is still being written), so a step's key says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub id: Uuid,
    pub attempt: i32,
    /// `None` for a segment.
    pub step: Option<crate::job::Step>,
}

impl Key {
    /// A claimed segment's attempt.
    pub fn segment(segment: &crate::job::ClaimedSegment) -> Key {
        Key {
            id: segment.id,
            attempt: segment.attempt,
            step: None,
        }
    }

    pub fn is_step(&self) -> bool {
        self.step.is_some()
    }
}

/// Why an attempt was told to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// Its job is being cancelled or has failed.
    JobStopping,
    /// The heartbeat found the lease gone: another worker may own the row now.
    LeaseLost,
    /// It ran longer than its handler's timeout.
    Timeout,
    /// The worker is shutting down and the grace period is over.
    Shutdown,
}

pub struct Entry {
    pub cancel: CancellationToken,
    reason: Mutex<Option<StopReason>>,
    /// The result is waiting to be recorded by the completer: shutdown must not release it.
    completing: Mutex<bool>,
}

impl Entry {
    /// Tells the attempt to stop; the first reason given wins.
    pub fn stop(&self, reason: StopReason) {
        let mut r = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        if r.is_none() {
            *r = Some(reason);
        }
        drop(r);
        self.cancel.cancel();
    }

    pub fn reason(&self) -> Option<StopReason> {
        *self.reason.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_completing(&self) {
        *self.completing.lock().unwrap_or_else(|e| e.into_inner()) = true;
    }

    pub fn is_completing(&self) -> bool {
        *self.completing.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Default)]
pub struct InFlight {
    map: Mutex<HashMap<Key, Arc<Entry>>>,
    emptied: Notify,
}

impl InFlight {
    /// The attempt's entry, made on first use: a prefetched segment's is made when it is
    /// claimed, so a stop the heartbeat gives it while it waits still reaches its run.
    pub fn insert(&self, key: Key) -> Arc<Entry> {
        self.lock()
            .entry(key)
            .or_insert_with(|| {
                Arc::new(Entry {
                    cancel: CancellationToken::new(),
                    reason: Mutex::new(None),
                    completing: Mutex::new(false),
                })
            })
            .clone()
    }

    pub fn remove(&self, key: &Key) {
        let mut map = self.lock();
        map.remove(key);
        if map.is_empty() {
            self.emptied.notify_waiters();
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn entries(&self) -> Vec<(Key, Arc<Entry>)> {
        self.lock().iter().map(|(k, e)| (*k, e.clone())).collect()
    }

    /// Waits until nothing is in flight.
    pub async fn wait_empty(&self) {
        loop {
            let emptied = self.emptied.notified();
            if self.is_empty() {
                return;
            }
            emptied.await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Arc<Entry>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}
