//! What the demo sets up once and reuses: its directory and lock, the database (an
//! embedded cluster unless `DATABASE_URL` is set), the local store's signing secret and the
//! demo user's password, the user with enough credits, and the configuration file its
//! child processes run with.

use crate::cluster::{Cluster, Durability};
use crate::sql;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use octavia::config::Config;
use octavia::db::Session;
use octavia::error::{Error, Result};
use octavia::{credits, db, users};
use rand::RngExt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// Where the demo keeps its database, objects, secrets and logs between runs.
pub const DEMO_DIR: &str = "var/demo";

/// `pipeline.segment_seconds` of the demo: the video of about half a minute becomes
/// several segments, so both workers take part.
pub const SEGMENT_SECONDS: u64 = 4;

/// The demo's files under [`DEMO_DIR`].
#[derive(Debug, Clone)]
pub struct DemoPaths {
    pub root: PathBuf,
}

impl DemoPaths {
    pub fn new(root: impl Into<PathBuf>) -> DemoPaths {
        DemoPaths { root: root.into() }
    }
    /// The embedded PostgreSQL cluster.
    pub fn pg(&self) -> PathBuf {
        self.root.join("pg")
    }
    /// The local object store.
    pub fn objects(&self) -> PathBuf {
        self.root.join("objects")
    }
    /// The generated input video.
    pub fn input(&self) -> PathBuf {
        self.root.join("input")
    }
    /// One log file per child process.
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }
    /// The configuration the child processes load.
    pub fn config(&self) -> PathBuf {
        self.root.join("octavia.toml")
    }
    pub fn signing_secret(&self) -> PathBuf {
        self.root.join("signing-secret")
    }
    pub fn password(&self) -> PathBuf {
        self.root.join("demo-password")
    }
    fn lock(&self) -> PathBuf {
        self.root.join("lock")
    }
}

/// Held while a demo runs: two demos in one checkout would share, and stop, one cluster.
/// The kernel releases the lock when the process ends, however it ends.
#[derive(Debug)]
pub struct DemoLock {
    _file: File,
}

impl DemoLock {
    pub fn acquire(paths: &DemoPaths) -> Result<DemoLock> {
        std::fs::create_dir_all(&paths.root)?;
        let path = paths.lock();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        // SAFETY: flock on a file descriptor this function owns; it has no other
        // preconditions.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            return Err(Error::Conflict(format!(
                "another demo is running in this checkout (pid {}, see {}): wait for it to \
                 end or stop it, then run bin/demo again",
                holder.trim(),
                path.display()
            )));
        }
        file.set_len(0)?;
        write!(file, "{}", std::process::id())?;
        Ok(DemoLock { _file: file })
    }
}

/// The database the demo uses: `DATABASE_URL`'s server when set, else the embedded
/// cluster under `paths.pg()`, started (and created and given an `octavia` database) if
/// needed. Returns the cluster when it is the demo's to stop, and a line saying which.
pub async fn database(config: &mut Config, paths: &DemoPaths) -> Result<(Option<Cluster>, String)> {
    if std::env::var("DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
        let line = format!("{} (from DATABASE_URL)", config.database.url);
        return Ok((None, line));
    }
    let dir = paths.pg();
    let fresh = !dir.join("PG_VERSION").exists();
    let cluster = Cluster::start(&dir, Durability::Durable)?;
    let admin = db::connect(&cluster.url("postgres")).await?;
    let exists: bool = admin
        .query_one(sql::DATABASE_EXISTS, &[&"octavia"])
        .await?
        .get(0);
    if !exists {
        crate::cluster::create_database(&cluster.url("postgres"), "octavia", None).await?;
    }
    config.database.url = cluster.url("octavia");
    let line = format!(
        "{} ({} embedded PostgreSQL in {})",
        config.database.url,
        if fresh { "new" } else { "reused" },
        dir.display()
    );
    Ok((Some(cluster), line))
}

/// The secret kept in `path`, made (32 random bytes, base64url) the first time. Returns it
/// and whether it is new. The file is readable by its owner only.
pub fn read_or_create_secret(path: &Path) -> Result<(String, bool)> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let secret = text.trim().to_string();
            let valid = secret.len() >= 32
                && secret
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !valid {
                return Err(Error::Invalid(format!(
                    "{} does not hold a secret the demo wrote (at least 32 letters, digits, \
                     `-` or `_`): delete it and the demo makes a new one",
                    path.display()
                )));
            }
            Ok((secret, false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let bytes: [u8; 32] = rand::rng().random();
            let secret = URL_SAFE_NO_PAD.encode(bytes);
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)?;
            writeln!(file, "{secret}")?;
            Ok((secret, true))
        }
        Err(e) => Err(e.into()),
    }
}

/// The demo's settings over the configuration it was started with: the API on
/// `api_port` of the loopback, the local store under the demo's directory with
/// `signing_secret` (unless the store is S3, or a secret is configured), short segments so
/// the video's work spreads over both workers, and a short shutdown grace.
pub fn demo_config(
    base: &Config,
    paths: &DemoPaths,
    api_port: u16,
    signing_secret: &str,
) -> Config {
    let mut config = base.clone();
    config.api.listen = format!("127.0.0.1:{api_port}");
    config.api.public_url = format!("http://127.0.0.1:{api_port}");
    if config.storage.backend == "local" {
        config.storage.local_dir = paths.objects().display().to_string();
        if config.storage.signing_secret.is_empty() {
            config.storage.signing_secret = signing_secret.to_string();
        }
    }
    config.pipeline.segment_seconds = SEGMENT_SECONDS;
    // The job is over when the demo stops its workers; anything still running then is the
    // remains of a failure, not worth waiting 30 s for.
    config.worker.shutdown_grace_seconds = 10;
    config
}

