//! A PostgreSQL cluster of Octavia's own, started with the system's `initdb` and `pg_ctl`:
//! the throwaway server of the tests and benchmarks, and the embedded one of `bin/demo`
//! when `DATABASE_URL` is not set. Also the database-level helpers they share.

use octavia::error::{Error, Result};
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

const INSTALL_HINT: &str =
    "install PostgreSQL with `apt-get install -y postgresql`, or set DATABASE_URL to a server";

/// A running cluster.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub dir: PathBuf,
    pub port: u16,
    bindir: PathBuf,
}

/// How the cluster trades durability for speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync on, as production runs (benchmarks, the demo).
    Durable,
    /// fsync and synchronous_commit off: tests, where a crash of the machine loses nothing
    /// of value.
    Fast,
}

/// Finds the directory holding `initdb` and `pg_ctl`: next to `initdb` on the PATH, else the
/// newest `/usr/lib/postgresql/*/bin` (Debian does not put them on the PATH).
pub fn find_bindir() -> Result<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        candidates.push(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    }
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<(u32, PathBuf)> = entries
            .flatten()
            .filter_map(|e| {
                let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
                Some((v, e.path().join("bin")))
            })
            .collect();
        versions.sort();
        candidates.extend(versions.into_iter().rev().map(|(_, p)| p));
    }
    candidates
        .into_iter()
        .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
        .ok_or_else(|| Error::Invalid(format!("initdb and pg_ctl not found: {INSTALL_HINT}")))
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A command that runs as `postgres` when we are root (initdb and postgres refuse root).
fn pg_command(bindir: &Path, program: &str) -> Command {
    let path = bindir.join(program);
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(path);
        c
    } else {
        Command::new(path)
    }
}

