//! Following a job to its end: its event stream (falling back to reading the job when the
//! stream drops), a line per change, and a check that every child is still alive.

use super::children::Children;
use super::client::{ApiClient, Progress};
use super::error::DemoError;
use futures_util::StreamExt;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How often the children are checked while the job runs.
const WATCH: Duration = Duration::from_millis(500);

/// Width of the progress bar, in characters.
const BAR: usize = 20;

/// What a job in this state is doing, for a person watching.
pub fn describe(p: &Progress) -> String {
    let (done, total) = (p.segments_done, p.segments_total);
    let filled = (p.progress.clamp(0, 100) as usize * BAR) / 100;
    let bar = format!(
        "[{}{}] {:>3}%  segments {done}/{total}",
        "#".repeat(filled),
        ".".repeat(BAR - filled),
        p.progress
    );
    match p.status.as_str() {
        "pending" | "queued" => "waiting for a worker to plan it".into(),
        "running" if total == 0 => "planning: probing the video and cutting it at silences".into(),
        "running" if done >= total => {
            format!("{bar}  finalizing: joining the dub, muxing it, writing subtitles")
        }
        "failed" | "cancelled" => format!(
            "segments {done}/{total}: {}",
            p.error.as_deref().unwrap_or("no error recorded")
        ),
        _ => bar,
    }
}

/// One progress line: seconds since the job was created, status, what it is doing.
pub fn line(elapsed: Duration, p: &Progress) -> String {
    format!(
        "  {:>6.1} s  {:<9}  {}",
        elapsed.as_secs_f64(),
        p.status,
        describe(p)
    )
}

/// Follows job `id` until it ends or `timeout` passes, calling `report` once per change.
/// Fails as soon as a child process dies. Returns the job's last state.
pub async fn follow(
    client: &ApiClient,
    id: Uuid,
    children: &mut Children,
    timeout: Duration,
    mut report: impl FnMut(&Progress),
) -> Result<Progress, DemoError> {
    let started = Instant::now();
    let mut last: Option<Progress> = None;
    let mut seen = |p: &Progress| {
        if last.as_ref() != Some(p) {
            report(p);
            last = Some(p.clone());
        }
    };
    let mut watch = tokio::time::interval(WATCH);
    let too_long = || {
        DemoError::Failed(format!(
            "the job did not end within {} s: see the workers' logs in {}",
            timeout.as_secs(),
            super::setup::DemoPaths::new(super::setup::DEMO_DIR)
                .logs()
                .display()
        ))
    };
    loop {
        match client.events(id).await {
            Ok(mut events) => loop {
                tokio::select! {
                    event = events.next() => match event {
                        Some(Ok(p)) => {
                            seen(&p);
                            if p.is_terminal() {
                                return Ok(p);
                            }
                        }
                        // The connection dropped: read the job, then follow it again.
                        Some(Err(_)) | None => break,
                    },
                    _ = watch.tick() => {
                        children.check()?;
                        if started.elapsed() > timeout {
                            return Err(too_long());
                        }
                    }
                }
            },
            // The API refused (the job is not ours, the token expired): nothing to retry.
            Err(e @ DemoError::Api { .. }) => return Err(e),
            // Not reachable: a dead API is reported by the check below.
            Err(_) => {}
        }
        children.check()?;
        let p = Progress::from(&client.job(id).await?);
        seen(&p);
        if p.is_terminal() {
            return Ok(p);
        }
        if started.elapsed() > timeout {
            return Err(too_long());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(status: &str, progress: i32, done: i64, total: i64) -> Progress {
        Progress {
            status: status.into(),
            progress,
            segments_done: done,
            segments_total: total,
            error: None,
        }
    }

    #[test]
    fn each_phase_reads_as_what_the_job_is_doing() {
        assert!(describe(&progress("queued", 0, 0, 0)).contains("waiting"));
        assert!(describe(&progress("running", 0, 0, 0)).contains("planning"));
        let half = describe(&progress("running", 50, 3, 6));
        assert!(half.starts_with("[##########..........]  50%"), "{half}");
        assert!(half.ends_with("segments 3/6"), "{half}");
        assert!(describe(&progress("running", 100, 6, 6)).contains("finalizing"));
        let done = describe(&progress("completed", 100, 6, 6));
        assert!(done.starts_with("[####################] 100%"), "{done}");
        let mut failed = progress("failed", 33, 2, 6);
        failed.error = Some("segment 3: apertium is not installed".into());
        assert_eq!(
            describe(&failed),
            "segments 2/6: segment 3: apertium is not installed"
        );
    }

    #[test]
    fn a_line_shows_the_time_and_status() {
        let l = line(Duration::from_millis(12_345), &progress("running", 0, 0, 4));
        assert!(l.starts_with("    12.3 s  running    "), "{l:?}");
    }
}
