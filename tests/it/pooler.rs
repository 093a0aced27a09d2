//! Behind PgBouncer in transaction mode (`database.pooler = "transaction"`), with fewer
//! server connections than the processes open, so statements of different connections
//! really share servers: a `--poll-only` worker and the API run jobs to the end, the
//! lease sessions' settings hold in their transactions and nowhere else, and LISTEN and
//! migrations go past the pooler through `database.direct_url`.

use crate::api::{TestApi, config as api_config, parts, signed_in};
use crate::harness::TestDb;
use crate::support::*;
use octavia::config::Pooler;
use octavia_dev::cluster::chown_to_postgres;
use reqwest::StatusCode;
use serde_json::json;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const INSTALL: &str = "apt-get install -y pgbouncer";

/// A PgBouncer of the test's own in front of the test server, in transaction mode.
struct PgBouncer {
    port: u16,
    _process: Process,
    _dir: tempfile::TempDir,
}

impl PgBouncer {
    /// Starts one that pools at most `servers` server connections per database and user.
    async fn start(db: &TestDb, servers: u32) -> PgBouncer {
        let target: tokio_postgres::Config = db.url.parse().unwrap();
        let host = match &target.get_hosts()[0] {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        };
        let server_port = target.get_ports().first().copied().unwrap_or(5432);
        let user = target.get_user().unwrap_or("postgres");
        let password = target
            .get_password()
            .map(|p| format!(" password={}", String::from_utf8_lossy(p)))
            .unwrap_or_default();
        let dir = tempfile::tempdir().unwrap();
        chown_to_postgres(dir.path()).unwrap();
        let port = octavia_dev::process::free_port().unwrap();
        let ini = format!(
            "[databases]\n\
             * = host={host} port={server_port} user={user}{password}\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {port}\n\
             unix_socket_dir =\n\
             auth_type = trust\n\
             auth_file = {dir}/users.txt\n\
             pool_mode = transaction\n\
             default_pool_size = {servers}\n\
             max_client_conn = 500\n\
             server_reset_query =\n\
             log_connections = 0\n\
             log_disconnections = 0\n",
            dir = dir.path().display(),
        );
        write(&dir.path().join("pgbouncer.ini"), &ini);
        write(&dir.path().join("users.txt"), &format!("\"{user}\" \"\"\n"));
        let program = ["/usr/sbin/pgbouncer", "pgbouncer"]
            .into_iter()
            .find(|p| Command::new(p).arg("--version").output().is_ok())
            .unwrap_or_else(|| panic!("pgbouncer is not installed: `{INSTALL}` (bin/deps does)"));
        let mut command = Command::new(program);
        // PgBouncer will not run as root.
        if unsafe { libc::geteuid() } == 0 {
            command.args(["-u", "postgres"]);
        }
        let child = command
            .arg(dir.path().join("pgbouncer.ini"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("pgbouncer does not start ({e}): `{INSTALL}`"));
        let bouncer = PgBouncer {
            port,
            _process: Process::from(child),
            _dir: dir,
        };
        wait_for(20, "pgbouncer to accept connections", || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
                .map(|_| ())
        })
        .await;
        bouncer
    }

    /// The URL of `db` through this pooler.
    fn url(&self, db: &TestDb) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{}", self.port, db.name)
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    chown_to_postgres(path).unwrap();
}

/// The configuration of a process whose statements go through `bouncer`.
fn pooled(db: &TestDb, bouncer: &PgBouncer, direct: bool) -> octavia::Config {
    let mut config = db.config();
    config.database.url = bouncer.url(db);
    config.database.pooler = Pooler::Transaction;
    config.database.migrate_on_start = false;
    if direct {
        config.database.direct_url = db.url.clone();
    }
    config
}

