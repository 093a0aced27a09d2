//! A real S3 server of Octavia's own, `s3s-fs` on a loopback port storing into a temporary
//! directory: the object store of the storage-outage scenario and of the tests. It can be
//! stopped and started again on the same port and directory, as an operator restarting
//! the storage service would, so clients configured with its endpoint find their objects
//! again.

use crate::process::{self, Child, Output};
use octavia::config::StorageConfig;
use octavia::error::{Error, Result};
use std::net::{Ipv4Addr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// How to install the server; named by every error about it missing.
pub const INSTALL: &str = "cargo install s3s-fs@0.14.1 --features binary --locked";

/// A running (or stopped) s3s-fs with one bucket; killed when dropped (its [`Child`] is).
pub struct S3Fs {
    program: PathBuf,
    child: Option<Child>,
    /// The server's data: one directory per bucket.
    root: TempDir,
    /// The server's output, kept outside `root` where it would look like an object.
    log: TempDir,
    pub port: u16,
    pub endpoint: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
}

impl S3Fs {
    /// Starts a server on a free port with an empty bucket.
    pub fn start() -> Result<S3Fs> {
        let program = binary()?;
        let root = tempfile::tempdir()?;
        let log = tempfile::tempdir()?;
        let bucket = "octavia-test".to_string();
        // s3s-fs's CreateBucket does exactly this: a bucket is a directory under its root.
        // Making it directly spares a signed request before the clients' own.
        std::fs::create_dir(root.path().join(&bucket))?;
        let mut server = S3Fs {
            program,
            child: None,
            root,
            log,
            port: 0,
            endpoint: String::new(),
            bucket,
            access_key: "octavia-test-access".into(),
            secret_key: format!("secret-{}", uuid::Uuid::new_v4().simple()),
        };
        // s3s-fs cannot report a port it picked itself, so ask the kernel for a free one
        // and pass it on; another process may take it in between, hence the retries.
        for _ in 0..5 {
            server.port = process::free_port()?;
            if server.spawn()? {
                server.endpoint = format!("http://127.0.0.1:{}", server.port);
                return Ok(server);
            }
        }
        Err(Error::Invalid(format!(
            "s3s-fs did not start in 5 attempts; its last output:\n{}",
            server.output()
        )))
    }

    /// Runs the program on `self.port`; false if it exited before listening (the port was
    /// taken).
    fn spawn(&mut self) -> Result<bool> {
        let log = self.log.path().join("s3s-fs.log");
        let mut child = Child::spawn(
            "s3s-fs",
            Command::new(&self.program)
                .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
                .args(["--access-key", &self.access_key])
                .args(["--secret-key", &self.secret_key])
                .arg(self.root.path())
                .env("RUST_LOG", "warn"),
            Output::Log(&log),
        )?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if !child.is_alive() {
                return Ok(false);
            }
            if TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_ok() {
                self.child = Some(child);
                return Ok(true);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill();
        Err(Error::Invalid(format!(
            "s3s-fs ran but did not listen on port {} within 20 s; its output:\n{}",
            self.port,
            self.output()
        )))
    }

    /// Stops the server (SIGKILL: an outage, not a maintenance). Its objects stay.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill();
        }
    }

    /// Starts the stopped server again on the same port and directory.
    pub fn resume(&mut self) -> Result<()> {
        if self.child.is_some() {
            return Ok(());
        }
        if self.spawn()? {
            return Ok(());
        }
        Err(Error::Invalid(format!(
            "s3s-fs could not listen again on port {} (taken meanwhile?); its output:\n{}",
            self.port,
            self.output()
        )))
    }

    /// Whether the server process is running.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(Child::is_alive)
    }

    /// Where the server keeps the object at `key` of the bucket (one file per object), to
    /// check what really reached it.
    pub fn object_file(&self, key: &str) -> PathBuf {
        self.root.path().join(&self.bucket).join(key)
    }

    /// What the server printed, for failure messages.
    pub fn output(&self) -> String {
        std::fs::read_to_string(self.log.path().join("s3s-fs.log")).unwrap_or_default()
    }

    /// A storage configuration pointing at this server's bucket.
    pub fn config(&self) -> StorageConfig {
        StorageConfig {
            backend: "s3".into(),
            s3_bucket: self.bucket.clone(),
            s3_endpoint: self.endpoint.clone(),
            s3_region: "us-east-1".into(),
            s3_access_key_id: self.access_key.clone(),
            s3_secret_access_key: self.secret_key.clone(),
            s3_path_style: true,
            s3_allow_http: true,
            ..StorageConfig::default()
        }
    }

    /// The same configuration as `--set` flags for an Octavia process.
    pub fn settings(&self) -> Vec<String> {
        let c = self.config();
        vec![
            "storage.backend=s3".into(),
            format!("storage.s3_bucket={}", c.s3_bucket),
            format!("storage.s3_endpoint={}", c.s3_endpoint),
            format!("storage.s3_region={}", c.s3_region),
            format!("storage.s3_access_key_id={}", c.s3_access_key_id),
            format!("storage.s3_secret_access_key={}", c.s3_secret_access_key),
            "storage.s3_path_style=true".into(),
            "storage.s3_allow_http=true".into(),
        ]
    }
}

/// The s3s-fs program: on PATH, or where `cargo install` puts it. Its absence is an error
/// naming the install command, never a reason to skip.
fn binary() -> Result<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|c| c.join("bin"));
    on_path
        .into_iter()
        .chain(cargo_bin)
        .map(|dir| dir.join("s3s-fs"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::Invalid(format!(
                "s3s-fs is not installed: run `{INSTALL}` (bin/deps does)"
            ))
        })
}
