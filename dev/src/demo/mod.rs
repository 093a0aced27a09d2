//! `octavia-dev demo` (run by `bin/demo`): Octavia dubbing a video from nothing, on one
//! machine, the way a deployment runs it.
//!
//! It starts an embedded PostgreSQL under [`DEMO_DIR`] (unless `DATABASE_URL` names a
//! server) and migrates it; makes the demo user with enough credits; starts `octavia-api`
//! and two `octavia-worker`s as child processes with a configuration written for them
//! (the local store under [`DEMO_DIR`], a signing secret made once, free ports, short
//! segments); generates an English test video; and then acts as a client would, through
//! the API only: signs in, uploads the video, asks for a Spanish dub, follows its
//! progress over Server-Sent Events, and checks the download link. It ends by saying
//! where the dubbed video and its subtitles are and stopping everything it started. The
//! cluster's data, the user and the secrets stay for the next run.
//!
//! [`setup`] makes and reuses what persists, [`children`] runs the processes,
//! [`client`] is the HTTP client, [`progress`] follows the job, [`report`] shows the result.

pub mod children;
pub mod client;
mod error;
pub mod progress;
pub mod report;
pub mod setup;

pub use error::DemoError;
pub use setup::{DEMO_DIR, DemoPaths, SEGMENT_SECONDS};

use children::{Children, sibling_program};
use client::ApiClient;
use octavia::config::Config;
use octavia::pipeline::Language;
use octavia::pipeline::media::{self, SAMPLE_PAUSE_MS, SAMPLE_SENTENCES};
use serde_json::json;
use std::ffi::OsString;
use std::time::{Duration, Instant};

/// The demo user's email address.
pub const DEMO_EMAIL: &str = "demo@example.com";

/// The balance the demo user is topped up to at each run (a dub of the demo video costs
/// 10 at the default price).
pub const DEMO_CREDITS: i64 = 100;

/// Worker processes started.
pub const WORKERS: usize = 2;

/// Segments each worker runs at once: with one each, two run at a time (what two cores
/// take) and neither worker can claim every segment alone.
pub const WORKER_CONCURRENCY: u32 = 1;

/// How often the sample sentences are spoken in the demo video: twice is about half a
/// minute, several segments of [`SEGMENT_SECONDS`].
const SENTENCE_ROUNDS: usize = 2;

/// Longest the demo waits for the API and the workers to start.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Longest the demo waits for its job.
const JOB_TIMEOUT: Duration = Duration::from_secs(600);

/// Longest the demo waits for its processes after SIGTERM before killing them.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// What the worker logs once it claims work; the demo waits for it.
const WORKER_READY: &str = "worker started";

/// Prints a step of the demo: a label, then what happened.
fn step(label: &str, text: impl std::fmt::Display) {
    println!("{label:<10} {text}");
}

/// Runs the demo with `config` (config.toml, the environment and flags) as its base.
/// Everything it started is stopped before it returns, whether it succeeded, failed or
/// was interrupted with Ctrl-C.
pub async fn run(mut config: Config) -> Result<(), DemoError> {
    let started = Instant::now();
    let paths = DemoPaths::new(DEMO_DIR);
    let _lock = setup::DemoLock::acquire(&paths)?;
    let (cluster, database) = setup::database(&mut config, &paths).await?;
    step("database", database);
    let mut children = Children::default();
    let outcome = tokio::select! {
        outcome = session(config, &paths, &mut children) => outcome,
        _ = tokio::signal::ctrl_c() => Err(DemoError::Interrupted),
    };
    // A request that failed because a child died is reported as that death, with its log.
    let outcome = match outcome {
        Err(e @ DemoError::Http { .. }) => Err(children
            .dead_child(Duration::from_secs(2))
            .await
            .unwrap_or(e)),
        other => other,
    };
    let stopped = children.stop(STOP_TIMEOUT).await;
    if !stopped.is_empty() {
        let list: Vec<String> = stopped.iter().map(ToString::to_string).collect();
        step("stopped", list.join(", "));
    }
    if let Some(cluster) = cluster {
        match cluster.shutdown() {
            Ok(()) => step(
                "stopped",
                format!(
                    "PostgreSQL; its data stays in {} for the next run",
                    cluster.dir.display()
                ),
            ),
            // The demo's own failure, if any, matters more; the next run reuses a cluster
            // that is still running.
            Err(e) if outcome.is_err() => eprintln!("warning: {e}"),
            Err(e) => return Err(e.into()),
        }
    }
    if outcome.is_ok() {
        step(
            "done",
            format!(
                "in {:.1} s; bin/demo again dubs another video with what is set up",
                started.elapsed().as_secs_f64()
            ),
        );
    }
    outcome
}