#[tokio::test]
async fn a_poll_only_worker_and_the_api_run_jobs_through_transaction_pooling() {
    let db = TestDb::new().await;
    // Two servers for a worker's 24 connections and the API's 8.
    let bouncer = PgBouncer::start(&db, 2).await;
    let (mut config, _dir) = api_config(&db);
    let through = pooled(&db, &bouncer, true);
    config.database = through.database.clone();
    config.pricing.noop = 1;
    let api = TestApi::start(config).await;
    let (_, token) = signed_in(&api, &db, "user", 1000).await;

    let mut ids = Vec::new();
    for segments in [1, 3, 40] {
        let (status, job) = parts(
            api.post(
                "/api/jobs",
                &token,
                json!({"job_type": "noop", "options": {"segments": segments, "segment_ms": 5}}),
            )
            .await,
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{job}");
        ids.push(job["id"].as_str().unwrap().to_string());
    }
    // The event stream listens past the pooler, through database.direct_url.
    let stream = api
        .get(&format!("/api/jobs/{}/events", ids[2]), &token)
        .await;
    assert_eq!(stream.status(), StatusCode::OK);

    let _worker = spawn_worker_process_at(
        &bouncer.url(&db),
        "pooled",
        &[
            "--poll-only",
            "--concurrency",
            "8",
            "--set",
            "database.pooler=transaction",
        ],
    );
    for id in &ids {
        let job = wait_for(60, "the job to complete through the pooler", || async {
            let (status, job) = parts(api.get(&format!("/api/jobs/{id}"), &token).await).await;
            assert_eq!(status, StatusCode::OK, "{job}");
            matches!(job["status"].as_str(), Some("completed" | "failed")).then_some(job)
        })
        .await;
        assert_eq!(job["status"], "completed", "{job}");
        assert_eq!(job["progress"], 100, "{job}");
    }
    let events = tokio::time::timeout(Duration::from_secs(30), stream.text())
        .await
        .expect("the stream ends with its job")
        .unwrap();
    assert!(events.contains("\"status\":\"completed\""), "{events}");
    let done = db
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM job_segments WHERE status = 'completed'",
            &[],
        )
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(done, 44);
    assert_ledger_balances(&db).await;
}

#[tokio::test]
async fn session_settings_hold_in_each_transaction_and_stay_off_the_shared_servers() {
    let db = TestDb::new().await;
    // One server: every statement of both pools runs on the same server connection.
    let bouncer = PgBouncer::start(&db, 1).await;
    let config = pooled(&db, &bouncer, false);
    let options = octavia::worker::lease_session_options(false);
    let lease = octavia::db::pool_with(&config.database, 2, Some(options)).unwrap();
    let plain = octavia::db::pool(&config.database).unwrap();
    let show = "SELECT current_setting('enable_seqscan'), current_setting('enable_bitmapscan'), \
                current_setting('octavia.job_events', true), pg_backend_pid()";
    for _ in 0..3 {
        let row = octavia::db::query_opt(&lease.get().await.unwrap(), show, &[])
            .await
            .unwrap()
            .unwrap();
        let lease_pid: i32 = row.get(3);
        assert_eq!(
            (row.get::<_, String>(0), row.get::<_, String>(1)),
            ("off".into(), "off".into())
        );
        assert_eq!(row.get::<_, Option<String>>(2).as_deref(), Some("deferred"));
        let row = octavia::db::query_opt(&plain.get().await.unwrap(), show, &[])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.get::<_, i32>(3), lease_pid, "one server for both");
        assert_eq!(
            (row.get::<_, String>(0), row.get::<_, String>(1)),
            ("on".into(), "on".into()),
            "the lease settings ended with their transaction"
        );
        assert_ne!(row.get::<_, Option<String>>(2).as_deref(), Some("deferred"));
    }
    // Inside a transaction too, with parameters and their inferred types, and a failed
    // statement leaves the server usable.
    let mut client = lease.get().await.unwrap();
    let tx = client.transaction().await.unwrap();
    let sum = octavia::db::query_opt(
        &tx,
        "SELECT $1::int + $2, current_setting('enable_seqscan')",
        &[&2i32, &3i32],
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        (sum.get::<_, i32>(0), sum.get::<_, String>(1)),
        (5, "off".into())
    );
    tx.commit().await.unwrap();
    let e = octavia::db::execute(&client, "SELECT 1 / $1::int", &[&0i32])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("division by zero"), "{e}");
    let one = octavia::db::query_opt(&client, "SELECT $1::bigint", &[&1i64])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(one.get::<_, i64>(0), 1);
}

#[tokio::test]
async fn migrations_and_listen_go_past_a_transaction_pooler_or_are_refused() {
    let db = TestDb::empty().await;
    let bouncer = PgBouncer::start(&db, 2).await;
    let octavia = |config: &octavia::Config, args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_octavia"));
        command
            .args(args)
            .env("DATABASE_URL", &config.database.url)
            .env("OCTAVIA_DATABASE_POOLER", "transaction")
            .env("OCTAVIA_DATABASE_DIRECT_URL", &config.database.direct_url)
            .env("RUST_LOG", "warn");
        command
    };
    let without = pooled(&db, &bouncer, false);
    let e = refused(&mut octavia(&without, &["migrate"]));
    assert!(e.contains("database.direct_url"), "{e}");
    let e = refused(
        Command::new(env!("CARGO_BIN_EXE_octavia-worker"))
            .args(["--no-migrate", "--set", "database.pooler=transaction"])
            .env("DATABASE_URL", &without.database.url)
            .env("RUST_LOG", "warn"),
    );
    assert!(
        e.contains("--poll-only") && e.contains("database.direct_url"),
        "{e}"
    );

    let with = pooled(&db, &bouncer, true);
    let out = octavia(&with, &["migrate"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let client = db.client().await;
    assert!(octavia::migrate::is_current(&client).await.unwrap());
}
