//! A real S3 server for tests: `s3s-fs` on a free loopback port, storing into a temporary
//! directory, with credentials, killed when the value is dropped.

use octavia::config::StorageConfig;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

const INSTALL: &str = "cargo install s3s-fs@0.14.1 --features binary --locked";

/// A running s3s-fs with one empty bucket.
pub struct S3Server {
    child: Child,
    /// The server's data: one directory per bucket.
    root: TempDir,
    /// The server's output, kept outside `root` where it would look like an object.
    log: TempDir,
    pub endpoint: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
}

impl S3Server {
    pub fn start() -> S3Server {
        let program = binary();
        let root = tempfile::tempdir().unwrap();
        let log = tempfile::tempdir().unwrap();
        let log_path = log.path().join("s3s-fs.log");
        let access_key = "octavia-test-access".to_string();
        let secret_key = format!("secret-{}", uuid::Uuid::new_v4().simple());
        let bucket = "octavia-test".to_string();
        // s3s-fs cannot report a port it picked itself, so ask the kernel for a free one and
        // pass it on; another process may take it in between, hence the retries.
        for _ in 0..5 {
            let port = free_port();
            let log_file = std::fs::File::create(&log_path).unwrap();
            let mut child = Command::new(&program)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", &access_key, "--secret-key", &secret_key])
                .arg(root.path())
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().unwrap())
                .stderr(log_file)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
            if !wait_until_listening(&mut child, port, &log_path) {
                // It exited, most likely because the port was taken: try another.
                continue;
            }
            // s3s-fs's CreateBucket does exactly this: a bucket is a directory under its
            // root. Making it directly spares a signed request before the tests' own.
            std::fs::create_dir(root.path().join(&bucket)).unwrap();
            return S3Server {
                child,
                root,
                log,
                endpoint: format!("http://127.0.0.1:{port}"),
                bucket,
                access_key,
                secret_key,
            };
        }
        panic!(
            "s3s-fs did not start in 5 attempts; its last output:\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
    }

    /// Where the server keeps the object at `key` of the bucket (s3s-fs stores one file per
    /// object), to check what really reached it.
    pub fn object_file(&self, key: &str) -> PathBuf {
        self.root.path().join(&self.bucket).join(key)
    }

    /// What the server printed, for failure messages.
    fn output(&self) -> String {
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
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("s3s-fs output:\n{}", self.output());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The s3s-fs program: on PATH, or where `cargo install` puts it. Its absence fails the test
/// rather than skipping it, so a machine without it never reports storage as tested.
fn binary() -> PathBuf {
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
        .unwrap_or_else(|| {
            panic!("s3s-fs is not installed; the storage tests need it: run `{INSTALL}` (bin/deps does)")
        })
}

/// True once `child` accepts connections on `port`, false if it exited first.
fn wait_until_listening(child: &mut Child, port: u16, log: &Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!(
        "s3s-fs ran but did not listen on port {port} within 20 s; its output:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
