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

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, ObjectStore, PutPayload, WriteMultipart};

use super::evict::Entry;
use super::usage::Usage;
use super::{DiskStore, ObjectBody, Store, StoreError, StoredObject};

/// Objects up to this size are read whole when opened.
const READ_WHOLE: u64 = 1 << 20;
/// Multipart upload part size (S3's minimum is 5 MiB).
const PART: usize = 8 << 20;
/// Files up to this size are uploaded with one `PUT`.
const SINGLE_PUT: u64 = PART as u64;

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
        let setup = |e: String| StoreError::Setup {
            path: name.clone().into(),
            source: io::Error::other(e),
        };
        // Bounded requests by default; then the AWS_* variables, as
        // `AmazonS3Builder::from_env` reads them (they may change these).
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout(Duration::from_secs(300)),
            );
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
        let s3 = builder.build().map_err(|e| setup(e.to_string()))?;
        let store = S3Store {
            s3: Arc::new(s3),
            prefix: prefix.to_string(),
            name,
            local: DiskStore::open(scratch)?,
            usage: Arc::default(),
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
                    Err(e) => tracing::warn!(error = %e, "cannot list the bucket to count it"),
                }
            });
        }
        Ok(store)
    }

    fn path(&self, key: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(key)
        } else {
            ObjectPath::from(format!("{}/{key}", self.prefix))
        }
    }

    /// Uploads the file at `spool` to `key`: visible only once complete.
    async fn upload(&self, key: &str, spool: &Path) -> Result<u64, object_store::Error> {
        use tokio::io::AsyncReadExt;
        let path = self.path(key);
        let mut file = tokio::fs::File::open(spool).await.map_err(generic)?;
        let size = file.metadata().await.map_err(generic)?.len();
        if size <= SINGLE_PUT {
            let mut data = Vec::with_capacity(size as usize);
            file.read_to_end(&mut data).await.map_err(generic)?;
            self.s3.put(&path, PutPayload::from(data)).await?;
            return Ok(size);
        }
        let upload = self.s3.put_multipart(&path).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match file.read(&mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(generic(e));
                }
            };
            if n == 0 {
                break;
            }
            // At most two parts in flight: memory stays bounded.
            if let Err(e) = writer.wait_for_capacity(2).await {
                let _ = writer.abort().await;
                return Err(e);
            }
            writer.write(&buf[..n]);
        }
        writer.finish().await?;
        Ok(size)
    }
}

fn generic(e: io::Error) -> object_store::Error {
    object_store::Error::Generic {
        store: "S3",
        source: Box::new(e),
    }
}

/// Every object under `prefix`, scratch objects left out.
async fn list(s3: &dyn ObjectStore, prefix: &str) -> Result<Vec<Entry>, object_store::Error> {
    let base = (!prefix.is_empty()).then(|| ObjectPath::from(prefix));
    let mut stream = s3.list(base.as_ref());
    let mut entries = Vec::new();
    while let Some(meta) = stream.next().await {
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

fn read_error(key: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Read {
        key: key.to_string(),
        source: io::Error::other(e.to_string()),
    }
}

fn write_error(key: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Write {
        key: key.to_string(),
        source: io::Error::other(e.to_string()),
    }
}

/// Mutable objects are replaced in place: they do not add to the count.
fn is_mutable(key: &str) -> bool {
    key.ends_with("/@v/list") || key.ends_with("/@latest") || key.starts_with("sumdb/")
}

#[async_trait]
impl Store for S3Store {
    async fn get(&self, key: &str) -> Result<Option<StoredObject>, StoreError> {
        let result = match self.s3.get(&self.path(key)).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(read_error(key, e)),
        };
        let (size, modified) = (
            result.meta.size,
            SystemTime::from(result.meta.last_modified),
        );
        let body = if size <= READ_WHOLE {
            ObjectBody::Bytes(result.bytes().await.map_err(|e| read_error(key, e))?)
        } else {
            let stream = result.into_stream().map_err(io::Error::other);
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
        self.s3
            .put(&self.path(key), PutPayload::from(data))
            .await
            .map_err(|e| write_error(key, e))?;
        if !is_mutable(key) {
            self.usage.published(size, None);
        }
        Ok(())
    }

    async fn put_file(&self, key: &str, spool: &Path) -> Result<(), StoreError> {
        let result = self.upload(key, spool).await;
        let _ = tokio::fs::remove_file(spool).await;
        let size = result.map_err(|e| write_error(key, e))?;
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
        self.s3
            .put(&path, PutPayload::from_static(b"ok"))
            .await
            .map_err(|e| write_error(&key, e))?;
        let _ = self.s3.delete(&path).await;
        Ok(())
    }

    async fn entries(&self) -> io::Result<Vec<Entry>> {
        list(self.s3.as_ref(), &self.prefix)
            .await
            .map_err(io::Error::other)
    }

    async fn remove(&self, key: &str) -> io::Result<()> {
        match self.s3.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(io::Error::other(e)),
        }
    }

    fn measured(&self, bytes: u64, objects: u64) {
        self.usage.measured(bytes, objects);
    }

    async fn exists(&self, key: &str) -> bool {
        self.s3.head(&self.path(key)).await.is_ok()
    }

    fn describe(&self) -> String {
        self.name.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_paths_decode_to_keys() {
        assert_eq!(decode("a.example/m%7Ex/@v/list"), "a.example/m~x/@v/list");
        assert!(is_mutable("sumdb/sum.golang.org/latest"));
        assert!(!is_mutable("rsc.io/quote/@v/v1.5.2.zip"));
    }
}
