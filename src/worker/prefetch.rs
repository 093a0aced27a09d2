//! Segments claimed ahead of free slots (`worker.prefetch_ms`).
//!
//! A claim costs nearly as much for 30 rows as for 100, and while it runs the worker's
//! slots sit idle as soon as their short segments end. So a worker that gets through
//! segments quickly claims as many more as it starts in `prefetch_ms` (at most
//! `claim_batch`) and keeps them here, leased and renewed by the heartbeat like the ones
//! running; each starts as soon as a slot is free. A worker running long segments starts
//! few per millisecond and prefetches next to nothing, so it never sits on work other
//! workers could run. What waits here longer than a heartbeat interval is given back
//! without burning an attempt, and so is everything left at shutdown.

use crate::job::ClaimedSegment;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use std::time::Instant;
use tokio::sync::Notify;

/// How long the start rate is counted over before it is taken as the new rate.
const RATE_WINDOW: Duration = Duration::from_millis(100);

pub struct Prefetch {
    /// Claim ahead as many segments as start in this long; zero turns prefetching off.
    horizon: Duration,
    /// At most this many wait (`worker.claim_batch`).
    max: usize,
    queue: Mutex<VecDeque<(ClaimedSegment, Instant)>>,
    rate: Mutex<Rate>,
    /// Segments started since the rate's window began; counted on every start, so
    /// outside the lock.
    started: AtomicU64,
    /// Room taken by claims in flight, whose segments are not here yet.
    reserved: AtomicUsize,
    /// A segment was added.
    pub added: Notify,
}

/// Segments started per second, measured over the last whole window.
struct Rate {
    window_start: Instant,
    per_second: f64,
}

impl Prefetch {
    pub fn new(horizon: Duration, max: usize) -> Prefetch {
        Prefetch {
            horizon,
            max,
            queue: Mutex::new(VecDeque::new()),
            rate: Mutex::new(Rate {
                window_start: Instant::now(),
                per_second: 0.0,
            }),
            started: AtomicU64::new(0),
            reserved: AtomicUsize::new(0),
            added: Notify::new(),
        }
    }

    /// How many more segments a claim may take beyond the free slots.
    pub fn room(&self) -> usize {
        self.room_at(Instant::now())
    }

    fn room_at(&self, now: Instant) -> usize {
        if self.horizon.is_zero() {
            return 0;
        }
        let per_second = {
            let mut rate = self.rate();
            let elapsed = now.saturating_duration_since(rate.window_start);
            if elapsed >= RATE_WINDOW {
                let started = self.started.swap(0, Ordering::Relaxed);
                rate.per_second = started as f64 / elapsed.as_secs_f64();
                rate.window_start = now;
            }
            rate.per_second
        };
        let target = ((per_second * self.horizon.as_secs_f64()).ceil() as usize).min(self.max);
        target.saturating_sub(self.len() + self.reserved.load(Ordering::Relaxed))
    }

    /// Takes `n` of the room for a claim about to run, until [`Prefetch::unreserve`]: a
    /// second claim started meanwhile sees only what is left.
    pub fn reserve(&self, n: usize) {
        self.reserved.fetch_add(n, Ordering::Relaxed);
    }

    /// Gives back room taken by [`Prefetch::reserve`], once the claim's segments are here
    /// (or the claim failed).
    pub fn unreserve(&self, n: usize) {
        self.reserved.fetch_sub(n, Ordering::Relaxed);
    }

    /// Counts segments started, for the rate `room` follows.
    pub fn started(&self, n: usize) {
        self.started.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn push(&self, segments: Vec<ClaimedSegment>) {
        self.push_at(segments, Instant::now())
    }

    fn push_at(&self, segments: Vec<ClaimedSegment>, now: Instant) {
        if segments.is_empty() {
            return;
        }
        self.queue().extend(segments.into_iter().map(|s| (s, now)));
        self.added.notify_one();
    }

    pub fn pop(&self) -> Option<ClaimedSegment> {
        self.queue().pop_front().map(|(s, _)| s)
    }

    pub fn len(&self) -> usize {
        self.queue().len()
    }

    /// Takes the segments that have waited longer than `age`.
    pub fn take_older_than(&self, age: Duration) -> Vec<ClaimedSegment> {
        self.take_older_than_at(age, Instant::now())
    }

    fn take_older_than_at(&self, age: Duration, now: Instant) -> Vec<ClaimedSegment> {
        let mut queue = self.queue();
        let mut stale = Vec::new();
        while queue
            .front()
            .is_some_and(|(_, at)| now.saturating_duration_since(*at) > age)
        {
            stale.extend(queue.pop_front().map(|(s, _)| s));
        }
        stale
    }

    pub fn take_all(&self) -> Vec<ClaimedSegment> {
        self.queue().drain(..).map(|(s, _)| s).collect()
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, VecDeque<(ClaimedSegment, Instant)>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn rate(&self) -> std::sync::MutexGuard<'_, Rate> {
        self.rate.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use uuid::Uuid;

    fn segment(index: i32) -> ClaimedSegment {
        ClaimedSegment {
            id: Uuid::now_v7(),
            job_id: Uuid::now_v7(),
            job_type: "noop".into(),
            run: 1,
            index,
            start_ms: None,
            end_ms: None,
            attempt: 1,
            max_attempts: 5,
            input: Value::Null,
            traceparent: None,
        }
    }

    #[test]
    fn room_follows_the_start_rate_up_to_the_batch() {
        let p = Prefetch::new(Duration::from_millis(5), 100);
        let start = p.rate().window_start;
        assert_eq!(p.room_at(start), 0, "nothing started yet");
        // 2,000 started in 100 ms: 20,000/s, 100 per 5 ms.
        p.started(2000);
        let later = start + RATE_WINDOW;
        assert_eq!(p.room_at(later), 100);
        p.push((0..40).map(segment).collect());
        assert_eq!(p.room_at(later), 60, "what waits counts against the room");
        p.reserve(50);
        assert_eq!(
            p.room_at(later),
            10,
            "so does what a claim in flight will add"
        );
        p.unreserve(50);
        assert_eq!(p.room_at(later), 60);
        // 20 started in the next window: 200/s, one per 5 ms.
        p.started(20);
        let later = later + RATE_WINDOW;
        assert_eq!(p.room_at(later), 0, "40 wait already");
        assert_eq!(p.take_all().len(), 40);
        assert_eq!(p.room_at(later), 1);
    }

    #[test]
    fn off_with_a_zero_horizon() {
        let p = Prefetch::new(Duration::ZERO, 100);
        p.started(100_000);
        assert_eq!(p.room_at(Instant::now() + RATE_WINDOW), 0);
    }

    #[test]
    fn only_what_waited_too_long_is_taken_back() {
        let p = Prefetch::new(Duration::from_millis(5), 100);
        let start = Instant::now();
        p.push_at(vec![segment(0), segment(1)], start);
        p.push_at(vec![segment(2)], start + Duration::from_secs(3));
        let stale = p.take_older_than_at(Duration::from_secs(2), start + Duration::from_secs(4));
        assert_eq!(stale.iter().map(|s| s.index).collect::<Vec<_>>(), [0, 1]);
        assert_eq!(p.pop().map(|s| s.index), Some(2));
        assert!(p.pop().is_none());
    }
}
