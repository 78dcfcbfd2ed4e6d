//! Where published module files live.
//!
//! A [`Store`] maps protocol paths (`rsc.io/quote/@v/v1.5.2.zip`, see
//! [`crate::request::ModuleRequest::protocol_path`]) to bytes. Objects appear
//! atomically and only complete: a reader sees the old object, the new
//! object, or nothing, never a partial write. A lookup returns
//! `Ok(Some)`, `Ok(None)` or an error; an error is never turned into a miss.

pub(crate) mod budget;
mod disk;
pub mod evict;
pub mod memory;
mod s3;
mod usage;
mod walk;
pub mod whole;
mod writer;

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use modproxy_module::path::ModulePath;
use tokio::io::AsyncRead;

pub use crate::error::StoreOp;

pub use disk::DiskStore;
pub use s3::{S3Error, S3Store};
pub use walk::walk;

/// A stored object's contents: small ones already read (within
/// [`whole::WholeReads`]), others open for streaming.
pub enum ObjectBody {
    Bytes(Bytes),
    /// A local file (read on the blocking pool in large pieces).
    File(std::fs::File),
    Reader(Pin<Box<dyn AsyncRead + Send>>),
}

/// A stored object, ready to be read.
pub struct StoredObject {
    pub body: ObjectBody,
    pub size: u64,
    /// When it was published; the age of mutable entries is measured from here.
    pub modified: SystemTime,
}

impl StoredObject {
    /// All of it in memory (for small objects: metadata, go.mod, tiles).
    pub async fn into_bytes(self, key: &str) -> Result<Bytes, StoreError> {
        use tokio::io::AsyncReadExt;
        let mut reader: Pin<Box<dyn AsyncRead + Send>> = match self.body {
            ObjectBody::Bytes(b) => return Ok(b),
            ObjectBody::File(file) => Box::pin(tokio::fs::File::from_std(file)),
            ObjectBody::Reader(reader) => reader,
        };
        let mut buf = Vec::with_capacity(self.size as usize);
        reader
            .read_to_end(&mut buf)
            .await
            .map_err(|e| StoreError::new(StoreOp::Read, key, e))?;
        Ok(Bytes::from(buf))
    }
}

/// A store operation that failed: which, on what, and why.
#[derive(Debug, thiserror::Error)]
#[error("store: cannot {op} {target}")]
pub struct StoreError {
    pub op: StoreOp,
    /// The key (or the directory, bucket or file) it was about.
    pub target: String,
    #[source]
    pub cause: StoreCause,
}

/// The underlying failure of a store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreCause {
    /// A local file system operation (the disk store, spool files).
    #[error(transparent)]
    Io(#[from] io::Error),
    /// A request to the bucket.
    #[error(transparent)]
    S3(#[from] S3Error),
}

/// Why a store operation failed, as far as anything is decided on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreFailure {
    /// There is no such object (or file).
    Missing,
    /// Permissions or credentials do not allow it.
    Denied,
    /// The storage did not answer in time, or the connection to it broke:
    /// it may work again shortly.
    Unavailable,
    /// No space left (or over quota).
    Full,
    /// The file system takes no writes.
    ReadOnly,
    /// Anything else (an I/O error, a refusal by the bucket).
    Other,
}

impl StoreFailure {
    /// The failure a local I/O error of `kind` is.
    pub fn of_io(kind: io::ErrorKind) -> StoreFailure {
        use io::ErrorKind as K;
        match kind {
            K::NotFound => StoreFailure::Missing,
            K::PermissionDenied => StoreFailure::Denied,
            K::StorageFull | K::QuotaExceeded => StoreFailure::Full,
            K::ReadOnlyFilesystem => StoreFailure::ReadOnly,
            K::TimedOut
            | K::ConnectionRefused
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::NotConnected
            | K::BrokenPipe
            | K::StaleNetworkFileHandle => StoreFailure::Unavailable,
            _ => StoreFailure::Other,
        }
    }
}

impl StoreError {
    pub fn new(op: StoreOp, target: impl Into<String>, cause: impl Into<StoreCause>) -> Self {
        StoreError {
            op,
            target: target.into(),
            cause: cause.into(),
        }
    }

    /// Why it failed (to tell causes apart without reading messages).
    pub fn failure(&self) -> StoreFailure {
        match &self.cause {
            StoreCause::Io(e) => StoreFailure::of_io(e.kind()),
            StoreCause::S3(e) => e.failure(),
        }
    }
}

/// A place for published objects.
#[async_trait]
pub trait Store: Send + Sync {
    /// Opens the object at `key`, or `Ok(None)` when there is none.
    async fn get(&self, key: &str) -> Result<Option<StoredObject>, StoreError>;

