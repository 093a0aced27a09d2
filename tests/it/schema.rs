//! The migrated schema holds the seed data model exactly; migrations are idempotent and
//! safe to run concurrently; every statement in sql/ prepares, with built-in types only.

use crate::harness::TestDb;
use crate::support::refused;
use std::collections::BTreeMap;
use std::process::Command;

/// (column, data type, default, nullable).
type Column = (&'static str, &'static str, Option<&'static str>, bool);

/// Each seed column, as written in shared/seed/data_model.md.
fn seed() -> BTreeMap<&'static str, Vec<Column>> {
    let ts = "timestamp with time zone";
    let now = Some("now()");
    let uuid_pk = ("id", "uuid", Some("gen_random_uuid()"), false);
    BTreeMap::from([
        (
            "users",
            vec![
                uuid_pk,
                ("email", "text", None, false),
                ("password_hash", "text", None, false),
                ("is_verified", "boolean", Some("false"), true),
                ("credits", "bigint", Some("0"), true),
                ("role", "text", Some("'user'::text"), true),
                ("created_at", ts, now, true),
                ("updated_at", ts, now, true),
            ],
        ),
        (
            "sessions",
            vec![
                uuid_pk,
                ("user_id", "uuid", None, true),
                ("user_agent", "text", None, true),
                ("ip_address", "text", None, true),
                ("created_at", ts, now, true),
                ("last_seen", ts, None, true),
            ],
        ),
        (
            "projects",
            vec![
                uuid_pk,
                ("user_id", "uuid", None, true),
                ("name", "text", None, true),
                ("description", "text", None, true),
                ("created_at", ts, now, true),
            ],
        ),
        (
            "media_files",
            vec![
                uuid_pk,
                ("project_id", "uuid", None, true),
                ("user_id", "uuid", None, true),
                ("s3_key", "text", None, false),
                ("media_type", "text", None, true),
                ("duration_seconds", "numeric", None, true),
                ("size_bytes", "bigint", None, true),
                ("mimetype", "text", None, true),
                ("derived_from", "uuid", None, true),
                ("metadata", "jsonb", Some("'{}'::jsonb"), true),
                ("created_at", ts, now, true),
            ],
        ),
        (
            "jobs",
            vec![
                uuid_pk,
                ("user_id", "uuid", None, true),
                ("project_id", "uuid", None, true),
                ("job_type", "text", None, false),
                ("status", "job_status", Some("'pending'::job_status"), true),
                ("progress", "integer", Some("0"), true),
                ("input_media_id", "uuid", None, true),
                ("output_media_id", "uuid", None, true),
                ("metadata", "jsonb", Some("'{}'::jsonb"), true),
                ("cost_credits", "bigint", Some("0"), true),
                ("created_at", ts, now, true),
                ("started_at", ts, None, true),
                ("finished_at", ts, None, true),
            ],
        ),
        (
            "job_segments",
            vec![
                uuid_pk,
                ("job_id", "uuid", None, true),
                ("segment_index", "integer", None, false),
                ("start_ms", "integer", None, true),
                ("end_ms", "integer", None, true),
                ("status", "text", Some("'pending'::text"), true),
                ("result", "jsonb", None, true),
                ("created_at", ts, now, true),
                ("finished_at", ts, None, true),
            ],
        ),
        (
            "transactions",
            vec![
                uuid_pk,
                ("user_id", "uuid", None, true),
                ("provider", "text", None, true),
                ("provider_payment_id", "text", None, true),
                ("amount_cents", "bigint", None, true),
                ("credits_bought", "bigint", None, true),
                ("status", "tx_status", Some("'pending'::tx_status"), true),
                ("webhook_payload", "jsonb", None, true),
                ("created_at", ts, now, true),
                ("updated_at", ts, None, true),
            ],
        ),
        (
            "credits_history",
            vec![
                uuid_pk,
                ("user_id", "uuid", None, true),
                ("delta", "bigint", None, true),
                ("reason", "text", None, true),
                ("job_id", "uuid", None, true),
                ("created_at", ts, now, true),
            ],
        ),
    ])
}

