//! Helpers for queue tests: in-process workers, a probe handler that records every
//! attempt, worker processes, and waiting for conditions.

#![allow(dead_code)]

use crate::harness::TestDb;
use async_trait::async_trait;
use octavia::config::Config;
use octavia::job::{NewMedia, NewSegment};
use octavia::queue::enqueue::{self, NewJob};
use octavia::worker::{Handler, HandlerError, Plan, Registry, SegmentContext, StepContext, Worker};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::future::Future;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// A configuration for fast tests: short leases and intervals.
pub fn fast_config(db: &TestDb) -> Config {
    let mut c = db.config();
    c.database.pool_size = 4;
    c.database.migrate_on_start = false;
    c.worker.concurrency = 4;
    c.worker.lease_seconds = 2;
    c.worker.heartbeat_seconds = 1;
    c.worker.poll_interval_ms = 100;
    c.worker.rescue_interval_seconds = 1;
    c.worker.backoff_base_ms = 20;
    c.worker.backoff_max_ms = 200;
    c.worker.shutdown_grace_seconds = 5;
    c
}

/// An in-process worker with a pool of its own; stopped (gracefully) by `stop`.
pub struct TestWorker {
    pub id: String,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl TestWorker {
    pub fn start(mut config: Config, registry: Registry, id: &str) -> TestWorker {
        config.worker.worker_id = id.to_string();
        let pool = octavia::db::pool(&config.database).unwrap();
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let task = tokio::spawn(async move {
            Worker::new(config, pool, registry)
                .unwrap()
                .run(token)
                .await
                .unwrap();
        });
        TestWorker {
            id: id.to_string(),
            shutdown,
            task,
        }
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("worker stops within 30 s")
            .unwrap();
    }
}

/// One handler invocation seen by [`Probe`].
#[derive(Debug, Clone)]
pub struct Call {
    pub job: Uuid,
    pub what: String,
    pub index: i32,
    pub attempt: i32,
    pub at: Instant,
    pub worker_saw_cancel: bool,
}

/// Controls and records of the `probe` job type.
#[derive(Default)]
pub struct ProbeState {
    pub calls: Mutex<Vec<Call>>,
    /// Segment indexes that fail retryably / fatally while listed.
    pub retryable: Mutex<HashSet<i32>>,
    pub fatal: Mutex<HashSet<i32>>,
    /// Segment indexes that panic.
    pub panics: Mutex<HashSet<i32>>,
    /// How long each segment takes (watching for cancellation).
    pub segment_ms: Mutex<u64>,
    /// The handler's timeout, if set.
    pub timeout: Mutex<Option<Duration>>,
    /// Finalize returns an output media row.
    pub output: Mutex<bool>,
}

impl ProbeState {
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
    pub fn segment_calls(&self, job: Uuid, index: i32) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.job == job && c.what == "segment" && c.index == index)
            .collect()
    }
}

/// A job type for tests: options `{"segments": n}`; segments record their calls and fail,
/// panic or sleep as [`ProbeState`] says.
#[derive(Clone, Default)]
pub struct Probe(pub Arc<ProbeState>);

