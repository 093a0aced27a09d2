//! The object store: where uploaded media, segment inputs and results, and job outputs live.
//!
//! [`Storage`] owns three things every other module relies on:
//!
//! - access to the bytes, through `object_store` over a local directory (the default) or
//!   any S3-compatible server, with large bodies streamed in multipart uploads;
//! - the key layout ([`media_key`], [`plan_key`], [`segment_key`], [`job_output_key`]), so nobody
//!   formats keys by hand;
//! - the URLs handed to clients ([`Storage::download_url`], [`Storage::upload_url`]): S3
//!   presigned URLs, or for the local store, which cannot presign, links to the API's own
//!   route under [`LOCAL_ROUTE`] signed with HMAC-SHA256 over method, key and expiry, which
//!   [`Storage::verify_local_signature`] checks when the API serves them.

use crate::config::StorageConfig;
use crate::error::{Error, Result};
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use futures_util::stream::{self, BoxStream, Stream, StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::local::LocalFileSystem;
use object_store::path::Path as Key;
use object_store::signer::{Signer, Url};
use object_store::{
    ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig, WriteMultipart,
};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod keys;
mod links;
mod presign;
mod seal;

pub use keys::{
    LOCAL_ROUTE, StoredKey, intermediate_prefixes, job_output_key, job_prefix, media_key, plan_key,
    segment_key,
};
use keys::{parse_key, parse_prefix};

use links::LocalLinks;
pub use links::SignatureError;
pub use seal::Seal;

/// The HTTP method of a signed URL (re-exported so callers need not depend on `http`).
pub use object_store::signer::Method;

/// Size of each part of a multipart upload, and the size under which a body is sent in a
/// single PUT instead. S3 wants parts of at least 5 MiB and allows 10,000 of them, so this
/// bounds an object to about 100 GB.
pub const PART_SIZE: usize = 10 * 1024 * 1024;

/// Parts of one upload sent at once. Each holds a part in memory, so an upload costs about
/// `(PARTS_IN_FLIGHT + 1) * PART_SIZE` however large the file is.
const PARTS_IN_FLIGHT: usize = 2;

/// Bytes read from a local file at a time when streaming it out.
const READ_CHUNK: usize = 256 * 1024;

/// What the store knows about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Size in bytes.
    pub size: u64,
    pub last_modified: DateTime<Utc>,
    /// The store's entity tag, when it gives one (S3 does; a multipart upload's ends with
    /// `-{number of parts}`).
    pub e_tag: Option<String>,
}

impl From<ObjectMeta> for ObjectInfo {
    fn from(meta: ObjectMeta) -> Self {
        ObjectInfo {
            size: meta.size,
            last_modified: meta.last_modified,
            e_tag: meta.e_tag,
        }
    }
}

/// A URL a client can use without credentials, until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedUrl {
    pub url: String,
    pub method: Method,
    pub expires_at: DateTime<Utc>,
    /// Headers the request must carry as they are (the signature covers them).
    pub headers: Vec<(String, String)>,
}

/// The object store. Cloning is cheap and clones share the connection pool.
#[derive(Clone, Debug)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    backend: Backend,
    url_expiry: Duration,
}

#[derive(Clone, Debug)]
enum Backend {
    Local(LocalLinks),
    S3 { s3: Arc<AmazonS3>, region: String },
}