fn run(mut cmd: Command, what: &str) -> Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Invalid(format!("{what}: cannot run: {e} ({INSTALL_HINT})")))?;
    if !out.status.success() {
        return Err(Error::Invalid(format!(
            "{what} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(())
}

/// Gives `dir` (a directory or a file) to the `postgres` user when running as root, as the
/// server refuses files it does not own (a data directory, a TLS key).
pub fn chown_to_postgres(dir: &Path) -> Result<()> {
    if !is_root() {
        return Ok(());
    }
    let out = Command::new("id").args(["-u", "postgres"]).output()?;
    let uid: u32 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| Error::Invalid(format!("no `postgres` user: {INSTALL_HINT}")))?;
    let out = Command::new("id").args(["-g", "postgres"]).output()?;
    let gid: u32 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    std::os::unix::fs::chown(dir, Some(uid), Some(gid))?;
    Ok(())
}

impl Cluster {
    /// Starts the cluster in `dir`, creating it first if `dir` holds none. A cluster already
    /// running there is reused.
    pub fn start(dir: &Path, durability: Durability) -> Result<Cluster> {
        let bindir = find_bindir()?;
        std::fs::create_dir_all(dir)?;
        let dir = dir.canonicalize()?;
        chown_to_postgres(&dir)?;
        let port_file = dir.join("octavia.port");
        if !dir.join("PG_VERSION").exists() {
            let mut initdb = pg_command(&bindir, "initdb");
            initdb
                .arg("-D")
                .arg(&dir)
                .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C"])
                .arg("--no-sync");
            run(initdb, "initdb")?;
            let port = crate::process::free_port()?;
            let fast = durability == Durability::Fast;
            let settings = format!(
                "\n# Octavia's settings\nport = {port}\nlisten_addresses = '127.0.0.1'\n\
                 unix_socket_directories = '{}'\nmax_connections = 400\nshared_buffers = '256MB'\n\
                 fsync = {}\nsynchronous_commit = {}\nfull_page_writes = {}\n",
                dir.display(),
                if fast { "off" } else { "on" },
                if fast { "off" } else { "on" },
                if fast { "off" } else { "on" },
            );
            std::fs::OpenOptions::new()
                .append(true)
                .open(dir.join("postgresql.conf"))?
                .write_all(settings.as_bytes())?;
            std::fs::write(&port_file, port.to_string())?;
        }
        let mut port: u16 = std::fs::read_to_string(&port_file)?
            .trim()
            .parse()
            .map_err(|_| Error::Invalid(format!("bad port in {}", port_file.display())))?;
        let mut cluster = Cluster { dir, port, bindir };
        if !cluster.is_running() {
            // A reused cluster's port may have been taken since: move it (the last
            // `port` line of postgresql.conf wins).
            if TcpListener::bind(("127.0.0.1", port)).is_err() {
                port = crate::process::free_port()?;
                std::fs::OpenOptions::new()
                    .append(true)
                    .open(cluster.dir.join("postgresql.conf"))?
                    .write_all(format!("port = {port}\n").as_bytes())?;
                std::fs::write(&port_file, port.to_string())?;
                cluster.port = port;
            }
            let mut start = pg_command(&cluster.bindir, "pg_ctl");
            start
                .arg("-D")
                .arg(&cluster.dir)
                .arg("-l")
                .arg(cluster.dir.join("server.log"))
                .args(["-w", "-t", "60", "start"]);
            run(start, "pg_ctl start")?;
        }
        Ok(cluster)
    }

    fn is_running(&self) -> bool {
        pg_command(&self.bindir, "pg_ctl")
            .arg("-D")
            .arg(&self.dir)
            .arg("status")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// The URL of database `db` on this cluster.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Stops the server at once (its data stays).
    pub fn stop(&self) -> Result<()> {
        let mut stop = pg_command(&self.bindir, "pg_ctl");
        stop.arg("-D")
            .arg(&self.dir)
            .args(["-m", "immediate", "-w", "stop"]);
        run(stop, "pg_ctl stop")
    }

    /// Stops the server cleanly (`pg_ctl stop -m fast`): it checkpoints, so a cluster whose
    /// data is kept (the demo's) starts next time without crash recovery.
    pub fn shutdown(&self) -> Result<()> {
        let mut stop = pg_command(&self.bindir, "pg_ctl");
        stop.arg("-D")
            .arg(&self.dir)
            .args(["-m", "fast", "-w", "-t", "60", "stop"]);
        run(stop, "pg_ctl stop")
    }

    /// Starts the server again after [`Cluster::stop`], on the same port (clients find it
    /// where it was; [`Cluster::start`] would move a port taken meanwhile).
    pub fn start_again(&self) -> Result<()> {
        let mut start = pg_command(&self.bindir, "pg_ctl");
        start
            .arg("-D")
            .arg(&self.dir)
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-w", "-t", "60", "start"]);
        run(start, "pg_ctl start")
    }

    /// Restarts the server the way an operator would (`pg_ctl restart -m fast`).
    pub fn restart(&self) -> Result<()> {
        let mut restart = pg_command(&self.bindir, "pg_ctl");
        restart
            .arg("-D")
            .arg(&self.dir)
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-m", "fast", "-w", "-t", "60", "restart"]);
        run(restart, "pg_ctl restart")
    }

    /// Stops the server and deletes its directory when this process exits, however it
    /// exits (even SIGKILL): a watchdog shell waits for EOF on a pipe only we hold.
    pub fn remove_at_exit(&self) -> Result<()> {
        static WATCHDOGS: Mutex<Vec<std::process::ChildStdin>> = Mutex::new(Vec::new());
        let pg_ctl = self.bindir.join("pg_ctl");
        let as_pg = if is_root() {
            "runuser -u postgres -- "
        } else {
            ""
        };
        let script = format!(
            "read _ ; {as_pg}'{}' -D '{}' -m immediate -w stop >/dev/null 2>&1 ; rm -rf '{}'",
            pg_ctl.display(),
            self.dir.display(),
            self.dir.display()
        );
        let child = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let stdin = child.stdin.expect("piped stdin");
        WATCHDOGS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(stdin);
        Ok(())
    }
}

/// Creates database `name` on the server of `admin_url`, copied from `template` if given.
pub async fn create_database(admin_url: &str, name: &str, template: Option<&str>) -> Result<()> {
    let client = octavia::db::connect(admin_url).await?;
    let sql = match template {
        Some(t) => format!(
            "CREATE DATABASE {} TEMPLATE {}",
            quote_ident(name),
            quote_ident(t)
        ),
        None => format!("CREATE DATABASE {}", quote_ident(name)),
    };
    client.batch_execute(&sql).await?;
    Ok(())
}

/// Drops database `name`, disconnecting whoever is still connected.
pub async fn drop_database(admin_url: &str, name: &str) -> Result<()> {
    let client = octavia::db::connect(admin_url).await?;
    client
        .batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(name)
        ))
        .await?;
    Ok(())
}

/// Quotes an identifier for the few statements (CREATE/DROP DATABASE) that cannot take
/// parameters.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `url` with its database name replaced by `db`.
pub fn with_database(url: &str, db: &str) -> Result<String> {
    let mut parsed = reqwest::Url::parse(url)
        .map_err(|e| Error::Invalid(format!("database.url `{url}`: {e}")))?;
    parsed.set_path(&format!("/{db}"));
    Ok(parsed.to_string())
}

/// A database made for one run of a benchmark or fault scenario: on the server of
/// `DATABASE_URL` when set, else on a throwaway durable cluster under `target/`. Migrated.
pub struct ScratchDatabase {
    pub url: String,
    admin_url: String,
    name: String,
    /// The throwaway cluster, when there is one (scenarios that restart PostgreSQL need it).
    pub cluster: Option<Cluster>,
}

/// The server scratch databases go on, started once per process.
fn scratch_server() -> Result<&'static (String, Option<Cluster>)> {
    static SERVER: std::sync::OnceLock<(String, Option<Cluster>)> = std::sync::OnceLock::new();
    // One caller at a time starts it: two would initdb the same directory (concurrent
    // tests of the benchmark each make their scratch databases).
    static STARTING: Mutex<()> = Mutex::new(());
    let _starting = STARTING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(server) = SERVER.get() {
        return Ok(server);
    }
    let server = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => (with_database(&url, "postgres")?, None),
        _ => {
            let dir =
                Path::new("target/octavia-pg").join(format!("scratch-{}", std::process::id()));
            let cluster = Cluster::start(&dir, Durability::Durable)?;
            cluster.remove_at_exit()?;
            (cluster.url("postgres"), Some(cluster))
        }
    };
    Ok(SERVER.get_or_init(|| server))
}