#[async_trait]
impl Handler for Probe {
    fn job_type(&self) -> &'static str {
        "probe"
    }

    fn timeout(&self) -> Option<Duration> {
        *self.0.timeout.lock().unwrap()
    }

    async fn plan(&self, ctx: &StepContext) -> Result<Plan, HandlerError> {
        self.0.calls.lock().unwrap().push(Call {
            job: ctx.job.id,
            what: "plan".into(),
            index: -1,
            attempt: ctx.attempt,
            at: Instant::now(),
            worker_saw_cancel: false,
        });
        let n = ctx.job.options["segments"].as_u64().unwrap_or(1);
        Ok(Plan {
            segments: (0..n)
                .map(|i| NewSegment {
                    start_ms: Some(i as i32 * 1000),
                    end_ms: Some(i as i32 * 1000 + 1000),
                    input: json!({ "i": i }),
                })
                .collect(),
            data: json!({ "planned": n }),
        })
    }

    async fn run_segment(&self, ctx: &SegmentContext) -> Result<Value, HandlerError> {
        let index = ctx.segment.index;
        let ms = *self.0.segment_ms.lock().unwrap();
        let mut saw_cancel = false;
        if ms > 0 {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(ms)) => {}
                _ = ctx.cancel.cancelled() => saw_cancel = true,
            }
        }
        self.0.calls.lock().unwrap().push(Call {
            job: ctx.segment.job_id,
            what: "segment".into(),
            index,
            attempt: ctx.segment.attempt,
            at: Instant::now(),
            worker_saw_cancel: saw_cancel,
        });
        if saw_cancel {
            return Err(HandlerError::Cancelled);
        }
        if self.0.panics.lock().unwrap().contains(&index) {
            panic!("probe panics on segment {index}");
        }
        if self.0.fatal.lock().unwrap().contains(&index) {
            return Err(HandlerError::Fatal(format!(
                "probe: segment {index} is fatal"
            )));
        }
        if self.0.retryable.lock().unwrap().contains(&index) {
            return Err(HandlerError::Retryable(format!(
                "probe: segment {index} failed"
            )));
        }
        Ok(json!({ "index": index, "attempt": ctx.segment.attempt }))
    }

    async fn finalize(&self, ctx: &StepContext) -> Result<Option<NewMedia>, HandlerError> {
        self.0.calls.lock().unwrap().push(Call {
            job: ctx.job.id,
            what: "finalize".into(),
            index: -1,
            attempt: ctx.attempt,
            at: Instant::now(),
            worker_saw_cancel: false,
        });
        if !*self.0.output.lock().unwrap() {
            return Ok(None);
        }
        Ok(Some(NewMedia {
            id: Uuid::now_v7(),
            project_id: None,
            user_id: ctx.job.user_id,
            s3_key: format!("jobs/{}/output/result.txt", ctx.job.id),
            media_type: "text".into(),
            duration_seconds: Some(1.5),
            size_bytes: 42,
            mimetype: "text/plain".into(),
            derived_from: None,
            metadata: json!({ "segments": ctx.segments().await.map_err(HandlerError::retryable)?.len() }),
        }))
    }
}

/// Every job type of the product, with the default engines and a local store in a
/// directory shared by the tests (queue tests never write to it).
pub fn registry() -> Registry {
    let mut config = Config::default();
    config.storage.local_dir = std::env::temp_dir()
        .join("octavia-it-queue-objects")
        .display()
        .to_string();
    octavia::job_types::registry(&config).unwrap()
}

/// A registry with every job type and the given probe.
pub fn registry_with(probe: &Probe) -> Registry {
    let mut r = registry();
    r.register(probe.clone()).unwrap();
    r
}

/// A user with `credits`, for jobs that cost something.
pub async fn user(db: &TestDb, credits: i64) -> Uuid {
    let client = db.client().await;
    let email = format!("{}@example.com", Uuid::new_v4().simple());
    octavia::users::create(&client, &email, "password1", "user", credits)
        .await
        .unwrap()
}

/// Inserts jobs and returns their ids.
pub async fn enqueue_jobs(db: &TestDb, jobs: Vec<NewJob>) -> Vec<Uuid> {
    let mut client = db.client().await;
    let tx = client.transaction().await.unwrap();
    enqueue::insert(&tx, &jobs).await.unwrap();
    tx.commit().await.unwrap();
    jobs.iter().map(|j| j.id).collect()
}

pub fn job(job_type: &str, options: Value) -> NewJob {
    NewJob::new(job_type, options)
}

/// Polls `check` until it returns Some, or panics after `secs` with `what`.
pub async fn wait_for<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {secs} s waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A job's status.
pub async fn status(db: &TestDb, job: Uuid) -> String {
    let client = db.client().await;
    client
        .query_one("SELECT status::text FROM jobs WHERE id = $1", &[&job])
        .await
        .unwrap()
        .get(0)
}

