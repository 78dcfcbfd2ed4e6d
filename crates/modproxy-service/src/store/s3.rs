//! A [`Store`] on S3-compatible object storage (AWS S3, Garage, MinIO,
//! Ceph, …) through the `object_store` crate, shared by any number of
//! replicas.
//!
//! The object layout is the GOPROXY tree (`PREFIX/rsc.io/quote/@v/v1.5.2.zip`).
//! An object becomes visible only complete: small ones are one `PUT`,
//! large ones a multipart upload read from the local spool file in 8 MiB
//! parts and completed last (an upload cut short by a crash is never
//! visible). Reads of large objects stream as the bytes arrive.
//!
//! Configuration comes from the usual AWS variables (`AWS_ENDPOINT_URL`,
//! `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`, `AWS_ALLOW_HTTP`, `AWS_VIRTUAL_HOSTED_STYLE_REQUEST`)
//! or, for the keys, the shared credentials file (`~/.aws/credentials`,
//! `AWS_PROFILE`). Requests are path-style unless virtual-hosted style is
//! asked for. Object storage keeps no access times: least recently used
//! eviction goes by when an object was written.

mod error;

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, PutPayload, RetryConfig, WriteMultipart,
};

use error::as_io;
pub use error::S3Error;

use super::evict::Entry;
use super::usage::Usage;
use super::whole::WholeReads;
use super::{DiskStore, ObjectBody, Store, StoreError, StoreFailure, StoreOp, StoredObject};

/// Multipart upload part size (S3's minimum is 5 MiB).
const PART: usize = 8 << 20;
/// Files up to this size are uploaded with one `PUT`.
const SINGLE_PUT: u64 = PART as u64;
/// A request (or one part) that has not finished after this long fails;
/// a listing gets [`LIST_LIMIT`].
const REQUEST_LIMIT: Duration = Duration::from_secs(60);
const LIST_LIMIT: Duration = Duration::from_secs(600);
/// A streamed read that brings no bytes for this long fails.
const STALL: Duration = Duration::from_secs(30);
/// How often a replica re-lists the bucket to correct its running count
/// (other replicas write and evict too).
const REMEASURE: Duration = Duration::from_secs(300);

/// An S3-compatible bucket, under a key prefix.
pub struct S3Store {
    s3: Arc<dyn ObjectStore>,
    /// `""` or `some/prefix` (no slashes around).
    prefix: String,
    /// `s3://bucket/prefix`, for messages.
    name: String,
    /// Local scratch space under `--data` (download spools).
    local: DiskStore,
    usage: Arc<Usage>,
    /// The budget of small objects read whole.
    whole: WholeReads,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Store").field("name", &self.name).finish()
    }
}