#[tokio::test]
async fn migrated_schema_has_every_seed_column_with_its_type_default_and_nullability() {
    let db = TestDb::new().await;
    let client = db.client().await;
    let rows = client
        .query(
            "SELECT table_name::text, column_name::text,
                    CASE WHEN data_type = 'USER-DEFINED' THEN udt_name ELSE data_type END::text,
                    column_default::text, is_nullable = 'YES'
             FROM information_schema.columns WHERE table_schema = 'public'",
            &[],
        )
        .await
        .unwrap();
    let actual: BTreeMap<(String, String), (String, Option<String>, bool)> = rows
        .iter()
        .map(|r| ((r.get(0), r.get(1)), (r.get(2), r.get(3), r.get(4))))
        .collect();
    for (table, columns) in seed() {
        for (column, ty, default, nullable) in columns {
            let got = actual
                .get(&(table.to_string(), column.to_string()))
                .unwrap_or_else(|| panic!("{table}.{column} is missing"));
            assert_eq!(
                got,
                &(ty.to_string(), default.map(str::to_string), nullable),
                "{table}.{column}"
            );
        }
    }
}

#[tokio::test]
async fn migrated_schema_has_the_seed_foreign_keys_enums_and_indexes() {
    let db = TestDb::new().await;
    let client = db.client().await;
    let rows = client
        .query(
            "SELECT c.conrelid::regclass::text, a.attname::text, c.confrelid::regclass::text,
                    af.attname::text, c.confdeltype::text
             FROM pg_constraint c
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
             JOIN pg_attribute af ON af.attrelid = c.confrelid AND af.attnum = c.confkey[1]
             WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace",
            &[],
        )
        .await
        .unwrap();
    let mut fks: Vec<(String, String, String, String, String)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    fks.sort();
    // confdeltype: a = NO ACTION, c = CASCADE, n = SET NULL.
    let mut expected: Vec<(String, String, String, String, String)> = [
        // V10: API keys go with their user.
        ("api_keys", "user_id", "users", "id", "c"),
        ("credits_history", "job_id", "jobs", "id", "a"),
        ("credits_history", "user_id", "users", "id", "c"),
        // V3: the API's idempotency keys go with their user and their job.
        ("idempotency_keys", "job_id", "jobs", "id", "c"),
        ("idempotency_keys", "user_id", "users", "id", "c"),
        ("job_segments", "job_id", "jobs", "id", "c"),
        ("jobs", "input_media_id", "media_files", "id", "a"),
        ("jobs", "output_media_id", "media_files", "id", "a"),
        ("jobs", "project_id", "projects", "id", "n"),
        ("jobs", "user_id", "users", "id", "n"),
        ("media_files", "derived_from", "media_files", "id", "a"),
        ("media_files", "project_id", "projects", "id", "c"),
        ("media_files", "user_id", "users", "id", "c"),
        ("projects", "user_id", "users", "id", "c"),
        ("sessions", "user_id", "users", "id", "c"),
        ("transactions", "user_id", "users", "id", "n"),
        // V13: webhook endpoints go with their user or their project, deliveries with
        // their endpoint or their job.
        (
            "webhook_deliveries",
            "endpoint_id",
            "webhook_endpoints",
            "id",
            "c",
        ),
        ("webhook_deliveries", "job_id", "jobs", "id", "c"),
        ("webhook_endpoints", "project_id", "projects", "id", "c"),
        ("webhook_endpoints", "user_id", "users", "id", "c"),
    ]
    .iter()
    .map(|(a, b, c, d, e)| {
        (
            a.to_string(),
            b.to_string(),
            c.to_string(),
            d.to_string(),
            e.to_string(),
        )
    })
    .collect();
    expected.sort();
    assert_eq!(fks, expected);

    for (enum_name, values) in [
        (
            "job_status",
            vec![
                "pending",
                "queued",
                "running",
                "failed",
                "completed",
                "cancelled",
            ],
        ),
        (
            "tx_status",
            vec!["pending", "succeeded", "failed", "cancelled"],
        ),
    ] {
        let row = client
            .query_one(
                "SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder)
                 FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid WHERE t.typname = $1",
                &[&enum_name],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, Vec<String>>(0), values, "{enum_name}");
    }

    // Indexes by (table, key columns, unique), whatever their names.
    let rows = client
        .query(
            "SELECT i.indrelid::regclass::text,
                    array_agg(a.attname::text ORDER BY k.ord), i.indisunique
             FROM pg_index i
             CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
             WHERE i.indrelid::regclass::text IN
                   ('users','jobs','media_files','transactions','job_segments')
               AND i.indpred IS NULL
             GROUP BY i.indexrelid, i.indrelid, i.indisunique",
            &[],
        )
        .await
        .unwrap();
    let indexes: Vec<(String, Vec<String>, bool)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    for (table, columns, unique) in [
        ("jobs", vec!["user_id", "status"], false),
        ("media_files", vec!["user_id", "project_id"], false),
        (
            "transactions",
            vec!["user_id", "provider_payment_id"],
            false,
        ),
        (
            "transactions",
            vec!["provider", "provider_payment_id"],
            true,
        ),
        ("job_segments", vec!["job_id", "segment_index"], true),
        ("users", vec!["email"], true),
    ] {
        let columns: Vec<String> = columns.into_iter().map(String::from).collect();
        assert!(
            indexes
                .iter()
                .any(|(t, c, u)| t == table && *c == columns && (*u || !unique)),
            "index on {table}({columns:?}) unique={unique} missing from {indexes:?}"
        );
    }
}