/// Everything between starting the database and stopping it.
async fn session(
    mut config: Config,
    paths: &DemoPaths,
    children: &mut Children,
) -> Result<(), DemoError> {
    let applied = octavia::migrate::run_url(&config.database.url).await?;
    if applied.is_empty() {
        step(
            "schema",
            format!("current (version {})", octavia::migrate::latest_version()),
        );
    } else {
        step("schema", format!("applied {}", applied.join(", ")));
    }
    config.database.pool_size = 2;
    let pool = octavia::db::pool(&config.database)?;

    let (secret, new_secret) = setup::read_or_create_secret(&paths.signing_secret())?;
    let (password, _) = setup::read_or_create_secret(&paths.password())?;
    let mut client = pool.get().await.map_err(octavia::Error::from)?;
    let user = setup::ensure_user(&mut client, DEMO_EMAIL, &password, DEMO_CREDITS).await?;
    let credits = if user.created {
        format!("created with {} credits", user.balance)
    } else if user.granted > 0 {
        format!(
            "reused, topped up by {} to {} credits",
            user.granted, user.balance
        )
    } else {
        format!("reused, {} credits", user.balance)
    };
    step(
        "user",
        format!(
            "{DEMO_EMAIL} {credits} (its password is in {})",
            paths.password().display()
        ),
    );

    let port = crate::process::free_port().map_err(octavia::Error::from)?;
    let demo = setup::demo_config(&config, paths, port, &secret);
    setup::write_config(&demo, &paths.config())?;
    let store = if demo.storage.backend == "local" {
        format!(
            "local store in {}, signing secret {} {}",
            demo.storage.local_dir,
            if new_secret { "made in" } else { "from" },
            paths.signing_secret().display()
        )
    } else {
        format!("S3 bucket {}", demo.storage.s3_bucket)
    };
    step(
        "config",
        format!(
            "{} ({store}; segments of about {SEGMENT_SECONDS} s)",
            paths.config().display()
        ),
    );

    start_processes(children, paths)?;
    // Made while the processes start: they need a few seconds, and so does the video.
    let input = paths.input().join("octavia-demo.mp4");
    std::fs::create_dir_all(paths.input()).map_err(octavia::Error::from)?;
    let sentences: Vec<&str> = SAMPLE_SENTENCES.repeat(SENTENCE_ROUNDS);
    let speech =
        media::generate_video(&sentences, Language::English, SAMPLE_PAUSE_MS, &input).await?;
    step(
        "video",
        format!(
            "{}: {:.1} s, {} English sentences spoken by espeak-ng over a test pattern",
            input.display(),
            speech.duration_ms as f64 / 1000.0,
            sentences.len()
        ),
    );
    wait_until_started(children, &demo).await?;
    step(
        "started",
        format!(
            "octavia-api on {} and {WORKERS} octavia-workers ({WORKER_CONCURRENCY} segment at a \
             time each); logs in {}",
            demo.api.public_url,
            paths.logs().display()
        ),
    );

    let mut api = ApiClient::new(&demo.api.public_url)?;
    api.sign_in(DEMO_EMAIL, &password).await?;
    let outcome = dub(&api, &input, children, &demo, &pool).await;
    // The token is of no further use; a failure to drop it changes nothing.
    let _ = api.sign_out().await;
    outcome
}

/// Starts the API and the workers on the demo's configuration.
fn start_processes(children: &mut Children, paths: &DemoPaths) -> Result<(), DemoError> {
    let config_arg = |mut args: Vec<OsString>| {
        args.splice(0..0, ["--config".into(), paths.config().into_os_string()]);
        args
    };
    children.spawn(
        "api",
        &sibling_program("octavia-api")?,
        &config_arg(vec![]),
        &paths.logs(),
    )?;
    for n in 1..=WORKERS {
        let args = config_arg(vec![
            "--worker-id".into(),
            format!("demo-worker-{n}").into(),
            "--concurrency".into(),
            WORKER_CONCURRENCY.to_string().into(),
        ]);
        children.spawn(
            &format!("worker-{n}"),
            &sibling_program("octavia-worker")?,
            &args,
            &paths.logs(),
        )?;
    }
    Ok(())
}

