//! Clients generated from the served OpenAPI document work: the document a live API serves
//! is fed to openapi-typescript (npm) and openapi-python-client (PyPI), and a program
//! written against each generated client (clients/typescript/flow.ts, compiled with
//! `tsc --strict`, and clients/python/flow.py) signs in, uploads a subtitle file, creates
//! a subtitle_translation job with typed options and reads it back. A document that a
//! generator refuses, or that types a request or answer wrongly, fails here.
//!
//! The tools are the pinned ones bin/deps installs (clients/typescript/node_modules from
//! its package-lock.json, .venv-clients from requirements/clients.txt); everything
//! generated or compiled goes to a temporary directory.

use super::*;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::process::Command;

/// A file of the repository.
fn repo(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// An installed tool of the repository's, or a failure that says how to install it.
fn tool(relative: &str) -> PathBuf {
    let path = repo(relative);
    assert!(
        path.exists(),
        "{} is missing: run `bin/deps`, which installs the pinned client generators",
        path.display()
    );
    path
}

/// Runs `command` to its end, failing with its output unless it succeeds within `limit`
/// seconds; returns its stdout and stderr.
async fn run(what: &str, command: &mut Command, limit: u64) -> (String, String) {
    let out = command.stdin(Stdio::null()).kill_on_drop(true).output();
    let out = tokio::time::timeout(Duration::from_secs(limit), out)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {limit} s"))
        .unwrap_or_else(|e| panic!("{what} could not start ({e}); `bin/deps` installs it"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    (stdout, stderr)
}

/// A live API with a user of 100 credits, and its document saved in a temporary directory
/// where the client is generated.
struct Live {
    db: TestDb,
    api: TestApi,
    _store: TempDir,
    user: Uuid,
    email: String,
    password: String,
    work: TempDir,
}

impl Live {
    async fn start() -> Live {
        let db = TestDb::new().await;
        let (config, store) = config(&db);
        let api = TestApi::start(config).await;
        let (user, email, password) = user(&db, "user", 100).await;
        let work = tempfile::tempdir().unwrap();
        let r = api
            .request(Method::GET, "/api/openapi.json", None)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        std::fs::write(work.path().join("openapi.json"), r.bytes().await.unwrap()).unwrap();
        Live {
            db,
            api,
            _store: store,
            user,
            email,
            password,
            work,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    /// The job a flow printed on its last line, checked against the database: it is the
    /// user's only job (the replay created none), queued with the options the flow sent,
    /// and its price is what the balance and the ledger lost.
    async fn check_job(&self, stdout: &str, what: &str) {
        let printed: Value = stdout
            .lines()
            .last()
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or_else(|| panic!("{what} printed no job:\n{stdout}"));
        let job: Uuid = printed["job_id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{what}: {printed}"));
        let client = self.db.client().await;
        let rows = client
            .query(
                "SELECT id, job_type, status::text, input_media_id, metadata->'options',
                        cost_credits
                 FROM jobs WHERE user_id = $1",
                &[&self.user],
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "{what}: one job for the user");
        let row = &rows[0];
        assert_eq!(row.get::<_, Uuid>(0), job, "{what}");
        assert_eq!(row.get::<_, String>(1), "subtitle_translation", "{what}");
        assert_eq!(row.get::<_, String>(2), "queued", "{what}");
        let input: Uuid = row.get(3);
        assert_eq!(
            Some(input.to_string().as_str()),
            printed["media_id"].as_str(),
            "{what}"
        );
        let options = json!({"source_language": "en", "target_language": "es", "format": "vtt"});
        assert_eq!(
            row.get::<_, Value>(4),
            options,
            "{what}: the options as the client sent them"
        );
        assert_eq!(
            printed["options"], options,
            "{what}: as the client read them"
        );
        let media: String = client
            .query_one(
                "SELECT media_type FROM media_files WHERE id = $1 AND metadata->>'upload' = 'complete'",
                &[&input],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(media, "subtitle", "{what}");
        let cost: i64 = row.get(5);
        assert!(cost > 0, "{what}");
        assert_eq!(printed["cost_credits"], cost, "{what}");
        assert_eq!(balance(&self.db, self.user).await, (100 - cost, 100 - cost));
    }
}

#[tokio::test]
async fn a_typescript_client_generated_from_the_document_signs_in_uploads_and_creates_a_job() {
    let generator = tool("clients/typescript/node_modules/.bin/openapi-typescript");
    let tsc = tool("clients/typescript/node_modules/.bin/tsc");
    let live = Live::start().await;
    // The program, its configuration and the generated types side by side; the packages
    // are the installed ones, found through a link as if they were installed here.
    for file in ["flow.ts", "tsconfig.json", "package.json"] {
        std::fs::copy(repo("clients/typescript").join(file), live.path(file)).unwrap();
    }
    std::os::unix::fs::symlink(
        repo("clients/typescript/node_modules"),
        live.path("node_modules"),
    )
    .unwrap();

    let (stdout, stderr) = run(
        "openapi-typescript",
        Command::new(&generator)
            .arg(live.path("openapi.json"))
            .arg("--output")
            .arg(live.path("schema.d.ts"))
            .current_dir(live.work.path()),
        120,
    )
    .await;
    // It warns (and goes on) about what it cannot type.
    assert!(
        !format!("{stdout}{stderr}").contains('⚠'),
        "openapi-typescript warned:\n{stdout}\n{stderr}"
    );
    let schema = std::fs::read_to_string(live.path("schema.d.ts")).unwrap();
    assert!(schema.contains("createJob: {"), "no createJob in the types");

    // --strict besides the tsconfig's own "strict": true, so no edit there loosens it.
    run(
        "tsc --strict",
        Command::new(&tsc)
            .args(["--strict", "--project"])
            .arg(live.path("tsconfig.json"))
            .current_dir(live.work.path()),
        180,
    )
    .await;

    let (stdout, _) = run(
        "node out/flow.js",
        Command::new("node")
            .arg(live.path("out/flow.js"))
            .arg(&live.api.url)
            .env("OCTAVIA_EMAIL", &live.email)
            .env("OCTAVIA_PASSWORD", &live.password)
            .current_dir(live.work.path()),
        120,
    )
    .await;
    live.check_job(&stdout, "the TypeScript flow").await;
    live.api.stop().await;
}

#[tokio::test]
async fn a_python_client_generated_from_the_document_signs_in_uploads_and_creates_a_job() {
    let generator = tool(".venv-clients/bin/openapi-python-client");
    let python = tool(".venv-clients/bin/python");
    let live = Live::start().await;

    let (stdout, stderr) = run(
        "openapi-python-client generate",
        Command::new(&generator)
            .arg("generate")
            .arg("--path")
            .arg(live.path("openapi.json"))
            .arg("--config")
            .arg(repo("clients/python/config.yaml"))
            // The package alone, no pyproject around it: flow.py imports it from PYTHONPATH.
            .args(["--meta", "none"])
            .arg("--output-path")
            .arg(live.path("octavia_client"))
            .current_dir(live.work.path()),
        120,
    )
    .await;
    // It skips, with a warning, what it cannot generate, and still succeeds.
    assert!(
        !format!("{stdout}{stderr}").contains("Warning"),
        "openapi-python-client warned:\n{stdout}\n{stderr}"
    );

    let (stdout, _) = run(
        "python flow.py",
        Command::new(&python)
            .arg(repo("clients/python/flow.py"))
            .arg(&live.api.url)
            .env("OCTAVIA_EMAIL", &live.email)
            .env("OCTAVIA_PASSWORD", &live.password)
            .env("PYTHONPATH", live.work.path())
            // No __pycache__ beside flow.py in the repository.
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .current_dir(live.work.path()),
        120,
    )
    .await;
    live.check_job(&stdout, "the Python flow").await;
    live.api.stop().await;
}
