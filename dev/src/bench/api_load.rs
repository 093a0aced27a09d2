//! `POST /api/jobs` under load: many users with credit, each request from one of them,
//! driven by wrk against a real `octavia-api` process.

use super::measure::pool;
use crate::process::{self, Child, OnDrop, Output};
use futures_util::{StreamExt, TryStreamExt};
use octavia::error::{Error, Result};
use octavia::{credits, db, users};
use serde::Serialize;
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Serialize)]
pub struct ApiLoad {
    pub users: u32,
    pub connections: u32,
    pub requests: u64,
    pub requests_per_second: f64,
    pub latency_ms_p50: f64,
    pub latency_ms_p99: f64,
    /// Non-2xx answers, connection errors and timeouts.
    pub errors: u64,
}

/// Creates `users` users with credit, starts the API, signs each of them in through it,
/// and runs wrk for `seconds` with `connections` connections, each request creating a paid
/// noop job for the next user.
pub async fn measure(url: &str, users: u32, connections: u32, seconds: u64) -> Result<ApiLoad> {
    let wrk = which("wrk").ok_or_else(|| {
        Error::Invalid("wrk is missing: install it with `apt-get install -y wrk`".into())
    })?;
    let pool = pool(url)?;
    let mut client = pool.get().await?;
    // One argon2 hash for all: hashing is deliberately slow, and what is measured is job
    // creation, not the users an operator made beforehand.
    let hash = users::hash_password(PASSWORD)?;
    let mut emails = Vec::with_capacity(users as usize);
    let tx = client.transaction().await?;
    for i in 0..users {
        let email = format!("bench-{i}@example.com");
        let id: uuid::Uuid =
            db::query_opt(&tx, octavia::sql::INSERT_USER, &[&email, &hash, &"user"])
                .await?
                .ok_or_else(|| Error::Invalid("no user inserted".into()))?
                .get("id");
        credits::credit(&tx, id, 1_000_000_000, credits::GRANT).await?;
        emails.push(email);
    }
    tx.commit().await?;

    let port = process::free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let objects = tempfile::tempdir()?;
    let _api = Child::spawn(
        "octavia-api",
        Command::new(process::sibling("octavia-api")?)
            .args([
                "--no-migrate",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--public-url",
                &base,
            ])
            .args(["--set", "pricing.noop=1"])
            .args([
                "--set",
                "storage.signing_secret=octavia-bench-signing-secret-of-32-bytes",
            ])
            .arg("--set")
            .arg(format!("storage.local_dir={}", objects.path().display()))
            .env("DATABASE_URL", url)
            .env("RUST_LOG", "warn"),
        Output::Inherit,
    )?
    .on_drop(OnDrop::Stop);
    let http = reqwest::Client::new();
    let ready = Instant::now() + Duration::from_secs(30);
    while http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .map(|r| r.status().is_success())
        .ok()
        != Some(true)
    {
        if Instant::now() > ready {
            return Err(Error::Invalid(
                "octavia-api did not become ready in 30 s".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let tokens = sign_in(&http, &base, &emails).await?;

    let script = tempfile::NamedTempFile::new()?;
    std::fs::write(script.path(), lua(&tokens))?;
    let out = Command::new(wrk)
        .args([
            "-t2",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--timeout",
            "5s",
        ])
        .arg("-s")
        .arg(script.path())
        .arg(&base)
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("OCTAVIA "))
        .ok_or_else(|| {
            Error::Invalid(format!(
                "wrk printed no summary: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            ))
        })?;
    let f: Vec<f64> = line
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    if f.len() != 5 {
        return Err(Error::Invalid(format!("unexpected wrk summary: {line}")));
    }
    // requests, errors, duration (µs), p50 (µs), p99 (µs)
    Ok(ApiLoad {
        users,
        connections,
        requests: f[0] as u64,
        requests_per_second: f[0] / (f[2] / 1e6),
        latency_ms_p50: f[3] / 1000.0,
        latency_ms_p99: f[4] / 1000.0,
        errors: f[1] as u64,
    })
}

/// The password of every user of the run.
const PASSWORD: &str = "bench-password";

/// Sign-ins at once: each one verifies an argon2 hash, a few tens of milliseconds of CPU.
const SIGN_INS_AT_ONCE: usize = 4;

/// Signs every user in through `POST /api/sessions`, as a client does: their tokens, in
/// the order of `emails`.
async fn sign_in(http: &reqwest::Client, base: &str, emails: &[String]) -> Result<Vec<String>> {
    futures_util::stream::iter(emails)
        .map(|email| async move {
            let response = http
                .post(format!("{base}/api/sessions"))
                .json(&serde_json::json!({ "email": email, "password": PASSWORD }))
                .send()
                .await
                .map_err(|e| Error::Invalid(format!("signing {email} in: {e}")))?;
            let status = response.status();
            let body: serde_json::Value = response
                .json()
                .await
                .map_err(|e| Error::Invalid(format!("signing {email} in: {e}")))?;
            match body["token"].as_str() {
                Some(token) if status.is_success() => Ok(token.to_string()),
                _ => Err(Error::Invalid(format!(
                    "signing {email} in: {status} {body}"
                ))),
            }
        })
        .buffered(SIGN_INS_AT_ONCE)
        .try_collect()
        .await
}

/// The wrk script: round-robin over the users' tokens, one summary line at the end.
fn lua(tokens: &[String]) -> String {
    let list = tokens
        .iter()
        .map(|t| format!("\"{t}\""))
        .collect::<Vec<_>>()
        .join(",");
    format!(
        r#"local tokens = {{ {list} }}
local n = 0
request = function()
  n = n + 1
  local headers = {{}}
  headers["Authorization"] = "Bearer " .. tokens[(n % #tokens) + 1]
  headers["Content-Type"] = "application/json"
  return wrk.format("POST", "/api/jobs", headers, '{{"job_type":"noop"}}')
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("OCTAVIA %d %d %d %d %d\n", summary.requests,
    e.connect + e.read + e.write + e.status + e.timeout, summary.duration,
    latency:percentile(50), latency:percentile(99)))
end
"#
    )
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}
