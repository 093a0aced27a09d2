//! The operator CLI on the queue: bulk enqueue and queue statistics.

use crate::harness::TestDb;
use crate::support::*;
use octavia::queue::admin;

#[tokio::test]
async fn the_cli_enqueues_many_chunks_at_once_and_reserves_each_job_once() {
    let db = TestDb::new().await;
    let client = db.client().await;
    octavia::users::create(
        &client,
        "bulk@example.com",
        "bulk-password-1",
        "user",
        30_000,
    )
    .await
    .unwrap();
    // Three chunks of at most 10,000 jobs, two written at a time.
    octavia_cli(
        &db,
        &[
            "jobs",
            "enqueue",
            "--user",
            "bulk@example.com",
            "--type",
            "noop",
            "--count",
            "25000",
            "--cost",
            "1",
        ],
    );
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM jobs WHERE status = 'queued'),
                    (SELECT count(DISTINCT job_id) FROM credits_history WHERE reason = 'job_reserve'),
                    (SELECT credits FROM users WHERE email = 'bulk@example.com')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 25_000);
    assert_eq!(row.get::<_, i64>(1), 25_000);
    assert_eq!(row.get::<_, Option<i64>>(2), Some(5_000));
    crate::support::assert_ledger_balances(&db).await;
}

#[tokio::test]
async fn a_queue_table_left_out_of_autovacuum_is_reported_by_queue_stats() {
    let db = TestDb::new().await;
    let client = db.client().await;
    let stats_output = || octavia_cli(&db, &["queue", "stats"]);
    // The server's own settings are whatever the test server has: the report must match
    // them either way.
    let server_vacuums: bool = client
        .query_one(
            "SELECT current_setting('autovacuum')::bool AND current_setting('track_counts')::bool",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let before = admin::vacuum_problems(&client).await.unwrap();
    assert_eq!(
        before.iter().any(|p| p.contains("on this server")),
        !server_vacuums,
        "{before:?}"
    );
    assert!(!before.iter().any(|p| p.contains("table")), "{before:?}");
    assert!(!stats_output().contains("table job_segments"));

    client
        .batch_execute("ALTER TABLE job_segments SET (autovacuum_enabled = off)")
        .await
        .unwrap();
    let after = admin::vacuum_problems(&client).await.unwrap();
    let problem = "autovacuum is disabled on table job_segments (autovacuum_enabled = false)";
    assert!(after.iter().any(|p| p == problem), "{after:?}");
    assert_eq!(after.len(), before.len() + 1, "{after:?}");
    assert_eq!(admin::stats(&client).await.unwrap().vacuum_problems, after);
    let printed = stats_output();
    assert!(
        printed.contains(&format!("warning: {problem}")),
        "{printed}"
    );

    // Turned back on, the table is no longer reported.
    client
        .batch_execute("ALTER TABLE job_segments SET (autovacuum_enabled = on)")
        .await
        .unwrap();
    assert_eq!(admin::vacuum_problems(&client).await.unwrap(), before);
}