impl Storage {
    /// Opens the store `config.backend` names. The local directory is created if missing.
    /// An API process also calls [`Storage::with_public_url`], which local links need.
    pub fn from_config(config: &StorageConfig) -> Result<Storage> {
        let url_expiry = Duration::from_secs(config.url_expiry_seconds);
        match config.backend.as_str() {
            "local" => {
                std::fs::create_dir_all(&config.local_dir)?;
                let store = LocalFileSystem::new_with_prefix(&config.local_dir)?
                    // Deleting a job's objects leaves no empty directories behind.
                    .with_automatic_cleanup(true)
                    // An object must survive a crash once its row in Postgres says it
                    // exists, as it would on S3.
                    .with_fsync(true);
                Ok(Storage {
                    store: Arc::new(store),
                    backend: Backend::Local(LocalLinks {
                        secret: config.signing_secret.as_bytes().into(),
                        base: None,
                    }),
                    url_expiry,
                })
            }
            "s3" => {
                // Not from_env: every setting comes from Octavia's configuration, and stray
                // AWS_* variables must not silently change where objects go.
                // object_store's own default retries a request for up to three minutes,
                // invisibly; bounded here so an outage surfaces as a failed attempt the
                // queue retries (see storage.s3_max_retries in config.toml).
                let retry = RetryConfig {
                    max_retries: config.s3_max_retries as usize,
                    retry_timeout: Duration::from_secs(config.s3_retry_timeout_seconds),
                    ..RetryConfig::default()
                };
                let mut builder = AmazonS3Builder::new()
                    .with_bucket_name(&config.s3_bucket)
                    .with_region(&config.s3_region)
                    .with_allow_http(config.s3_allow_http)
                    .with_virtual_hosted_style_request(!config.s3_path_style)
                    .with_retry(retry);
                if !config.s3_endpoint.is_empty() {
                    builder = builder.with_endpoint(&config.s3_endpoint);
                }
                // Without keys, object_store falls back to the instance's role (IMDS, ECS),
                // which is how a deployment on AWS should authenticate.
                if !config.s3_access_key_id.is_empty() {
                    builder = builder
                        .with_access_key_id(&config.s3_access_key_id)
                        .with_secret_access_key(&config.s3_secret_access_key);
                }
                let s3 = Arc::new(builder.build()?);
                Ok(Storage {
                    store: s3.clone(),
                    backend: Backend::S3 {
                        s3,
                        region: config.s3_region.clone(),
                    },
                    url_expiry,
                })
            }
            other => Err(Error::Invalid(format!(
                "`{other}` is not a storage backend (local or s3)"
            ))),
        }
    }

    /// Sets the API's public URL (`api.public_url`), the base of the local store's links.
    pub fn with_public_url(mut self, public_url: &str) -> Result<Storage> {
        if let Backend::Local(links) = &mut self.backend {
            let url = Url::parse(public_url).map_err(|e| {
                Error::Invalid(format!("api.public_url `{public_url}` is not a URL: {e}"))
            })?;
            if url.cannot_be_a_base() {
                return Err(Error::Invalid(format!(
                    "api.public_url `{public_url}` cannot have a path appended"
                )));
            }
            links.base = Some(url);
        }
        Ok(self)
    }

    /// Whether this is the local store, whose links the API must serve itself.
    pub fn is_local(&self) -> bool {
        matches!(self.backend, Backend::Local(_))
    }

    /// Writes `bytes` to `key`, replacing any object there.
    #[tracing::instrument(name = "storage.put", skip_all, fields(otel.name = "storage.put", key = %key))]
    pub async fn put_bytes(&self, key: &str, bytes: Bytes) -> Result<()> {
        let location = parse_key(key)?;
        self.store.put(&location, bytes.into()).await?;
        Ok(())
    }

    /// Uploads the file at `file` to `key` without reading it whole into memory; returns
    /// its size.
    pub async fn put_file(&self, key: &str, file: &Path) -> Result<u64> {
        let file = tokio::fs::File::open(file).await?;
        let chunks = stream::try_unfold(file, |mut file| async move {
            let mut buf = BytesMut::with_capacity(READ_CHUNK);
            if file.read_buf(&mut buf).await? == 0 {
                return Ok::<_, std::io::Error>(None);
            }
            Ok(Some((buf.freeze(), file)))
        });
        self.put_stream(key, chunks).await
    }

    /// Writes a stream of chunks (such as an HTTP request body) to `key`, holding at most
    /// a few parts in memory; returns the size written. The object appears whole or not at
    /// all: a failed stream aborts the upload.
    #[tracing::instrument(name = "storage.put", skip_all, fields(otel.name = "storage.put", key = %key))]
    pub async fn put_stream<S, E>(&self, key: &str, body: S) -> Result<u64>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let location = parse_key(key)?;
        let mut body = std::pin::pin!(body);
        let body_error = |e: E| Error::Io(std::io::Error::other(e));