impl S3Store {
    /// Connects to `bucket` (nothing is sent yet) and starts counting what
    /// is under `prefix` in the background; spools go under `scratch`.
    pub fn open(bucket: &str, prefix: &str, scratch: &Path) -> Result<S3Store, StoreError> {
        let name = if prefix.is_empty() {
            format!("s3://{bucket}")
        } else {
            format!("s3://{bucket}/{prefix}")
        };
        let setup =
            |e: object_store::Error| StoreError::new(StoreOp::Prepare, &name, S3Error::from(e));
        // Bounded requests by default; then the AWS_* variables, as
        // `AmazonS3Builder::from_env` reads them (they may change these).
        // No overall timeout in the client: a large zip may stream for
        // long. Every call is bounded here instead (headers, parts,
        // listings; reads by a stall timeout), with few, quick retries so a
        // bucket outage fails requests in seconds, not minutes.
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout_disabled(),
            )
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(2),
                    base: 2.0,
                },
                max_retries: 2,
                retry_timeout: Duration::from_secs(10),
            });
        for (key, value) in std::env::vars() {
            if key.starts_with("AWS_") {
                if let Ok(config) = key.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
                    builder = builder.with_config(config, value);
                }
            }
        }
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
            if let Some((key, secret, token)) = shared_credentials() {
                builder = builder
                    .with_access_key_id(key)
                    .with_secret_access_key(secret);
                if let Some(token) = token {
                    builder = builder.with_token(token);
                }
            }
        }
        let s3 = builder.build().map_err(setup)?;
        let store = S3Store {
            s3: Arc::new(s3),
            prefix: prefix.to_string(),
            name,
            local: DiskStore::open(scratch)?,
            usage: Arc::default(),
            whole: WholeReads::default(),
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (s3, prefix, usage) = (
                Arc::clone(&store.s3),
                store.prefix.clone(),
                Arc::clone(&store.usage),
            );
            runtime.spawn(async move {
                match list(s3.as_ref(), &prefix).await {
                    Ok(entries) => {
                        let bytes = entries.iter().map(|e| e.size).sum();
                        usage.counted(bytes, entries.len() as u64);
                    }
                    Err(e) => tracing::warn!(error = %crate::error::chain(&e), "cannot list the bucket to count it"),
                }
            });
        }
        Ok(store)
    }

    /// This store, reading small objects whole within `whole`.
    pub fn reading_whole(self, whole: WholeReads) -> S3Store {
        S3Store { whole, ..self }
    }

    fn path(&self, key: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(key)
        } else {
            ObjectPath::from(format!("{}/{key}", self.prefix))
        }
    }

    /// Uploads the file at `spool` to `key`: visible only once complete.
    async fn upload(&self, key: &str, spool: &Path) -> Result<u64, super::StoreCause> {
        use tokio::io::AsyncReadExt;
        let path = self.path(key);
        let mut file = tokio::fs::File::open(spool).await?;
        let size = file.metadata().await?.len();
        if size <= SINGLE_PUT {
            let mut data = Vec::with_capacity(size as usize);
            file.read_to_end(&mut data).await?;
            bounded(REQUEST_LIMIT, self.s3.put(&path, PutPayload::from(data))).await?;
            return Ok(size);
        }
        let upload = bounded(REQUEST_LIMIT, self.s3.put_multipart(&path)).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match file.read(&mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(e.into());
                }
            };
            if n == 0 {
                break;
            }
            // At most two parts in flight: memory stays bounded.
            if let Err(e) = bounded(REQUEST_LIMIT, writer.wait_for_capacity(2)).await {
                let _ = writer.abort().await;
                return Err(e.into());
            }
            writer.write(&buf[..n]);
        }
        // Every part in, or the upload is abandoned (not left open).
        if let Err(e) = bounded(REQUEST_LIMIT, writer.wait_for_capacity(0)).await {
            let _ = writer.abort().await;
            return Err(e.into());
        }
        bounded(REQUEST_LIMIT, writer.finish()).await?;
        Ok(size)
    }
}

/// `work`, failing after `limit`.
async fn bounded<T>(
    limit: Duration,
    work: impl std::future::Future<Output = Result<T, object_store::Error>>,
) -> Result<T, S3Error> {
    match tokio::time::timeout(limit, work).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(S3Error::timed_out(
            "no answer from the bucket within",
            limit,
        )),
    }
}

/// The body of a streamed read, failing when no bytes come for [`STALL`].
fn stall_guarded(
    inner: futures_util::stream::BoxStream<'static, object_store::Result<Bytes>>,
) -> impl futures_util::Stream<Item = io::Result<Bytes>> + Send {
    futures_util::stream::unfold(Some(inner), |state| async move {
        let mut inner = state?;
        match tokio::time::timeout(STALL, inner.next()).await {
            Ok(Some(item)) => Some((item.map_err(|e| as_io(S3Error::from(e))), Some(inner))),
            Ok(None) => None,
            Err(_) => Some((
                Err(as_io(S3Error::timed_out(
                    "no bytes from the bucket for",
                    STALL,
                ))),
                None,
            )),
        }
    })
}

