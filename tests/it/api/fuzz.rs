//! Bad input to every route: schemathesis (PyPI) generates requests from
//! `/api/openapi.json`, valid and invalid, sent with a valid token. No answer may be a
//! server error, and every answer must match the schema the document gives it.
//!
//! schemathesis is the pinned one bin/deps installs into .venv-api-tests from
//! requirements/api-tests.txt.

use super::*;
use std::process::Stdio;

const INSTALL: &str = "bin/deps";

#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_response_off_its_schema() {
    let db = TestDb::new().await;
    let (mut config, _dir) = config(&db);
    config.pricing.noop = 1;
    // Every generated POST /api/jobs should reach the job checks: past the default rate most
    // would be answered 429 before them. The 429 itself is tested in limits.rs.
    config.api.job_creations_per_minute = 0;
    config.polar.webhook_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into();
    let api = TestApi::start(config).await;
    let (_, token) = signed_in(&api, &db, "user", 1000).await;
    let report = tempfile::tempdir().unwrap();

    let python = api_tests_python();
    let run = tokio::process::Command::new(&python)
        .args(["-m", "schemathesis.cli", "run"])
        .arg(format!("{}/api/openapi.json", api.url))
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args([
            "--checks",
            "not_a_server_error,response_schema_conformance,content_type_conformance",
        ])
        // Signing out would leave the rest of the run without a valid token.
        .args(["--exclude-path", "/api/sessions/current"])
        // The event stream of a queued job lasts until the job ends, which no worker here
        // makes it do: each request would wait out the request timeout. Its events are
        // checked against their schema in events.rs.
        .args(["--exclude-path", "/api/jobs/{id}/events"])
        // Bounded: a fixed seed and sample size keep the run reproducible and short.
        .args(["--phases", "examples,coverage,fuzzing"])
        // One worker: with two threads, hypothesis describing a strategy's lambda sometimes
        // trips CPython 3.11's `ast` (SystemError: AST constructor recursion depth
        // mismatch) and the run ends in an error that is the tool's, not the API's.
        .args(["--max-examples", "40", "--seed", "7", "--workers", "1"])
        .args(["--request-timeout", "30"])
        .args(["--generation-database", "none"])
        .arg("--no-color")
        .arg("--report-dir")
        .arg(report.path())
        .env("SCHEMATHESIS_HOOKS", "")
        // Whatever it writes (reports, hypothesis' cache) stays out of the repository.
        .current_dir(report.path())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(540), run)
        .await
        .expect("schemathesis finishes within 9 minutes")
        .unwrap_or_else(|e| panic!("{} does not run ({e}): run `{INSTALL}`", python.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("No module named"),
        "schemathesis is not installed in {}: run `{INSTALL}`",
        python.display()
    );
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // It really exercised the API: hundreds of requests, every operation selected tested.
    let generated: u64 = stdout
        .lines()
        .find_map(|l| l.trim().strip_suffix(" passed")?.split_once(" generated, "))
        .and_then(|(n, _)| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no test case count in:\n{stdout}"));
    assert!(generated >= 300, "only {generated} requests:\n{stdout}");
    let tested = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("Tested: "));
    let selected = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("Selected: "))
        .and_then(|s| s.split('/').next());
    assert!(tested.is_some() && tested == selected, "{stdout}");
}
