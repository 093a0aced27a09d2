//! Faults outside the worker: random SIGKILLs, PostgreSQL restarting and crashing,
//! connections killed, clocks that disagree, the object store going away. Short versions
//! of `bin/chaos`'s scenarios (the library's `octavia_dev::chaos`), plus tests that pin one
//! behaviour down exactly.

mod database;
mod kills_and_clocks;
mod storage;

use octavia_dev::chaos::Binaries;
use octavia_dev::cluster::{Cluster, Durability};
use std::path::Path;

/// The binaries this test build made.
fn binaries() -> Binaries {
    Binaries {
        worker: env!("CARGO_BIN_EXE_octavia-worker").into(),
        api: env!("CARGO_BIN_EXE_octavia-api").into(),
    }
}

/// A PostgreSQL of this test's own, for faults that would disturb the other tests:
/// the cluster and the URL of its migrated database `octavia`. Durable, unlike the shared
/// test cluster: it is crashed, and a server that acknowledges commits before flushing
/// them (synchronous_commit off) loses acknowledged jobs in a crash, which is the
/// server's broken promise, not Octavia's.
async fn own_database(name: &str) -> (Cluster, String) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/octavia-pg")
        .join(format!("{name}-{}", std::process::id()));
    let cluster = Cluster::start(&dir, Durability::Durable).unwrap_or_else(|e| {
        panic!(
            "a PostgreSQL of the test's own: {e}\n\
             Install it with `apt-get install -y postgresql` (bin/deps does)."
        )
    });
    cluster.remove_at_exit().unwrap();
    octavia_dev::cluster::create_database(&cluster.url("postgres"), "octavia", None)
        .await
        .unwrap();
    let url = cluster.url("octavia");
    octavia::migrate::run_url(&url).await.unwrap();
    (cluster, url)
}
