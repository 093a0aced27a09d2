//! The test harness: a real PostgreSQL server (DATABASE_URL's, or a throwaway cluster under
//! target/), and for each test its own database copied from a migrated template.

use deadpool_postgres::Pool;
use octavia::config::Config;
use octavia_dev::cluster::{self, Cluster, Durability};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::sync::OnceCell;

struct Server {
    /// URL of the `postgres` maintenance database, for CREATE/DROP DATABASE.
    admin_url: String,
    cluster: Option<Cluster>,
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => Server {
            admin_url: cluster::with_database(&url, "postgres").expect("DATABASE_URL is a URL"),
            cluster: None,
        },
        _ => {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target/octavia-pg")
                .join(format!("test-{}", std::process::id()));
            let cluster = Cluster::start(&dir, Durability::Fast).unwrap_or_else(|e| {
                panic!(
                    "cannot start a throwaway PostgreSQL: {e}\n\
                     Install it with `apt-get install -y postgresql` (bin/test does), or set DATABASE_URL."
                )
            });
            cluster.remove_at_exit().expect("watchdog for the throwaway cluster");
            Server {
                admin_url: cluster.url("postgres"),
                cluster: Some(cluster),
            }
        }
    })
}

/// The throwaway cluster, for tests that restart or stop the server. Such tests need one
/// of their own: they panic when DATABASE_URL names a shared server.
#[allow(dead_code)]
pub fn own_cluster() -> &'static Cluster {
    server()
        .cluster
        .as_ref()
        .expect("this test restarts PostgreSQL: run it without DATABASE_URL")
}

/// Name of the migrated template, derived from the migrations so a changed migration
/// builds a new one.
fn template_name() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("migrations/")
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    let mut hash = Sha256::new();
    for f in files {
        hash.update(f.file_name().unwrap().as_encoded_bytes());
        hash.update(std::fs::read(&f).unwrap());
    }
    format!("octavia_template_{}", &hex::encode(hash.finalize())[..16])
}

async fn retry_in_use<F, Fut>(mut f: F) -> Result<(), octavia::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), octavia::Error>>,
{
    // A backend that was just disconnected from the template may linger for a moment,
    // and CREATE DATABASE refuses a template in use.
    for _ in 0..100 {
        match f().await {
            Err(e) if e.sql_state() == Some(&tokio_postgres::error::SqlState::OBJECT_IN_USE) => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            other => return other,
        }
    }
    f().await
}

async fn template() -> &'static str {
    static TEMPLATE: OnceCell<String> = OnceCell::const_new();
    TEMPLATE
        .get_or_init(|| async {
            let name = template_name();
            let admin_url = &server().admin_url;
            let admin = octavia::db::connect(admin_url)
                .await
                .expect("connect to PostgreSQL");
            // Several test processes may share one server: build the template once.
            admin
                .execute("SELECT pg_advisory_lock(7424)", &[])
                .await
                .unwrap();
            let exists = admin
                .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
                .await
                .unwrap()
                .is_some();
            if !exists {
                let building = format!("{name}_building");
                cluster::drop_database(admin_url, &building).await.unwrap();
                cluster::create_database(admin_url, &building, None)
                    .await
                    .unwrap();
                let url = cluster::with_database(admin_url, &building).unwrap();
                octavia::migrate::run_url(&url)
                    .await
                    .expect("migrations apply");
                retry_in_use(|| async {
                    admin
                        .batch_execute(&format!(
                            "ALTER DATABASE {} RENAME TO {}",
                            cluster::quote_ident(&building),
                            cluster::quote_ident(&name)
                        ))
                        .await
                        .map_err(Into::into)
                })
                .await
                .unwrap();
            }
            admin
                .execute("SELECT pg_advisory_unlock(7424)", &[])
                .await
                .unwrap();
            name
        })
        .await
}

/// A database of one test's own, migrated, dropped when the value is dropped.
pub struct TestDb {
    pub name: String,
    pub url: String,
    pub pool: Pool,
}

impl TestDb {
    pub async fn new() -> TestDb {
        let template = template().await;
        let name = format!("octavia_test_{}", uuid::Uuid::new_v4().simple());
        let admin_url = &server().admin_url;
        retry_in_use(|| cluster::create_database(admin_url, &name, Some(template)))
            .await
            .expect("create the test database");
        let url = cluster::with_database(admin_url, &name).unwrap();
        let mut config = Config::default();
        config.database.url = url.clone();
        config.database.pool_size = 8;
        let pool = octavia::db::pool(&config.database).unwrap();
        TestDb { name, url, pool }
    }

    /// An empty database, not migrated.
    pub async fn empty() -> TestDb {
        let name = format!("octavia_test_{}", uuid::Uuid::new_v4().simple());
        let admin_url = &server().admin_url;
        cluster::create_database(admin_url, &name, None)
            .await
            .expect("create the test database");
        let url = cluster::with_database(admin_url, &name).unwrap();
        let mut config = Config::default();
        config.database.url = url.clone();
        let pool = octavia::db::pool(&config.database).unwrap();
        TestDb { name, url, pool }
    }

    /// The default configuration pointed at this database.
    #[allow(dead_code)]
    pub fn config(&self) -> Config {
        let mut config = Config::default();
        config.database.url = self.url.clone();
        config
    }

    pub async fn client(&self) -> deadpool_postgres::Object {
        self.pool.get().await.expect("a pooled connection")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        self.pool.close();
        let name = self.name.clone();
        let admin_url = server().admin_url.clone();
        // Drop runs inside the test's runtime, which cannot block on a future: use a
        // thread with a runtime of its own.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(cluster::drop_database(&admin_url, &name))
        })
        .join();
    }
}
