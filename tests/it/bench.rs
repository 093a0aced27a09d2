//! `octavia-dev bench`'s queue measurement (pickup latency, then throughput) with workers
//! whose `PATH` holds none of the pipeline's programs, as on a machine with PostgreSQL
//! alone; and with a worker that cannot start, which must fail the bench at once with the
//! worker's own error. On scratch databases of DATABASE_URL's server, else of the bench's
//! own throwaway cluster, as `octavia-dev bench` runs.

use octavia_dev::bench::{self, QueueArgs};
use octavia_dev::cluster::ScratchDatabase;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The smallest run that still measures something: seconds, not minutes.
fn small() -> QueueArgs {
    QueueArgs {
        jobs: 40,
        segments: 3,
        concurrency: 8,
        workers: 2,
        planned: false,
        latency_samples: 5,
    }
}

/// An `octavia-worker` that finds no program at all: a script running this build's
/// worker with `PATH` set to an empty directory, `args` before its caller's own.
pub fn worker_without_programs(dir: &Path, args: &str) -> PathBuf {
    let empty = dir.join("empty-path");
    std::fs::create_dir_all(&empty).unwrap();
    let script = dir.join("octavia-worker");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nexport PATH='{}'\nexec '{}' {args} \"$@\"\n",
            empty.display(),
            env!("CARGO_BIN_EXE_octavia-worker")
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

#[tokio::test]
async fn the_bench_needs_none_of_the_pipelines_programs() {
    let dir = tempfile::tempdir().unwrap();
    let worker = worker_without_programs(dir.path(), "");
    let report = bench::queue(&small(), &worker)
        .await
        .unwrap_or_else(|e| panic!("the bench failed: {e}"));
    let json: serde_json::Value = serde_json::to_value(&report).unwrap();
    assert_eq!(json["jobs"], 40, "{json:#}");
    assert_eq!(json["workers"], 2, "{json:#}");
    for figure in [
        "enqueue_jobs_per_second",
        "segments_per_second",
        "jobs_per_second",
        "pickup_latency_ms_p50",
        "pickup_latency_ms_p99",
        "worker_peak_rss_mb",
    ] {
        let value = json[figure].as_f64();
        assert!(value.is_some_and(|v| v > 0.0), "{figure}: {json:#}");
    }
    // The workers did the work: every segment and job went through their claims.
    assert!(
        json["worker"]["segment_claims"].as_f64() > Some(0.0),
        "{json:#}"
    );
    assert!(
        json["worker"]["job_writes"].as_f64() > Some(0.0),
        "{json:#}"
    );
}

#[tokio::test]
async fn a_bench_whose_worker_cannot_start_fails_at_once_with_the_workers_error() {
    // The server is up (the bench's throwaway cluster starts with its first database), so
    // the time below is the bench's own.
    ScratchDatabase::create("bench")
        .await
        .unwrap()
        .drop()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Serving subtitles too, it checks the pipeline's programs, finds none, and exits.
    let worker = worker_without_programs(dir.path(), "--job-types subtitles");
    let started = Instant::now();
    let e = bench::queue(&small(), &worker)
        .await
        .expect_err("a worker that cannot start")
        .to_string();
    let took = started.elapsed();
    for part in [
        "the benchmark's worker bench-0 exited (exit status: 1)",
        "this worker runs pipeline jobs",
        "missing the program `ffmpeg`",
    ] {
        assert!(e.contains(part), "`{part}` not in: {e}");
    }
    assert!(!e.contains("did not complete"), "{e}");
    // Not the 30 s a latency sample is given before the bench gives up on it.
    assert!(took < Duration::from_secs(15), "{took:?}: {e}");
}
