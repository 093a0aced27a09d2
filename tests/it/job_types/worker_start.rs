//! A worker refuses to start without the engines' programs, naming the packages, or
//! without the whisper engine's Python and models, naming the command that installs them,
//! unless it claims only job types that need none.

use super::*;
use crate::support::Process;
use serde_json::json;
use std::process::{Command, Stdio};

#[tokio::test]
async fn a_worker_without_the_engines_programs_refuses_to_start() {
    let env = Env::local(30).await;
    let local_dir = format!("storage.local_dir={}", env.config.storage.local_dir);
    let worker = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_octavia-worker"))
            .args(["--no-migrate", "--set", &local_dir])
            .args(extra)
            .env("DATABASE_URL", &env.db.url)
            // No program can be found.
            .env("PATH", env.dir.path())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let out = worker(&[]).wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("apt-get install -y ffmpeg") && stderr.contains("ffprobe"),
        "{stderr}"
    );

    // With the programs, but not the whisper engine's Python or models: the worker says
    // what is missing and the command that installs it.
    let out = Command::new(env!("CARGO_BIN_EXE_octavia-worker"))
        .args(["--no-migrate", "--set", &local_dir])
        .args(["--set", "engines.whisper_python=/opt/none/bin/python"])
        .args(["--set", "engines.whisper_multilingual_model=/opt/none/base"])
        .env("DATABASE_URL", &env.db.url)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    for part in [
        "the whisper engine cannot run",
        "/opt/none/bin/python (engines.whisper_python)",
        "/opt/none/base (engines.whisper_multilingual_model",
        "install it with `bin/deps --demo`",
    ] {
        assert!(stderr.contains(part), "`{part}` not in: {stderr}");
    }

    // A worker that claims only noop needs none of them, and serves.
    let _noop = Process::from(worker(&["--job-types", "noop"]));
    let job = enqueue_jobs(&env.db, vec![NewJob::new("noop", json!({}))]).await;
    env.wait(&job, 30).await;
    assert_eq!(env.job_view(job[0]).await.status, "completed");
}