impl ScratchDatabase {
    /// A new, migrated database named after `prefix`; every scratch database of this
    /// process is on the same server.
    pub async fn create(prefix: &str) -> Result<ScratchDatabase> {
        ScratchDatabase::make(prefix, false).await
    }

    /// On a throwaway cluster of its own even when `DATABASE_URL` is set: for scenarios
    /// that stop or restart the server, which must never be someone else's.
    pub async fn create_on_own_cluster(prefix: &str) -> Result<ScratchDatabase> {
        ScratchDatabase::make(prefix, true).await
    }

    async fn make(prefix: &str, own_cluster: bool) -> Result<ScratchDatabase> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (admin_url, cluster) = if own_cluster {
            let dir =
                Path::new("target/octavia-pg").join(format!("{prefix}-{}-{n}", std::process::id()));
            let cluster = Cluster::start(&dir, Durability::Durable)?;
            cluster.remove_at_exit()?;
            (cluster.url("postgres"), Some(cluster))
        } else {
            scratch_server()?.clone()
        };
        let name = format!("octavia_{prefix}_{}_{n}", std::process::id());
        drop_database(&admin_url, &name).await?;
        create_database(&admin_url, &name, None).await?;
        let url = with_database(&admin_url, &name)?;
        octavia::migrate::run_url(&url).await?;
        Ok(ScratchDatabase {
            url,
            admin_url,
            name,
            cluster,
        })
    }

    pub async fn drop(self) -> Result<()> {
        drop_database(&self.admin_url, &self.name).await
    }
}
