//! A real S3 server for tests: the library's `s3s-fs` runner ([`S3Fs`]), which fails the
//! test (never skips it) with the install command when the program is missing, and shows
//! the server's output when a test fails.

use octavia_dev::chaos::s3fs::S3Fs;

/// A running s3s-fs with one empty bucket, killed when dropped.
pub struct S3Server(pub S3Fs);

impl S3Server {
    pub fn start() -> S3Server {
        S3Server(S3Fs::start().unwrap_or_else(|e| panic!("the storage tests need s3s-fs: {e}")))
    }
}

impl std::ops::Deref for S3Server {
    type Target = S3Fs;
    fn deref(&self) -> &S3Fs {
        &self.0
    }
}

impl std::ops::DerefMut for S3Server {
    fn deref_mut(&mut self) -> &mut S3Fs {
        &mut self.0
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("s3s-fs output:\n{}", self.0.output());
        }
    }
}
