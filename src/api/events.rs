//! Live job progress: `GET /api/jobs/{id}/events`, a Server-Sent Events stream of a job's
//! status and progress as they change, ending at a terminal status.
//!
//! A trigger on `jobs` (migrations V3 and V6) notifies `octavia_job_events` with the job's
//! id whenever its status or progress changes, and the worker sends the ids of the jobs
//! its queue statements changed after they commit, many per notification
//! ([`crate::queue::job_events`]). Each API process holds one LISTEN connection
//! ([`super::JobEvents`]), reconnecting with backoff, and fans the ids out to its streams over a
//! broadcast channel; a stream re-reads its job's row on each of its notifications and
//! sends what changed. A stream subscribes before it reads the job the first time, so a
//! change between the two is not missed. Notifications are lost while the connection is
//! down (every stream re-reads at each reconnect) or when a slow stream lags behind the
//! channel (it re-reads then too), and every stream also re-reads every few seconds, so a
//! lost notification delays an update, never loses it.

use super::auth::Caller;
use super::error::{ApiError, ApiPath, ErrorBody};
use super::feed::{POLL, Signal};
use super::jobs;
use super::state::ApiState;
use crate::job::JobStatus;
use crate::{db, sql};
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Serialize;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast;
use utoipa::ToSchema;
use uuid::Uuid;

/// One Server-Sent Event of a job's stream, as an SSE client hands it over: its name and
/// its data.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobEventMessage {
    /// Always `job`.
    #[schema(pattern = "^job$")]
    pub event: String,
    /// A [`JobEvent`], as JSON.
    #[schema(content_media_type = "application/json")]
    pub data: String,
}

/// The data of each event of a job's stream (SSE event name `job`).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct JobEvent {
    pub id: Uuid,
    pub status: JobStatus,
    pub progress: i32,
    pub segments_done: i32,
    pub segments_total: i32,
    pub error: Option<String>,
}

async fn read(state: &ApiState, id: Uuid) -> Result<Option<JobEvent>, ApiError> {
    let client = state.pool.get().await?;
    Ok(db::query_opt(&client, sql::JOB_PROGRESS, &[&id])
        .await?
        .map(|r| JobEvent {
            id,
            status: r.get("status"),
            progress: r.get::<_, Option<i32>>("progress").unwrap_or(0),
            segments_done: r.get("segments_done"),
            segments_total: r.get("segments_total"),
            error: r.get("last_error"),
        }))
}

/// A stream's state between events.
struct Follow {
    state: ApiState,
    id: Uuid,
    signals: broadcast::Receiver<Signal>,
    poll: tokio::time::Interval,
    last: Option<JobEvent>,
    /// The first read, sent before waiting for anything.
    first: Option<JobEvent>,
    done: bool,
}

impl Follow {
    /// The next event worth sending, or `None` when the stream is over.
    async fn next(&mut self) -> Option<JobEvent> {
        if self.done {
            return None;
        }
        if let Some(first) = self.first.take() {
            return Some(self.sent(first));
        }
        loop {
            tokio::select! {
                _ = self.state.shutdown.cancelled() => return None,
                signal = self.signals.recv() => match signal {
                    Ok(Signal::Job(id)) if id != self.id => continue,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = self.poll.tick() => {}
            }
            match read(&self.state, self.id).await {
                Ok(Some(event)) if self.last.as_ref() != Some(&event) => {
                    return Some(self.sent(event));
                }
                Ok(Some(_)) => {}
                // Deleted under the stream: nothing more will happen to it.
                Ok(None) => return None,
                // The database is away; the poll tries again.
                Err(e) => tracing::debug!(error = %e, job.id = %self.id, "cannot re-read job"),
            }
        }
    }

    fn sent(&mut self, event: JobEvent) -> JobEvent {
        self.done = event.status.is_terminal();
        self.last = Some(event.clone());
        event
    }
}

/// Live status and progress of a job as Server-Sent Events named `job`, each with a
/// [`JobEvent`] as JSON data: the current state first, then every change, ending after a
/// terminal status (completed, failed, cancelled).
#[utoipa::path(
    get,
    operation_id = "streamJobEvents",
    path = "/api/jobs/{id}/events",
    tag = "jobs",
    params(("id" = Uuid, Path, description = "The job id")),
    responses(
        (status = 200, description = "Server-Sent Events named `job`, each one's data a JobEvent (JSON), until the job ends",
            content_type = "text/event-stream", body = JobEventMessage),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such job of the caller's", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn job_events(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    // Armed before the first read, so no change falls between the two.
    let signals = state.events.subscribe();
    {
        let client = state.pool.get().await?;
        jobs::visible(&client, &caller, id, false).await?;
    }
    let first = read(&state, id).await?.ok_or(ApiError::NotFound("job"))?;
    let mut poll = tokio::time::interval(POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    poll.reset();
    let follow = Follow {
        state,
        id,
        signals,
        poll,
        last: None,
        first: Some(first),
        done: false,
    };
    let stream = futures_util::stream::unfold(follow, |mut follow| async move {
        let event = follow.next().await?;
        let sse = Event::default()
            .event("job")
            .json_data(&event)
            .unwrap_or_else(|_| Event::default().event("job"));
        Some((Ok(sse), follow))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
