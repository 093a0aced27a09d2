//! Faults outside the worker: random SIGKILLs, PostgreSQL restarting, connections killed,
//! clocks that disagree. Short versions of `bin/chaos`.

use crate::harness::TestDb;
use crate::support::*;
use octavia::chaos::{self, ChaosOptions};
use octavia::pg::{Cluster, Durability};
use serde_json::json;
use std::path::Path;
use std::time::Duration;

#[tokio::test]
async fn random_sigkills_break_no_promise() {
    let db = TestDb::new().await;
    let opts = ChaosOptions {
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
    let worker = Path::new(env!("CARGO_BIN_EXE_octavia-worker"));
    let report = chaos::random_kills(&db.url, &opts, worker).await.unwrap();
    assert!(report.ok(), "{:#?}", report.violations);
    assert!(report.kills >= 4, "{report:?}");
    assert!(
        report.in_flight_at_kills > 0,
        "no kill caught work in flight: {report:?}"
    );
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

/// A PostgreSQL of this test's own, for faults that would disturb the other tests.
async fn own_database(name: &str) -> (Cluster, TestDbUrl) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/octavia-pg")
        .join(format!("{name}-{}", std::process::id()));
    let cluster = Cluster::start(&dir, Durability::Fast).expect("a PostgreSQL of the test's own");
    cluster.remove_at_exit().unwrap();
    octavia::pg::create_database(&cluster.url("postgres"), "octavia", None)
        .await
        .unwrap();
    let url = cluster.url("octavia");
    octavia::migrate::run_url(&url).await.unwrap();
    (cluster, TestDbUrl(url))
}

struct TestDbUrl(String);

#[tokio::test]
async fn workers_ride_out_a_postgres_restart() {
    let (cluster, TestDbUrl(url)) = own_database("restart").await;
    let mut config = octavia::Config::default();
    config.database.url = url.clone();
    let pool = octavia::db::pool(&config.database).unwrap();
    let client = pool.get().await.unwrap();
    let user = octavia::users::create(&client, "restart@example.com", "password1", "user", 100)
        .await
        .unwrap();
    let jobs: Vec<_> = (0..20)
        .map(|_| {
            let mut j = job("noop", json!({ "segments": 10, "segment_ms": 100 }));
            j.user_id = Some(user);
            j.cost_credits = 5;
            j
        })
        .collect();
    let mut c = pool.get().await.unwrap();
    let tx = c.transaction().await.unwrap();
    octavia::queue::enqueue::insert(&tx, &jobs).await.unwrap();
    tx.commit().await.unwrap();
    drop((client, c));
    let db = UrlDb(url.clone());
    let mut workers: Vec<Process> = (0..3).map(|i| db.spawn_worker(&format!("w{i}"))).collect();
    let done = || async {
        let client = octavia::db::connect(&url).await.ok()?;
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM job_segments WHERE status = 'completed'",
                &[],
            )
            .await
            .ok()?
            .get(0);
        Some(n)
    };
    wait_for(60, "work to start", || async {
        done().await.filter(|&n| n >= 30)
    })
    .await;
    cluster.restart().expect("pg_ctl restart -m fast");
    wait_for(120, "every job to end", || async {
        let client = octavia::db::connect(&url).await.ok()?;
        let open: i64 = client
            .query_one(
                "SELECT count(*) FROM jobs WHERE status NOT IN ('completed','failed','cancelled')",
                &[],
            )
            .await
            .ok()?
            .get(0);
        (open == 0).then_some(())
    })
    .await;
    for w in &mut workers {
        assert!(
            w.try_wait().unwrap().is_none(),
            "a worker died with the database"
        );
    }
    let client = octavia::db::connect(&url).await.unwrap();
    let completed: i64 = client
        .query_one("SELECT count(*) FROM jobs WHERE status = 'completed'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(completed, 20);
    let pool = octavia::db::pool(&config.database).unwrap();
    let problems = chaos::check_ledgers(&pool.get().await.unwrap())
        .await
        .unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    for w in &workers {
        signal(w, libc::SIGTERM);
    }
    for w in &mut workers {
        assert!(w.wait().unwrap().success());
    }
}

/// A database given by URL only, for helpers that need one.
struct UrlDb(String);

impl UrlDb {
    fn spawn_worker(&self, id: &str) -> Process {
        spawn_worker_process_at(&self.0, id, &["--concurrency", "4"])
    }
}

#[tokio::test]
async fn killed_connections_are_replaced_and_no_work_is_lost() {
    let db = TestDb::new().await;
    let ids = enqueue_jobs(
        &db,
        (0..10)
            .map(|_| job("noop", json!({ "segments": 10, "segment_ms": 50 })))
            .collect(),
    )
    .await;
    let mut workers: Vec<Process> = (0..2)
        .map(|i| spawn_worker_process(&db, &format!("w{i}"), &["--concurrency", "4"]))
        .collect();
    let admin = octavia::db::connect(&db.url).await.unwrap();
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        // Every other connection to this database: pools and LISTEN connections alike.
        admin
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .unwrap();
    }
    wait_terminal(&db, &ids, 90).await;
    for id in &ids {
        assert_eq!(status(&db, *id).await, "completed");
    }
    for w in &mut workers {
        assert!(w.try_wait().unwrap().is_none(), "a worker died");
        signal(w, libc::SIGTERM);
    }
    for w in &mut workers {
        assert!(w.wait().unwrap().success());
    }
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