/// Waits for the API to answer /readyz and for each worker to log that it started.
async fn wait_until_started(children: &mut Children, demo: &Config) -> Result<(), DemoError> {
    let api = ApiClient::new(&demo.api.public_url)?;
    let deadline = Instant::now() + START_TIMEOUT;
    while !api.is_ready().await {
        children.check()?;
        if Instant::now() > deadline {
            let log = children.log_of("api").map(|p| p.display().to_string());
            return Err(DemoError::Failed(format!(
                "octavia-api did not become ready at {}/readyz within {} s; see {}",
                demo.api.public_url,
                START_TIMEOUT.as_secs(),
                log.unwrap_or_default()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for n in 1..=WORKERS {
        children
            .wait_for_log(&format!("worker-{n}"), WORKER_READY, START_TIMEOUT)
            .await?;
    }
    Ok(())
}

/// The client's part: upload, job, progress, result.
async fn dub(
    api: &ApiClient,
    input: &std::path::Path,
    children: &mut Children,
    demo: &Config,
    pool: &deadpool_postgres::Pool,
) -> Result<(), DemoError> {
    // A job an interrupted run left would share the workers with this one and slow it.
    for id in api.unfinished_jobs().await? {
        api.cancel(id).await?;
        step(
            "cancelled",
            format!("job {id}, left unfinished by an interrupted run (its credits come back)"),
        );
    }
    let project = api.project("Octavia demo").await?;
    let media = api.upload(input, "video", project).await?;
    step(
        "uploaded",
        format!(
            "media {} through the API (POST /api/uploads, PUT to its signed URL, \
             POST /api/uploads/{{id}}/complete): {} bytes, {:.1} s",
            media.id,
            media.size_bytes.unwrap_or_default(),
            media.duration_seconds.unwrap_or_default()
        ),
    );
    let options = json!({ "source_language": "en", "target_language": "es" });
    let job = api
        .create_job("video_translation", media.id, project, options)
        .await?;
    step(
        "job",
        format!(
            "{}: video_translation en -> es, {} credits reserved; following \
             GET /api/jobs/{{id}}/events",
            job.id, job.cost_credits
        ),
    );
    let followed = Instant::now();
    let last = progress::follow(api, job.id, children, JOB_TIMEOUT, |p| {
        println!("{}", progress::line(followed.elapsed(), p));
    })
    .await?;
    if last.status != "completed" {
        return Err(DemoError::Failed(format!(
            "the job {}: {}; the workers' logs are in {}",
            last.status,
            last.error.as_deref().unwrap_or("no error recorded"),
            DemoPaths::new(DEMO_DIR).logs().display()
        )));
    }
    let job = api.job(job.id).await?;
    let client = pool.get().await.map_err(octavia::Error::from)?;
    let segments = octavia::queue::admin::segments(&client, job.id).await?;
    let engines = &demo.engines;
    println!(
        "dubbed in {:.1} s; what each segment's worker heard ({}) and said ({}, {}):",
        followed.elapsed().as_secs_f64(),
        engines.speech_to_text,
        engines.translator,
        engines.text_to_speech
    );
    for line in report::segment_lines(&segments) {
        println!("{line}");
    }
    let output = job.output.ok_or_else(|| {
        DemoError::Failed(format!("the job {} completed without an output", job.id))
    })?;
    println!(
        "output     media {}, {:.1} s like the input:",
        output.media_id,
        output.duration_seconds.unwrap_or_default()
    );
    for (role, key) in report::output_files(&client, output.media_id).await? {
        println!(
            "  {role:<9}{}",
            report::object_location(&demo.storage, &key)
        );
    }
    if let Some(link) = output.download {
        let size = api.download_size(&link.url).await?;
        println!("  download {}", link.url);
        println!(
            "           (checked: {size} bytes; a signed link of the API, which stops with the demo)"
        );
    }
    Ok(())
}