/// Every object under `prefix`, scratch objects left out.
async fn list(s3: &dyn ObjectStore, prefix: &str) -> Result<Vec<Entry>, S3Error> {
    let base = (!prefix.is_empty()).then(|| ObjectPath::from(prefix));
    let mut stream = s3.list(base.as_ref());
    let mut entries = Vec::new();
    let deadline = tokio::time::Instant::now() + LIST_LIMIT;
    while let Some(meta) = tokio::time::timeout_at(deadline, stream.next())
        .await
        .map_err(|_| S3Error::timed_out("the bucket was not listed within", LIST_LIMIT))?
    {
        let meta = meta?;
        let full = decode(meta.location.as_ref());
        let key = match prefix {
            "" => full,
            p => full
                .strip_prefix(p)
                .and_then(|k| k.strip_prefix('/'))
                .unwrap_or(&full)
                .to_string(),
        };
        if key.starts_with('.') {
            continue; // `.tmp/`: readiness probes
        }
        entries.push(Entry {
            key,
            size: meta.size,
            last_used: SystemTime::from(meta.last_modified),
        });
    }
    Ok(entries)
}

/// An object path as listed (`~` is stored as `%7E`) → our key.
fn decode(location: &str) -> String {
    crate::request::percent_decode(location).unwrap_or_else(|| location.to_string())
}

/// `(key id, secret, session token)` of `AWS_PROFILE` (or `default`) in
/// the shared credentials file.
fn shared_credentials() -> Option<(String, String, Option<String>)> {
    let file = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".aws/credentials")))?;
    let text = std::fs::read_to_string(file).ok()?;
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into());
    let (mut key, mut secret, mut token) = (None, None, None);
    let mut inside = false;
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == profile;
            continue;
        }
        let Some((k, v)) = line.split_once('=').filter(|_| inside) else {
            continue;
        };
        let v = v.trim().to_string();
        match k.trim() {
            "aws_access_key_id" => key = Some(v),
            "aws_secret_access_key" => secret = Some(v),
            "aws_session_token" => token = Some(v),
            _ => {}
        }
    }
    Some((key?, secret?, token))
}

/// Mutable objects are replaced in place: they do not add to the count.
fn is_mutable(key: &str) -> bool {
    key.ends_with("/@v/list") || key.ends_with("/@latest") || key.starts_with("sumdb/")
}

