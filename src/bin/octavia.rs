//! `octavia`: the operator's command line.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use octavia::config::CommonArgs;
use octavia::job::{JobStatus, JobType};
use octavia::queue::admin;
use octavia::queue::enqueue::{self, NewJob};
use std::process::ExitCode;
use std::time::Instant;
use uuid::Uuid;

#[derive(Parser)]
#[command(name = "octavia", version, about = "Octavia operator CLI")]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending migrations (a no-op when the schema is current) and list the tables
    Migrate,
    /// Users
    #[command(subcommand)]
    Users(UsersCommand),
    /// Credits
    #[command(subcommand)]
    Credits(CreditsCommand),
    /// Jobs
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// The queue
    #[command(subcommand)]
    Queue(QueueCommand),
    /// The object store
    #[command(subcommand)]
    Storage(StorageCommand),
}

#[derive(Subcommand)]
enum StorageCommand {
    /// Objects and bytes by kind: uploads, outputs, intermediates, orphans
    Stats,
    /// Delete what the retention policy says is no longer needed: intermediates of failed
    /// jobs past their retention, media past theirs, and orphans
    Sweep {
        /// Say what would be deleted, and delete nothing
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Create a user
    Create {
        #[arg(long)]
        email: String,
        /// At least 8 characters
        #[arg(long)]
        password: String,
        /// user, admin or team
        #[arg(long, default_value = "user")]
        role: String,
        /// Credits granted at creation
        #[arg(long, default_value_t = 0)]
        credits: i64,
    },
    /// Delete a user: their projects, sessions, media files and stored files. Their jobs and
    /// payments stay, without an owner. Refused while one of their jobs is in progress.
    Delete { email: String },
    /// Set a user's share of the fleet (or that of every user of a role): its weight
    /// against the other users with work ready, and a ceiling on its segments running at
    /// once across every worker
    Share {
        /// The user's email (or --role)
        #[arg(required_unless_present = "role", conflicts_with = "role")]
        email: Option<String>,
        /// Every user of this role, as they are now: user, admin or team
        #[arg(long)]
        role: Option<String>,
        /// Share of each claim relative to the other users' weights, 1 to 10000 [default:
        /// unchanged; a new user has 1]
        #[arg(long)]
        weight: Option<i32>,
        /// Most segments leased at once across the fleet; 0 for no ceiling [default:
        /// unchanged; a new user has none]
        #[arg(long)]
        max_running: Option<i32>,
    },
}

#[derive(Subcommand)]
enum CreditsCommand {
    /// Add credits to a user's balance
    Grant { email: String, amount: i64 },
}

#[derive(Subcommand)]
enum JobsCommand {
    /// Insert jobs in bulk
    Enqueue {
        /// Owner of the jobs
        #[arg(long)]
        user: String,
        /// Job type
        #[arg(long = "type")]
        job_type: String,
        /// How many jobs
        #[arg(long, default_value_t = 1)]
        count: u32,
        /// noop: segments per job
        #[arg(long)]
        segments: Option<u32>,
        /// noop: milliseconds each segment takes
        #[arg(long)]
        segment_ms: Option<u64>,
        /// noop: chance a segment attempt fails (retryably)
        #[arg(long)]
        fail_rate: Option<f64>,
        /// noop: segment indexes that always fail, comma-separated
        #[arg(long, value_delimiter = ',')]
        fail_segments: Option<Vec<i32>>,
        /// Options as a JSON object (merged with the flags above)
        #[arg(long)]
        options: Option<String>,
        /// The input media file (a media_files id of the user's; the pipeline types need one)
        #[arg(long)]
        input: Option<Uuid>,
        /// Lower runs first
        #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
        priority: i16,
        /// Credits each job reserves
        #[arg(long, default_value_t = 0)]
        cost: i64,
        /// Attempts per segment and step [default: worker.max_attempts]
        #[arg(long)]
        max_attempts: Option<i32>,
        /// Start no earlier than this many seconds from now
        #[arg(long, default_value_t = 0)]
        delay_seconds: u64,
    },
    /// List the newest jobs
    List {
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Show a job and its segments
    Show { id: Uuid },
    /// Resume a failed or cancelled job from its unfinished segments (reserves its credits again)
    Retry { id: Uuid },
    /// Cancel a job
    Cancel { id: Uuid },
}

#[derive(Subcommand)]
enum QueueCommand {
    /// Counts by status, oldest queued job, leases held
    Stats,
}

#[tokio::main]
async fn main() -> ExitCode {
    octavia::telemetry::init();
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    let config = cli.common.loader()?.load()?;
    if let Command::Migrate = cli.command {
        let applied = octavia::migrate::run_url(&config.database.migration_url()?).await?;
        if applied.is_empty() {
            println!(
                "schema is current (version {})",
                octavia::migrate::latest_version()
            );
        }
        for m in &applied {
            println!("applied {m}");
        }
        let client = octavia::db::connect(&config.database.migration_url()?).await?;
        for row in client.query(octavia::sql::TABLE_ROWS, &[]).await? {
            println!(
                "{:<24} {:>10} rows",
                row.get::<_, String>("name"),
                row.get::<_, i64>("row_count")
            );
        }
        return Ok(());
    }
    let pool = octavia::migrate::prepare(&config).await?;
    let mut client = pool.get().await?;
    match cli.command {
        Command::Users(UsersCommand::Create {
            email,
            password,
            role,
            credits,
        }) => {
            let id = octavia::users::create(&client, &email, &password, &role, credits).await?;
            println!(
                "created user {id} ({}, {role}, {credits} credits)",
                email.trim().to_lowercase()
            );
        }
        Command::Users(UsersCommand::Delete { email }) => {
            let id = user(&client, &email).await?;
            let store = octavia::storage::Storage::from_config(&config.storage)?;
            let deleted = octavia::retention::delete::user(&mut client, &store, id).await?;
            println!(
                "deleted user {id} ({email}): {} media files ({} kept as deleted rows: jobs \
                 name them), {} stored objects",
                deleted.media, deleted.media_kept, deleted.objects
            );
        }
        Command::Users(UsersCommand::Share {
            email,
            role,
            weight,
            max_running,
        }) => {
            use octavia::users::Whom;
            if weight.is_none() && max_running.is_none() {
                bail!("nothing to set: give --weight, --max-running or both");
            }
            let whom = match (&email, &role) {
                (Some(e), _) => Whom::Email(e),
                (None, Some(r)) => Whom::Role(r),
                (None, None) => unreachable!("clap requires one"),
            };
            let changed = octavia::users::set_share(&client, whom, weight, max_running).await?;
            if changed.is_empty() {
                match (email, role) {
                    (Some(e), _) => {
                        bail!("no user with email {e} (create one with `octavia users create`)")
                    }
                    (_, r) => println!("no user has the role {}", r.unwrap_or_default()),
                }
            }
            for s in changed {
                let ceiling = s
                    .max_running_segments
                    .map_or("no ceiling".to_string(), |m| {
                        format!("at most {m} segments running")
                    });
                println!("{}: weight {}, {ceiling}", s.email, s.weight);
            }
        }
        Command::Credits(CreditsCommand::Grant { email, amount }) => {
            if amount <= 0 {
                bail!("the amount must be positive");
            }
            let user = user(&client, &email).await?;
            let tx = client.transaction().await?;
            let balance =
                octavia::credits::credit(&tx, user, amount, octavia::credits::GRANT).await?;
            tx.commit().await?;
            println!("granted {amount} credits to {email}; balance {balance}");
        }
        Command::Jobs(JobsCommand::Enqueue {
            user: email,
            job_type,
            count,
            segments,
            segment_ms,
            fail_rate,
            fail_segments,
            options,
            input,
            priority,
            cost,
            max_attempts,
            delay_seconds,
        }) => {
            // The catalogue, not a registry: building one would open the object store.
            let Some(kind) = JobType::from_name(&job_type) else {
                bail!(
                    "`{job_type}` is not a job type (known: {})",
                    JobType::names()
                );
            };
            let mut opts: serde_json::Map<String, serde_json::Value> = match options {
                Some(text) => {
                    serde_json::from_str(&text).context("--options is not a JSON object")?
                }
                None => Default::default(),
            };
            let mut set = |k: &str, v: serde_json::Value| {
                opts.insert(k.to_string(), v);
            };
            if let Some(s) = segments {
                set("segments", s.into());
            }
            if let Some(ms) = segment_ms {
                set("segment_ms", ms.into());
            }
            if let Some(p) = fail_rate {
                set("fail_rate", p.into());
            }
            if let Some(f) = fail_segments {
                set("fail_segments", f.into());
            }
            let options = serde_json::Value::Object(opts);
            kind.check_options(&options).map_err(anyhow::Error::msg)?;
            if cost < 0 {
                bail!("--cost cannot be negative");
            }
            let max_attempts = max_attempts.unwrap_or(config.worker.max_attempts as i32);
            if max_attempts < 1 {
                bail!("--max-attempts must be at least 1");
            }
            let user = user(&client, &email).await?;
            let run_at = (delay_seconds > 0)
                .then(|| chrono::Utc::now() + chrono::Duration::seconds(delay_seconds as i64));
            let started = Instant::now();
            enqueue::insert_many(&pool, count as usize, || NewJob {
                user_id: Some(user),
                cost_credits: cost,
                priority,
                run_at,
                max_attempts,
                input_media_id: input,
                ..NewJob::new(&job_type, options.clone())
            })
            .await?;
            let secs = started.elapsed().as_secs_f64();
            println!(
                "enqueued {count} {job_type} jobs in {secs:.3} s ({:.0} jobs/s)",
                count as f64 / secs.max(1e-9)
            );
        }
        Command::Jobs(JobsCommand::List { status, limit }) => {
            let status = status
                .map(|s| s.parse::<JobStatus>())
                .transpose()
                .map_err(anyhow::Error::msg)?;
            let jobs = admin::list(&client, status, limit).await?;
            println!(
                "{:<36}  {:<20} {:<10} {:<9} {:>4}%  {:>13}  error",
                "id", "type", "status", "step", "", "segments"
            );
            for j in jobs {
                println!(
                    "{:<36}  {:<20} {:<10} {:<9} {:>4}%  {:>6}/{:<6}  {}",
                    j.id,
                    j.job_type,
                    j.status,
                    j.step,
                    j.progress,
                    j.segments_done,
                    j.segments_total,
                    j.last_error.unwrap_or_default()
                );
            }
        }
        Command::Jobs(JobsCommand::Show { id }) => {
            let job = admin::job(&client, id)
                .await?
                .with_context(|| format!("job {id} not found"))?;
            let segments = admin::segments(&client, id).await?;
            let out = serde_json::json!({ "job": job, "segments": segments });
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        Command::Jobs(JobsCommand::Retry { id }) => {
            let retried = admin::retry(&mut client, id).await?;
            if retried.replanned {
                println!(
                    "job {id} queued again (run {}); its intermediate files were deleted \
                     after storage.failed_job_retention_seconds, so it plans again from its input",
                    retried.run
                );
            } else {
                println!("job {id} resumed (run {})", retried.run);
            }
        }
        Command::Jobs(JobsCommand::Cancel { id }) => {
            if admin::cancel(&mut client, id).await? {
                println!("job {id} cancelled");
            } else {
                println!("job {id}: cancel requested; it ends when its running work stops");
            }
        }
        Command::Queue(QueueCommand::Stats) => {
            let stats = admin::stats(&client).await?;
            println!("jobs:");
            for (status, n) in &stats.jobs {
                println!("  {status:<10} {n:>10}");
            }
            println!("segments:");
            for (status, n) in &stats.segments {
                println!("  {status:<10} {n:>10}");
            }
            match stats.oldest_queued_seconds {
                Some(s) => println!("oldest queued job: {s:.1} s"),
                None => println!("oldest queued job: none queued"),
            }
            println!("leases held:");
            for (worker, n) in &stats.leases {
                println!("  {worker:<30} {n:>6}");
            }
            for problem in &stats.vacuum_problems {
                println!("warning: {problem}; dead rows of the queue tables pile up");
            }
        }
        Command::Storage(command) => storage(&config, pool.clone(), command).await?,
        Command::Migrate => unreachable!("handled above"),
    }
    Ok(())
}

async fn user(client: &deadpool_postgres::Object, email: &str) -> Result<Uuid> {
    Ok(octavia::users::by_email(client, email)
        .await?
        .with_context(|| {
            format!("no user with email {email} (create one with `octavia users create`)")
        })?
        .id)
}

async fn storage(
    config: &octavia::config::Config,
    pool: deadpool_postgres::Pool,
    command: StorageCommand,
) -> Result<()> {
    let store = octavia::storage::Storage::from_config(&config.storage)?;
    let sweeper = octavia::retention::Sweeper::new(pool, store, config.storage.clone(), "octavia");
    let census = match command {
        StorageCommand::Stats => sweeper.census().await?,
        StorageCommand::Sweep { dry_run } => {
            let report = sweeper.pass(dry_run, true).await?;
            let verb = if dry_run {
                "would be deleted"
            } else {
                "deleted"
            };
            println!(
                "failed jobs past storage.failed_job_retention_seconds: {} (their intermediates {verb})",
                report.failed_jobs
            );
            println!(
                "media past their retention: {} (their files {verb}, their rows kept as expired)",
                report.expired_media
            );
            println!("objects of those: {}", report.objects_deleted);
            let census = report.orphans.unwrap_or_default();
            let bytes: u64 = census.orphans.iter().map(|o| o.size).sum();
            println!(
                "orphans: {} ({}) {verb}",
                census.orphans.len(),
                human(bytes)
            );
            const SHOWN: usize = 50;
            for o in census.orphans.iter().take(SHOWN) {
                println!("  {}  {}  ({})", o.key, human(o.size), o.why);
            }
            if census.orphans.len() > SHOWN {
                println!("  … and {} more", census.orphans.len() - SHOWN);
            }
            return Ok(());
        }
    };
    println!("{:<14} {:>10} {:>12}", "kind", "objects", "bytes");
    for kind in octavia::retention::census::Kind::ALL {
        let tally = census.of(kind);
        println!(
            "{:<14} {:>10} {:>12}",
            kind.name(),
            tally.objects,
            human(tally.bytes)
        );
    }
    Ok(())
}

/// Bytes for a person: 1.5 MB.
fn human(bytes: u64) -> String {
    let mut value = bytes as f64;
    for unit in ["B", "kB", "MB", "GB", "TB"] {
        if value < 1000.0 || unit == "TB" {
            return if unit == "B" {
                format!("{bytes} B")
            } else {
                format!("{value:.1} {unit}")
            };
        }
        value /= 1000.0;
    }
    unreachable!("the loop returns at TB")
}