/// Waits until every job in `jobs` is in a terminal status.
pub async fn wait_terminal(db: &TestDb, jobs: &[Uuid], secs: u64) {
    let jobs = jobs.to_vec();
    wait_for(secs, "jobs to end", || async {
        let client = db.client().await;
        let open: i64 = client
            .query_one(
                "SELECT count(*) FROM jobs WHERE id = ANY($1) AND status NOT IN ('completed','failed','cancelled')",
                &[&jobs],
            )
            .await
            .unwrap()
            .get(0);
        (open == 0).then_some(())
    })
    .await
}

/// Every user's balance equals the sum of their ledger, and is not negative.
pub async fn assert_ledger_balances(db: &TestDb) {
    let client = db.client().await;
    let rows = client
        .query(
            "SELECT u.email, u.credits, coalesce(sum(h.delta), 0)::bigint
             FROM users u LEFT JOIN credits_history h ON h.user_id = u.id
             GROUP BY u.id",
            &[],
        )
        .await
        .unwrap();
    for r in rows {
        let (email, credits, sum): (String, i64, i64) = (r.get(0), r.get(1), r.get(2));
        assert_eq!(
            credits, sum,
            "{email}: balance {credits} but ledger sums to {sum}"
        );
        assert!(credits >= 0, "{email}: negative balance {credits}");
    }
}

/// A child process killed when dropped, so a failing test leaves none behind.
pub use octavia_dev::process::Child as Process;

/// Runs `octavia --no-migrate <args>` on `db` and returns its standard output, failing the
/// test with its standard error when it does not succeed.
pub fn octavia_cli(db: &TestDb, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_octavia"))
        .arg("--no-migrate")
        .args(args)
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "octavia {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `command`, expects it to fail, and returns what it said on standard error.
pub fn refused(command: &mut Command) -> String {
    let out = command.output().unwrap();
    assert!(!out.status.success(), "{command:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// An `octavia-worker` process against `db`.
pub fn spawn_worker_process(db: &TestDb, id: &str, extra: &[&str]) -> Process {
    spawn_worker_process_with(&db.url, id, extra, None)
}

/// An `octavia-worker` process against the database at `url`.
pub fn spawn_worker_process_at(url: &str, id: &str, extra: &[&str]) -> Process {
    spawn_worker_process_with(url, id, extra, None)
}

/// An `octavia-worker` process, optionally with libfaketime preloaded (a clock skewed by
/// `(library, offset)`, e.g. "+1h"). The library is preloaded directly rather than through
/// the `faketime` command, which would stand between us and the worker's signals.
pub fn spawn_worker_process_with(
    url: &str,
    id: &str,
    extra: &[&str],
    faketime: Option<(&std::path::Path, &str)>,
) -> Process {
    let mut command = Command::new(env!("CARGO_BIN_EXE_octavia-worker"));
    if let Some((library, offset)) = faketime {
        command.env("LD_PRELOAD", library).env("FAKETIME", offset);
    }
    let child = command
        .args(["--no-migrate", "--worker-id", id])
        .args([
            "--set",
            "worker.lease_seconds=2",
            "--set",
            "worker.heartbeat_seconds=1",
            "--set",
            "worker.rescue_interval_seconds=1",
            "--set",
            "worker.poll_interval_ms=100",
        ])
        .args(extra)
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("octavia-worker runs");
    Process::from(child)
}

/// Sends `signal` to a child process.
pub fn signal(child: &Child, signal: i32) {
    // SAFETY: kill(2) on a child we spawned and have not reaped.
    let rc = unsafe { libc::kill(child.id() as i32, signal) };
    assert_eq!(rc, 0, "kill failed");
}

/// The count `sql` (a `SELECT count(*) … WHERE job_id = $1`) gives for `job`.
pub async fn count(db: &TestDb, sql: &str, job: Uuid) -> i64 {
    db.client()
        .await
        .query_one(sql, &[&job])
        .await
        .unwrap()
        .get(0)
}