/// Writes `config` as TOML to `path` (owner-only: it holds the signing secret and the
/// database URL), for the child processes' `--config`.
pub fn write_config(config: &Config, path: &Path) -> Result<()> {
    let text = toml::to_string_pretty(config)
        .map_err(|e| Error::Invalid(format!("cannot write the demo's configuration: {e}")))?;
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    writeln!(
        file,
        "# Written by `octavia-dev demo` for the processes it starts; rewritten at every run.\n"
    )?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

/// The demo user as the demo found or made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoUser {
    pub id: Uuid,
    pub created: bool,
    /// Credits granted by this call to bring the balance up to what was asked.
    pub granted: i64,
    pub balance: i64,
}

/// The user `email` with `password`, created with `credits` if missing; an existing one is
/// topped up to `credits` when it has less. Refuses an existing user whose password is
/// another, rather than changing it: that user is not the demo's.
pub async fn ensure_user<C: Session>(
    client: &mut C,
    email: &str,
    password: &str,
    credits: i64,
) -> Result<DemoUser> {
    let existing = users::by_email(&*client, email).await?;
    let Some(user) = existing else {
        let id = users::create(&*client, email, password, "user", credits).await?;
        return Ok(DemoUser {
            id,
            created: true,
            granted: credits,
            balance: credits,
        });
    };
    let hash = user.password_hash.clone();
    let password = password.to_string();
    // argon2 is slow on purpose; off the async threads.
    let matches = tokio::task::spawn_blocking(move || users::verify_password(&hash, &password))
        .await
        .map_err(|e| Error::Invalid(format!("password check: {e}")))?;
    if !matches {
        return Err(Error::Conflict(format!(
            "the user {email} exists in this database with a password other than the demo's: \
             remove that user, or give the demo another database (unset DATABASE_URL, or \
             delete {DEMO_DIR} for a fresh embedded one)"
        )));
    }
    if user.credits >= credits {
        return Ok(DemoUser {
            id: user.id,
            created: false,
            granted: 0,
            balance: user.credits,
        });
    }
    let granted = credits - user.credits;
    let tx = client.transaction().await?;
    let balance = credits::credit(&tx, user.id, granted, credits::GRANT).await?;
    tx.commit().await?;
    Ok(DemoUser {
        id: user.id,
        created: false,
        granted,
        balance,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use octavia::config::Loader;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_secret_is_made_once_and_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("secret");
        let (first, new) = read_or_create_secret(&path).unwrap();
        assert!(new);
        assert!(first.len() >= 32, "{first}");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "only the owner reads it");
        let (again, new) = read_or_create_secret(&path).unwrap();
        assert!(!new);
        assert_eq!(again, first);
    }

    #[test]
    fn a_file_that_is_not_a_secret_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "short\n").unwrap();
        let e = read_or_create_secret(&path).unwrap_err().to_string();
        assert!(e.contains("delete it"), "{e}");
    }

    #[test]
    fn the_demo_config_uses_its_own_port_store_and_short_segments() {
        let paths = DemoPaths::new("var/demo");
        let secret = "s".repeat(43);
        let c = demo_config(&Config::default(), &paths, 41234, &secret);
        assert_eq!(c.api.listen, "127.0.0.1:41234");
        assert_eq!(c.api.public_url, "http://127.0.0.1:41234");
        assert_eq!(c.storage.local_dir, "var/demo/objects");
        assert_eq!(c.storage.signing_secret, secret);
        assert_eq!(c.pipeline.segment_seconds, SEGMENT_SECONDS);

        let mut configured = Config::default();
        configured.storage.signing_secret = "c".repeat(40);
        let c = demo_config(&configured, &paths, 1, &secret);
        assert_eq!(
            c.storage.signing_secret,
            "c".repeat(40),
            "a configured secret wins"
        );

        let mut s3 = Config::default();
        s3.storage.backend = "s3".into();
        let c = demo_config(&s3, &paths, 1, &secret);
        assert_eq!(c.storage.local_dir, s3.storage.local_dir, "S3 stays S3");
        assert!(c.storage.signing_secret.is_empty());
    }

    /// The child processes load exactly the configuration the demo wrote.
    #[test]
    fn the_written_config_loads_back_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let paths = DemoPaths::new(dir.path());
        let config = demo_config(&Config::default(), &paths, 40000, &"x".repeat(43));
        write_config(&config, &paths.config()).unwrap();
        let loaded = Loader::default()
            .file(Some(paths.config()))
            .env(vec![])
            .load()
            .unwrap();
        assert_eq!(loaded, config);
        let mode = std::fs::metadata(paths.config())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_second_demo_in_the_same_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let paths = DemoPaths::new(dir.path());
        let held = DemoLock::acquire(&paths).unwrap();
        let e = DemoLock::acquire(&paths).unwrap_err().to_string();
        assert!(e.contains("another demo is running"), "{e}");
        assert!(e.contains(&std::process::id().to_string()), "{e}");
        drop(held);
        DemoLock::acquire(&paths).unwrap();
    }
}