        // Most objects (a segment's audio, subtitles) are smaller than a part, and one PUT
        // is one request where a multipart upload is at least three.
        let mut head = Vec::new();
        let mut size = 0;
        while size < PART_SIZE {
            match body.next().await {
                Some(chunk) => {
                    let chunk = chunk.map_err(body_error)?;
                    size += chunk.len();
                    head.push(chunk);
                }
                None => {
                    self.store
                        .put(&location, PutPayload::from_iter(head))
                        .await?;
                    return Ok(size as u64);
                }
            }
        }

        let upload = self.store.put_multipart(&location).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        for chunk in head {
            writer.put(chunk);
        }
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    // Abort so the parts already sent do not linger (S3 bills for them).
                    let _ = writer.abort().await;
                    return Err(body_error(e));
                }
            };
            if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
                let _ = writer.abort().await;
                return Err(e.into());
            }
            size += chunk.len();
            writer.put(chunk);
        }
        // finish aborts the upload itself when it fails.
        writer.finish().await?;
        Ok(size as u64)
    }

    /// Reads the whole object at `key`. [`Error::NotFound`] when there is none.
    pub async fn get_bytes(&self, key: &str) -> Result<Bytes> {
        Ok(self.get_bytes_info(key).await?.1)
    }

    /// As [`Storage::get_bytes`], with what the store said of the object it sent.
    #[tracing::instrument(name = "storage.get", skip_all, fields(otel.name = "storage.get", key = %key))]
    pub async fn get_bytes_info(&self, key: &str) -> Result<(ObjectInfo, Bytes)> {
        let location = parse_key(key)?;
        let got = self
            .store
            .get(&location)
            .await
            .map_err(|e| store_error(key, e))?;
        let info = ObjectInfo::from(got.meta.clone());
        let bytes = got.bytes().await.map_err(|e| store_error(key, e))?;
        Ok((info, bytes))
    }

    /// The object at `key` as a stream of chunks, with its size and date (for an HTTP
    /// response's headers). [`Error::NotFound`] when there is none.
    #[tracing::instrument(name = "storage.get", skip_all, fields(otel.name = "storage.get", key = %key))]
    pub async fn get_stream(
        &self,
        key: &str,
    ) -> Result<(ObjectInfo, BoxStream<'static, Result<Bytes>>)> {
        let location = parse_key(key)?;
        let got = self
            .store
            .get(&location)
            .await
            .map_err(|e| store_error(key, e))?;
        let info = ObjectInfo::from(got.meta.clone());
        let key = key.to_string();
        let chunks = got.into_stream().map_err(move |e| store_error(&key, e));
        Ok((info, chunks.boxed()))
    }

    /// Streams the object at `key` into the file `file` (created or truncated); returns its
    /// size. On failure the partial file is removed.
    pub async fn get_to_file(&self, key: &str, file: &Path) -> Result<u64> {
        Ok(self.get_to_file_info(key, file).await?.size)
    }

    /// As [`Storage::get_to_file`], returning what the store said of the object it sent
    /// (its entity tag is that of the bytes written, even if the object changes after).
    pub async fn get_to_file_info(&self, key: &str, file: &Path) -> Result<ObjectInfo> {
        let (meta, mut chunks) = self.get_stream(key).await?;
        let mut out = tokio::fs::File::create(file).await?;
        let copied = async {
            let mut size = 0;
            while let Some(chunk) = chunks.try_next().await? {
                out.write_all(&chunk).await?;
                size += chunk.len() as u64;
            }
            out.flush().await?;
            Ok(size)
        }
        .await;
        if copied.is_err() {
            drop(out);
            let _ = tokio::fs::remove_file(file).await;
        }
        copied.map(|size| ObjectInfo { size, ..meta })
    }

    /// Size and date of the object at `key`, or `None` when there is none.
    #[tracing::instrument(name = "storage.head", skip_all, fields(otel.name = "storage.head", key = %key))]
    pub async fn head(&self, key: &str) -> Result<Option<ObjectInfo>> {
        let location = parse_key(key)?;
        match self.store.head(&location).await {
            Ok(meta) => Ok(Some(meta.into())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Keys of every object under `prefix`, sorted. Prefixes match whole path segments:
    /// `media/u1` lists `media/u1/…` but not `media/u10/…`. An empty prefix lists all.
    #[tracing::instrument(name = "storage.list", skip_all, fields(otel.name = "storage.list", prefix = %prefix))]
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let prefix = parse_prefix(prefix)?;
        let mut keys: Vec<String> = self
            .store
            .list((!prefix.is_root()).then_some(&prefix))
            .map_ok(|meta| meta.location.to_string())
            .try_collect()
            .await?;
        keys.sort();
        Ok(keys)
    }

    /// Every object under `prefix` (as in [`Storage::list`]) with its size and date, in
    /// no particular order.
    #[tracing::instrument(name = "storage.list", skip_all, fields(otel.name = "storage.list", prefix = %prefix))]
    pub async fn list_info(&self, prefix: &str) -> Result<Vec<(String, ObjectInfo)>> {
        let prefix = parse_prefix(prefix)?;
        Ok(self
            .store
            .list((!prefix.is_root()).then_some(&prefix))
            .map_ok(|meta| (meta.location.to_string(), ObjectInfo::from(meta)))
            .try_collect()
            .await?)
    }

    /// Deletes the objects at `keys`, in batches where the store has them (S3's
    /// DeleteObjects takes 1,000 keys a request). Missing objects are not an error.
    #[tracing::instrument(name = "storage.delete", skip_all, fields(otel.name = "storage.delete", keys = keys.len()))]
    pub async fn delete_many(&self, keys: &[String]) -> Result<()> {
        let locations: Vec<Key> = keys.iter().map(|k| parse_key(k)).collect::<Result<_>>()?;
        let mut deleted = self
            .store
            .delete_stream(stream::iter(locations.into_iter().map(Ok)).boxed());
        while let Some(result) = deleted.next().await {
            match result {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Deletes the object at `key`. Deleting a missing object succeeds, so a retried
    /// cleanup does not fail.
    #[tracing::instrument(name = "storage.delete", skip_all, fields(otel.name = "storage.delete", key = %key))]
    pub async fn delete(&self, key: &str) -> Result<()> {
        let location = parse_key(key)?;
        match self.store.delete(&location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes every object under `prefix` (matched by whole segments, as in
    /// [`Storage::list`]); returns how many there were. An empty prefix is refused.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<usize> {
        let prefix = parse_prefix(prefix)?;
        if prefix.is_root() {
            return Err(Error::Invalid(
                "refusing to delete every object: the prefix is empty".into(),
            ));
        }
        // List first, then delete: removing files while walking the same directories (local)
        // or paginating the same listing (S3) could skip objects.
        let locations: Vec<Key> = self
            .store
            .list(Some(&prefix))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await?;
        let count = locations.len();
        let keys: Vec<String> = locations.iter().map(|l| l.to_string()).collect();
        self.delete_many(&keys).await?;
        Ok(count)
    }

    /// Deletes the intermediate objects of job `job_id` (see [`intermediate_prefixes`]),
    /// never its outputs; returns how many there were.
    pub async fn delete_intermediates(&self, job_id: uuid::Uuid) -> Result<usize> {
        let mut count = 0;
        for prefix in intermediate_prefixes(job_id) {
            count += self.delete_prefix(&prefix).await?;
        }
        Ok(count)
    }

    /// A URL that downloads `key` without credentials, valid `storage.url_expiry_seconds`.
    pub async fn download_url(&self, key: &str) -> Result<SignedUrl> {
        self.signed_url(Method::GET, key).await
    }

    /// A URL that uploads `key` with a PUT of the body, valid `storage.url_expiry_seconds`.
    pub async fn upload_url(&self, key: &str) -> Result<SignedUrl> {
        self.signed_url(Method::PUT, key).await
    }

    /// A URL allowing `method` (GET or PUT) on `key`: presigned by S3's rules, or for the
    /// local store a link to the API's [`LOCAL_ROUTE`], which needs
    /// `storage.signing_secret` and [`Storage::with_public_url`].
    pub async fn signed_url(&self, method: Method, key: &str) -> Result<SignedUrl> {
        if method != Method::GET && method != Method::PUT {
            return Err(Error::Invalid(format!(
                "only GET and PUT URLs are signed, not {method}"
            )));
        }
        let location = parse_key(key)?;
        let now = unix_now();
        let expires = now + self.url_expiry.as_secs();
        let expires_at = DateTime::from_timestamp(expires as i64, 0)
            .ok_or_else(|| Error::Invalid("storage.url_expiry_seconds is too large".into()))?;
        let url = match &self.backend {
            Backend::S3 { s3, .. } => s3
                .signed_url(method.clone(), &location, self.url_expiry)
                .await?
                .to_string(),
            Backend::Local(links) => links.sign(&method, key, expires)?,
        };
        Ok(SignedUrl {
            url,
            method,
            expires_at,
            headers: Vec::new(),
        })
    }

    /// A URL that uploads exactly `size` bytes to `key` with a PUT, and when `sha256` is
    /// given exactly the bytes of that digest, valid `storage.url_expiry_seconds`. On S3
    /// both are in the signature (`Content-Length`, `x-amz-checksum-sha256`), so S3 refuses
    /// other bytes; the local store's route checks them against the upload's row. The
    /// returned `headers` are what the client must send.
    pub async fn upload_url_exact(
        &self,
        key: &str,
        size: u64,
        sha256: Option<&[u8; 32]>,
    ) -> Result<SignedUrl> {
        use base64::Engine;
        let checksum = sha256.map(|d| base64::engine::general_purpose::STANDARD.encode(d));
        let mut signed = match &self.backend {
            Backend::Local(_) => self.signed_url(Method::PUT, key).await?,
            Backend::S3 { s3, region } => {
                let location = parse_key(key)?;
                // object_store builds the object's URL (endpoint, bucket, path encoding);
                // its query is replaced by the pinned signature.
                let mut url = s3
                    .signed_url(Method::PUT, &location, self.url_expiry)
                    .await?;
                url.set_query(None);
                let credential = s3.credentials().get_credential().await?;
                let now = Utc::now();
                presign::sign_put(
                    &mut url,
                    &presign::Credential {
                        key_id: &credential.key_id,
                        secret_key: &credential.secret_key,
                        token: credential.token.as_deref(),
                    },
                    region,
                    now,
                    self.url_expiry.as_secs(),
                    &presign::Pinned {
                        content_length: size,
                        checksum_sha256: checksum.as_deref(),
                    },
                );
                SignedUrl {
                    url: url.to_string(),
                    method: Method::PUT,
                    expires_at: now + self.url_expiry,
                    headers: Vec::new(),
                }
            }
        };
        signed
            .headers
            .push(("Content-Length".into(), size.to_string()));
        if let Some(sum) = checksum {
            signed.headers.push(("x-amz-checksum-sha256".into(), sum));
        }
        Ok(signed)
    }

    /// Checks a local-store link as the API route receives it: the request's method, the
    /// key from its path, and its `expires` (unix seconds) and `sig` query parameters,
    /// against `now` (unix seconds). The signature is compared in constant time.
    pub fn verify_local_signature(
        &self,
        method: &Method,
        key: &str,
        expires: u64,
        sig: &str,
        now: u64,
    ) -> Result<(), SignatureError> {
        match &self.backend {
            Backend::Local(links) => links.verify(method, key, expires, sig, now),
            Backend::S3 { .. } => Err(SignatureError::NotLocal),
        }
    }
}

/// Maps the store's "not found" to the crate's, naming the key.
fn store_error(key: &str, e: object_store::Error) -> Error {
    match e {
        object_store::Error::NotFound { .. } => Error::NotFound {
            what: "object",
            id: key.to_string(),
        },
        e => Error::Storage(e),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_canonical_keys_are_refused() {
        for key in ["", "/a", "a/", "a//b", "a/../b", "./a", "a/\nb"] {
            assert!(parse_key(key).is_err(), "{key:?} was accepted");
        }
    }
}
