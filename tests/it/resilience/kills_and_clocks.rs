//! Worker processes killed at random, a worker that cannot start, and workers whose
//! clocks disagree.

use super::binaries;
use crate::harness::TestDb;
use crate::support::*;
use octavia_dev::chaos::{self, Binaries, KillsOptions};
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test]
async fn random_sigkills_break_no_promise() {
    let db = TestDb::new().await;
    let opts = KillsOptions {
        jobs: 150,
        segments: 5,
        segment_ms: 200,
        fail_rate: 0.1,
        max_attempts: 10,
        workers: 3,
        concurrency: 8,
        kill_every_ms: 1000,
        chaos_seconds: 6,
        settle_seconds: 60,
        cost: 2,
    };
    let report = chaos::random_kills(&db.url, &opts, &binaries())
        .await
        .unwrap();
    assert!(report.ok(), "{}", report.summary());
    assert!(report.faults.len() >= 4, "{}", report.summary());
    assert!(
        report.segments.in_flight_at_faults > 0,
        "no kill caught work in flight: {}",
        report.summary()
    );
    // What a kill held was rescued and completed elsewhere, within a lease and a rescue.
    for kill in report.faults.iter().filter(|f| f.in_flight > 0) {
        let back = kill.recovery.work_back_seconds.expect("measured");
        assert!(back < 15.0, "{}", report.summary());
    }
    let ended: i64 = report.jobs_by_status.values().sum();
    assert_eq!(ended, 150);
    assert!(
        report
            .jobs_by_status
            .keys()
            .all(|s| s == "completed" || s == "failed"),
        "{report:?}"
    );
}

#[tokio::test]
async fn a_scenario_whose_worker_cannot_start_fails_at_once_with_the_workers_error() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    // Serving subtitles too, it checks the pipeline's programs, finds none, and exits.
    let bins = Binaries {
        worker: crate::bench::worker_without_programs(dir.path(), "--job-types subtitles"),
        ..binaries()
    };
    let opts = KillsOptions {
        jobs: 10,
        segments: 1,
        segment_ms: 0,
        fail_rate: 0.0,
        max_attempts: 3,
        workers: 1,
        concurrency: 2,
        kill_every_ms: 60_000,
        chaos_seconds: 60,
        settle_seconds: 60,
        cost: 0,
    };
    let started = Instant::now();
    let e = chaos::random_kills(&db.url, &opts, &bins)
        .await
        .expect_err("a worker that cannot start")
        .to_string();
    let took = started.elapsed();
    for part in [
        "the scenario's chaos-0 exited (exit status: 1)",
        "missing the program `ffmpeg`",
    ] {
        assert!(e.contains(part), "`{part}` not in: {e}");
    }
    // Not the minute of kills and the minute of settling the scenario was given.
    assert!(took < Duration::from_secs(15), "{took:?}: {e}");
    let kept = e
        .rsplit_once("kept in ")
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("no log directory in: {e}"));
    assert!(
        std::path::Path::new(kept).join("chaos-0.log").is_file(),
        "{e}"
    );
    std::fs::remove_dir_all(kept).unwrap();
}

#[tokio::test]
async fn leases_use_the_database_clock_not_the_workers() {
    let db = TestDb::new().await;
    let faketime = libfaketime().unwrap_or_else(|| {
        panic!(
            "libfaketime is missing: install it with `apt-get install -y faketime` (bin/deps does)"
        )
    });
    // Segments that outlive several leases; workers whose clocks are an hour off either
    // way, each running the rescuer. Were leases judged by a worker's clock, the fast one
    // would rescue the slow one's live leases and the slow one would never see its own
    // expire.
    let ids = enqueue_jobs(
        &db,
        (0..4)
            .map(|_| job("noop", json!({ "segments": 3, "segment_ms": 4500 })))
            .collect(),
    )
    .await;
    let mut workers: Vec<Process> = [("behind", "-1h"), ("ahead", "+1h")]
        .iter()
        .map(|(id, offset)| {
            spawn_worker_process_with(
                &db.url,
                id,
                &["--concurrency", "3"],
                Some((&faketime, offset)),
            )
        })
        .collect();
    let seen = std::sync::Mutex::new(std::collections::BTreeSet::new());
    let watched = ids.clone();
    wait_for(120, "every job to end", || {
        let db = &db;
        let watched = watched.clone();
        let seen = &seen;
        async move {
            let client = db.client().await;
            for r in client
                .query("SELECT DISTINCT locked_by FROM job_segments WHERE locked_by IS NOT NULL", &[])
                .await
                .unwrap()
            {
                seen.lock().unwrap().insert(r.get::<_, String>(0));
            }
            let open: i64 = client
                .query_one(
                    "SELECT count(*) FROM jobs WHERE id = ANY($1) AND status NOT IN ('completed','failed','cancelled')",
                    &[&watched],
                )
                .await
                .unwrap()
                .get(0);
            (open == 0).then_some(())
        }
    })
    .await;
    let seen = seen.into_inner().unwrap();
    assert_eq!(seen.len(), 2, "both skewed workers ran segments: {seen:?}");
    let client = db.client().await;
    let attempts: Vec<i32> = client
        .query("SELECT attempts FROM job_segments", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(attempts.len(), 12);
    assert!(
        attempts.iter().all(|&a| a == 1),
        "a live lease was rescued: {attempts:?}"
    );
    for w in &mut workers {
        signal(w, libc::SIGTERM);
        assert!(w.wait().unwrap().success());
    }
}

/// The multi-threaded libfaketime of Debian's `faketime` package, whatever the arch.
fn libfaketime() -> Option<std::path::PathBuf> {
    std::fs::read_dir("/usr/lib").ok()?.flatten().find_map(|e| {
        let lib = e.path().join("faketime/libfaketimeMT.so.1");
        lib.is_file().then_some(lib)
    })
}