#[tokio::test]
async fn migrating_twice_is_a_no_op() {
    let db = TestDb::empty().await;
    let first = octavia::migrate::run_url(&db.url).await.unwrap();
    assert!(!first.is_empty());
    let second = octavia::migrate::run_url(&db.url).await.unwrap();
    assert!(second.is_empty(), "second run applied {second:?}");
    let client = db.client().await;
    assert!(octavia::migrate::is_current(&client).await.unwrap());
}

#[tokio::test]
async fn concurrent_migrations_both_succeed() {
    let db = TestDb::empty().await;
    let client = db.client().await;
    assert!(!octavia::migrate::is_current(&client).await.unwrap());
    let (a, b, c) = tokio::join!(
        octavia::migrate::run_url(&db.url),
        octavia::migrate::run_url(&db.url),
        octavia::migrate::run_url(&db.url),
    );
    let applied: Vec<Vec<String>> = vec![a.unwrap(), b.unwrap(), c.unwrap()];
    // Exactly one of them applied the migrations; the others found the schema current.
    assert_eq!(
        applied.iter().filter(|a| !a.is_empty()).count(),
        1,
        "{applied:?}"
    );
    assert!(octavia::migrate::is_current(&client).await.unwrap());
}

#[tokio::test]
async fn every_sql_file_prepares_against_the_migrated_schema() {
    let db = TestDb::new().await;
    let client = db.client().await;
    // The product's statements, and the dev tooling's.
    for (folder, listed, all) in [
        ("sql", "src/sql.rs", octavia::sql::ALL),
        ("dev/sql", "dev/src/sql.rs", octavia_dev::sql::ALL),
    ] {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(folder);
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = all.iter().map(|(f, _)| f.to_string()).collect();
        embedded.sort();
        assert_eq!(
            on_disk, embedded,
            "every file in {folder}/ is listed in {listed}"
        );
        for (file, statement) in all {
            let prepared = match client.prepare(statement).await {
                Ok(p) => p,
                Err(e) => panic!("{folder}/{file} does not prepare: {e:?}"),
            };
            // Behind a transaction pooler statements go unnamed, which cannot look up
            // the schema's own types (its enums): parameters and columns are built-in.
            let types = prepared
                .params()
                .iter()
                .chain(prepared.columns().iter().map(|c| c.type_()));
            for t in types {
                assert!(
                    tokio_postgres::types::Type::from_oid(t.oid()).is_some(),
                    "{folder}/{file} has a parameter or column of type {t}: cast it to text"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_bad_setting_stops_the_cli_with_its_name() {
    let stderr = refused(Command::new(env!("CARGO_BIN_EXE_octavia")).args([
        "--set",
        "worker.concurrency=lots",
        "migrate",
    ]));
    assert!(stderr.contains("worker.concurrency"), "{stderr}");
    let stderr = refused(
        Command::new(env!("CARGO_BIN_EXE_octavia"))
            .env("OCTAVIA_WORKER_LEASE_SECONDS", "0")
            .args(["migrate"]),
    );
    assert!(
        stderr.contains("worker.lease_seconds") && stderr.contains("OCTAVIA_WORKER_LEASE_SECONDS"),
        "{stderr}"
    );
}
