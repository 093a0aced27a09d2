//! The database going away under three worker processes and the API: restarted, crashed,
//! its connections terminated. The library's scenario runs the processes, probes the API
//! and creates jobs through it, and checks every promise; these tests run it short.

use super::{binaries, own_database};
use crate::harness::TestDb;
use octavia_dev::chaos::{self, ChaosReport, DatabaseFault, DatabaseOptions};

fn short() -> DatabaseOptions {
    DatabaseOptions {
        jobs: 40,
        segments: 5,
        segment_ms: 100,
        workers: 3,
        concurrency: 4,
        faults: 2,
        fault_every_ms: 1500,
        outage_ms: 1500,
        api_job_every_ms: 200,
        probe_every_ms: 25,
        settle_seconds: 60,
    }
}

/// What every database scenario must show besides its own promises: the API answered
/// and created jobs, and after every fault the API and the listeners came back.
fn assert_recovered(report: &ChaosReport) {
    // The figures, for `cargo test -- --nocapture`.
    eprintln!("{}", report.summary());
    assert!(report.ok(), "{}", report.summary());
    let api = report.api.as_ref().expect("the API was probed");
    assert!(api.ok > 0 && api.jobs_created > 0, "{}", report.summary());
    for f in &report.faults {
        assert!(
            f.recovery.api_2xx_seconds.is_some() && f.recovery.listeners_seconds.is_some(),
            "{}",
            report.summary()
        );
    }
    assert!(report.ledgers.iter().all(|l| l.balanced));
}

#[tokio::test]
async fn workers_and_the_api_ride_out_a_postgres_restart_and_a_crash() {
    let (cluster, url) = own_database("restart").await;
    let report = chaos::database_faults(
        &url,
        Some(&cluster),
        DatabaseFault::Restarts,
        &short(),
        &binaries(),
    )
    .await
    .unwrap();
    assert_recovered(&report);
    let kinds: Vec<&str> = report.faults.iter().map(|f| f.kind).collect();
    assert_eq!(kinds, ["pg_restart", "pg_crash"]);
    // While PostgreSQL was down the API said so, in JSON (the scenario checks the body).
    assert!(
        report.api.as_ref().unwrap().unavailable > 0,
        "{}",
        report.summary()
    );
    assert_eq!(
        report.jobs_by_status.keys().collect::<Vec<_>>(),
        ["completed"]
    );
}

#[tokio::test]
async fn killed_connections_of_workers_and_the_api_are_replaced_and_no_work_is_lost() {
    let db = TestDb::new().await;
    let opts = DatabaseOptions {
        faults: 4,
        fault_every_ms: 700,
        ..short()
    };
    let report = chaos::database_faults(
        &db.url,
        None,
        DatabaseFault::Terminations,
        &opts,
        &binaries(),
    )
    .await
    .unwrap();
    assert_recovered(&report);
    assert!(
        report.faults.iter().all(|f| f.kind == "terminate_backends"),
        "{}",
        report.summary()
    );
    assert_eq!(
        report.jobs_by_status.keys().collect::<Vec<_>>(),
        ["completed"]
    );
}