#[async_trait]
impl Store for S3Store {
    async fn get(&self, key: &str) -> Result<Option<StoredObject>, StoreError> {
        let result = match bounded(REQUEST_LIMIT, self.s3.get(&self.path(key))).await {
            Ok(r) => r,
            Err(e) if e.failure() == StoreFailure::Missing => return Ok(None),
            Err(e) => return Err(StoreError::new(StoreOp::Read, key, e)),
        };
        let (size, modified) = (
            result.meta.size,
            SystemTime::from(result.meta.last_modified),
        );
        let body = if let Some(share) = self.whole.share(size) {
            let bytes = bounded(REQUEST_LIMIT, result.bytes()).await;
            let bytes = bytes.map_err(|e| StoreError::new(StoreOp::Read, key, e))?;
            ObjectBody::Bytes(share.hold(bytes))
        } else {
            let stream = stall_guarded(result.into_stream());
            ObjectBody::Reader(Box::pin(tokio_util::io::StreamReader::new(stream)))
        };
        Ok(Some(StoredObject {
            body,
            size,
            modified,
        }))
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<(), StoreError> {
        let size = data.len() as u64;
        bounded(
            REQUEST_LIMIT,
            self.s3.put(&self.path(key), PutPayload::from(data)),
        )
        .await
        .map_err(|e| StoreError::new(StoreOp::Write, key, e))?;
        if !is_mutable(key) {
            self.usage.published(size, None);
        }
        Ok(())
    }

    async fn put_file(&self, key: &str, spool: &Path) -> Result<(), StoreError> {
        let result = self.upload(key, spool).await;
        let _ = tokio::fs::remove_file(spool).await;
        let size = result.map_err(|e| StoreError::new(StoreOp::Write, key, e))?;
        if !is_mutable(key) {
            self.usage.published(size, None);
        }
        Ok(())
    }

    fn spool_dir(&self) -> &Path {
        self.local.spool_dir()
    }

    /// Object storage keeps no access times; eviction goes by write time.
    fn touch(&self, _key: &str) {}

    fn usage(&self) -> Option<(u64, u64)> {
        self.usage.get()
    }

    async fn check_writable(&self) -> Result<(), StoreError> {
        let key = format!(".tmp/readyz-{}", std::process::id());
        let path = self.path(&key);
        bounded(
            REQUEST_LIMIT,
            self.s3.put(&path, PutPayload::from_static(b"ok")),
        )
        .await
        .map_err(|e| StoreError::new(StoreOp::Write, &key, e))?;
        let _ = bounded(REQUEST_LIMIT, self.s3.delete(&path)).await;
        Ok(())
    }

    async fn entries(&self) -> Result<Vec<Entry>, StoreError> {
        list(self.s3.as_ref(), &self.prefix)
            .await
            .map_err(|e| StoreError::new(StoreOp::List, &self.name, e))
    }

    async fn remove(&self, key: &str) -> Result<(), StoreError> {
        match bounded(REQUEST_LIMIT, self.s3.delete(&self.path(key))).await {
            Ok(()) => Ok(()),
            Err(e) if e.failure() == StoreFailure::Missing => Ok(()),
            Err(e) => Err(StoreError::new(StoreOp::Remove, key, e)),
        }
    }

    fn measured(&self, bytes: u64, objects: u64) {
        self.usage.measured(bytes, objects);
    }

    async fn exists(&self, key: &str) -> bool {
        bounded(REQUEST_LIMIT, self.s3.head(&self.path(key)))
            .await
            .is_ok()
    }

    fn describe(&self) -> String {
        self.name.clone()
    }

    fn whole_reads(&self) -> Option<&WholeReads> {
        Some(&self.whole)
    }

    fn remeasure_every(&self) -> Option<Duration> {
        Some(REMEASURE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_bucket_out_of_reach_is_an_error_not_a_miss() {
        let scratch = std::env::temp_dir().join(format!("modproxy-s3-{}", std::process::id()));
        let s3 = AmazonS3Builder::new()
            .with_bucket_name("b")
            .with_region("us-east-1")
            // Nothing listens on port 1 of the loopback address.
            .with_endpoint("http://127.0.0.1:1")
            .with_allow_http(true)
            .with_access_key_id("id")
            .with_secret_access_key("secret")
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: 0,
                retry_timeout: Duration::from_secs(1),
            })
            .build()
            .unwrap();
        let store = S3Store {
            s3: Arc::new(s3),
            prefix: String::new(),
            name: "s3://b".into(),
            local: DiskStore::open(&scratch).unwrap(),
            usage: Arc::default(),
            whole: WholeReads::default(),
        };
        let err = match store.get("m/@v/list").await {
            Err(e) => e,
            Ok(found) => panic!("not an error: found {}", found.is_some()),
        };
        assert_eq!(err.failure(), StoreFailure::Unavailable, "{err:?}");
        assert_eq!(err.op, StoreOp::Read);
        let _ = std::fs::remove_dir_all(&scratch);
    }

    #[test]
    fn listed_paths_decode_to_keys() {
        assert_eq!(decode("a.example/m%7Ex/@v/list"), "a.example/m~x/@v/list");
        assert!(is_mutable("sumdb/sum.golang.org/latest"));
        assert!(!is_mutable("rsc.io/quote/@v/v1.5.2.zip"));
    }
}