    /// Publishes `data` at `key` atomically, replacing any previous object.
    /// The disk store defers it while a burst of writes lasts (at most a
    /// second): nobody waits for it, its data is served from memory
    /// meanwhile.
    async fn put(&self, key: &str, data: Bytes) -> Result<(), StoreError>;

    /// [`Store::put`] for a write someone waits for (a client's answer,
    /// another replica): never deferred.
    async fn put_now(&self, key: &str, data: Bytes) -> Result<(), StoreError> {
        self.put(key, data).await
    }

    /// Publishes the complete file at `spool` (inside [`Store::spool_dir`]) at
    /// `key` atomically and durably (synced first where the store is a
    /// local file system), deferred as [`Store::put`] is. The spool file is
    /// consumed.
    async fn put_file(&self, key: &str, spool: &Path) -> Result<(), StoreError>;

    /// [`Store::put_file`], never deferred.
    async fn put_file_now(&self, key: &str, spool: &Path) -> Result<(), StoreError> {
        self.put_file(key, spool).await
    }

    /// A local directory for files being downloaded, on the same file system
    /// as the store where that makes publishing a rename.
    fn spool_dir(&self) -> &Path;

    /// Notes that the object at `key` was just served (for least recently
    /// used eviction).
    fn touch(&self, key: &str);

    /// Bytes and objects held, or `None` while still being counted.
    fn usage(&self) -> Option<(u64, u64)>;

    /// Checks that the store takes writes now (for `/readyz`): writes,
    /// syncs and removes a small scratch object that is never published.
    async fn check_writable(&self) -> Result<(), StoreError>;

    /// Every published object (not the store's own scratch objects), for
    /// eviction and `stats`.
    async fn entries(&self) -> Result<Vec<evict::Entry>, StoreError>;

    /// Removes the object at `key`; one that is already gone is fine.
    async fn remove(&self, key: &str) -> Result<(), StoreError>;

    /// A full listing measured `bytes` in `objects`: replaces the running
    /// count (which drifts when others write to the same store).
    fn measured(&self, bytes: u64, objects: u64);

    /// Module paths in the store containing `query` (case-insensitive),
    /// sorted, at most `limit`.
    async fn search(&self, query: &str, limit: usize) -> Vec<String> {
        let query = query.to_lowercase();
        let mut found: Vec<String> = self
            .entries()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter_map(|e| e.key.split_once("/@v/").map(|(m, _)| m.to_string()))
            .map(|m| ModulePath::unescape(&m).map_or(m, |p| p.into_string()))
            .filter(|m| m.to_lowercase().contains(&query))
            .collect();
        found.sort();
        found.dedup();
        found.truncate(limit);
        found
    }

    /// Whether an object is at `key` (errors count as no), without
    /// reading it.
    async fn exists(&self, key: &str) -> bool {
        matches!(self.get(key).await, Ok(Some(_)))
    }

    /// How often a full listing should correct the running count, for a
    /// store other processes write to as a matter of course (`None`: the
    /// count is kept by this process alone, corrected by eviction scans).
    fn remeasure_every(&self) -> Option<std::time::Duration> {
        None
    }

    /// Where it is, for messages: a directory or `s3://bucket/prefix`.
    fn describe(&self) -> String;

    /// The budget of objects read whole, which copies kept in memory
    /// beside the store take from too; `None`: not bounded here.
    fn whole_reads(&self) -> Option<&whole::WholeReads> {
        None
    }
}

/// Opens the store the settings name: the disk store at `--data`, or an
/// S3-compatible bucket (`--store s3://BUCKET/PREFIX`; scratch files and
/// git mirrors stay under `--data`).
pub fn open(settings: &crate::Settings) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    let whole = whole::WholeReads::serving(settings.body_buffers);
    Ok(match &settings.store {
        crate::settings::StoreLocation::Disk => {
            let store = DiskStore::open(&settings.data_dir)?;
            // Larger files go out by `sendfile` on plain HTTP/1; over TLS
            // they would be copied in pieces, slower than from memory.
            let sent_from_files = settings.tls.is_none() && crate::server::sendfile::AVAILABLE;
            let largest = if sent_from_files {
                whole::FILE_READ_WHOLE
            } else {
                whole::READ_WHOLE
            };
            std::sync::Arc::new(store.reading_whole(whole.up_to(largest)))
        }
        crate::settings::StoreLocation::S3 { bucket, prefix } => std::sync::Arc::new(
            S3Store::open(bucket, prefix, &settings.data_dir)?.reading_whole(whole),
        ),
    })
}
