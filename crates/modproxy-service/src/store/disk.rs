//! The disk store: a directory that is itself a valid GOPROXY tree.
//!
//! ```text
//! $data/
//!   rsc.io/quote/@v/list               mutable, replaced atomically
//!   rsc.io/quote/@v/v1.5.2.info        immutable
//!   rsc.io/quote/@v/v1.5.2.mod
//!   rsc.io/quote/@v/v1.5.2.zip
//!   rsc.io/quote/@latest
//!   .tmp/$id.lock                      held (flock) by the process owning $id/
//!   .tmp/$id/                          spool and temporary files of one process
//! ```
//!
//! Writes go to `.tmp/$id/`, are synced and renamed into place, so a
//! crash at any moment leaves only complete objects in the tree. They run
//! on the store's own threads, deferred while a burst of them lasts
//! ([`writer`](super::writer)). Each process holds an
//! exclusive lock on its `$id.lock` for as long as it runs; when a store is
//! opened, the directories whose lock can be taken (their process is gone,
//! whatever its pid or container) are removed, and those of live processes
//! (another modproxy on the same directory) are left alone.
//! Module paths cannot have an element starting with a dot, so `.tmp` never
//! collides with a module.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::nowait;

use super::evict::{self, Toucher};
use super::usage::Usage;
use super::walk::walk;
use super::whole::{WholeReads, FILE_READ_WHOLE};
use super::writer::{look_up_siblings, rename_into, write_synced, Writer};
use super::{ObjectBody, Store, StoreError, StoreOp, StoredObject};

/// A [`Store`] on a local directory.
#[derive(Debug)]
pub struct DiskStore {
    /// Where writes are synced and published. Declared (so dropped) first:
    /// its writes finish before `_lock` says `tmp` is free.
    writer: Writer,
    root: PathBuf,
    tmp: PathBuf,
    counter: AtomicU64,
    /// Held for the life of the store: says `tmp` is in use.
    _lock: std::fs::File,
    /// Bytes and objects stored: counted once at open (in the background),
    /// then kept up to date by this process's writes and evictions.
    usage: Arc<Usage>,
    /// Access-time stamps of files served, throttled.
    toucher: Arc<Toucher>,
    /// The budget of small objects read whole.
    whole: WholeReads,
}

/// Threads that write, sync and publish ([`Writer`]): two, so one slow
/// write does not hold up every other, and few, so the writes do not take
/// the machine from everything else (four measured no better on the cold
/// bench; at a millisecond per sync two still write 2000 files a second).
const WRITER_THREADS: usize = 2;

/// How often a served file's access time is stamped at most.
const STAMP_EVERY: Duration = Duration::from_secs(3600);

/// Counts what is under `root` (not the store's own directories).
fn count(root: &Path) -> (u64, u64) {
    let (mut bytes, mut objects) = (0u64, 0u64);
    let _ = walk(root, usize::MAX, |_, entry, kind| {
        if kind.is_file() {
            bytes += entry.metadata().map_or(0, |m| m.len());
            objects += 1;
        }
        true
    });
    (bytes, objects)
}

impl DiskStore {
    /// Opens (creating if needed) the store at `root` and removes leftovers
    /// of writes that never finished.
    pub fn open(root: &Path) -> Result<DiskStore, StoreError> {
        let setup = |path: &Path| {
            let path = path.display().to_string();
            move |e: io::Error| StoreError::new(StoreOp::Prepare, path, e)
        };
        std::fs::create_dir_all(root).map_err(setup(root))?;
        let tmp_root = root.join(".tmp");
        std::fs::create_dir_all(&tmp_root).map_err(setup(&tmp_root))?;
        remove_leftovers(&tmp_root).map_err(setup(&tmp_root))?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let id = format!("{}-{nanos:x}", std::process::id());
        // The lock first, then the directory: a directory without its lock
        // file is always a leftover.
        let lock_path = tmp_root.join(format!("{id}.lock"));
        let lock = std::fs::File::create(&lock_path).map_err(setup(&lock_path))?;
        lock.try_lock()
            .map_err(|e| setup(&lock_path)(io::Error::other(e)))?;
        let tmp = tmp_root.join(&id);
        std::fs::create_dir_all(&tmp).map_err(setup(&tmp))?;
        let usage = Arc::new(Usage::default());
        let (counting, at) = (Arc::clone(&usage), root.to_path_buf());
        // A big store takes a while to count: start-up does not wait.
        let _ = std::thread::Builder::new()
            .name("store-usage".into())
            .spawn(move || {
                let (bytes, objects) = count(&at);
                counting.counted(bytes, objects);
            });
        let writer = Writer::new(WRITER_THREADS, "store-writer").map_err(setup(root))?;
        Ok(DiskStore {
            writer,
            root: root.to_path_buf(),
            tmp,
            counter: AtomicU64::new(0),
            _lock: lock,
            usage,
            toucher: Arc::new(Toucher::new(STAMP_EVERY)),
            whole: WholeReads::default().up_to(FILE_READ_WHOLE),
        })
    }

    /// This store, reading small files whole within `whole` (up to its
    /// limit; by default [`FILE_READ_WHOLE`], larger ones are sent from
    /// the file).
    pub fn reading_whole(self, whole: WholeReads) -> DiskStore {
        DiskStore { whole, ..self }
    }

    /// The directory the store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_of(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    /// A fresh name inside `.tmp/` for a write that is not yet published.
    pub fn temp_path(&self, hint: &str) -> PathBuf {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let name: String = hint
            .rsplit('/')
            .next()
            .unwrap_or("object")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            .take(64)
            .collect();
        self.tmp.join(format!("{n}-{name}"))
    }

    /// The outcome of writing `key`; a file just written has a fresh
    /// access time, so its first hits skip the stamp.
    fn written(&self, key: &str, result: io::Result<()>) -> Result<(), StoreError> {
        match result {
            Ok(()) => {
                self.toucher.written(key);
                Ok(())
            }
            Err(e) => Err(StoreError::new(StoreOp::Write, key, e)),
        }
    }

    /// Runs a write that holds `held` bytes of memory: deferred on the
    /// writer's threads, or on the blocking pool at once when `now` (a
    /// client or another replica waits for it).
    async fn run_write(
        &self,
        now: bool,
        held: u64,
        write: impl FnOnce() -> io::Result<()> + Send + 'static,
    ) -> io::Result<()> {
        if now {
            tokio::task::spawn_blocking(write)
                .await
                .unwrap_or_else(|e| Err(io::Error::other(e)))
        } else {
            self.writer.run(held, write).await
        }
    }

    /// Writes `data` to a temporary file, syncs it and renames it to `key`.
    async fn write(&self, key: &str, data: Bytes, now: bool) -> Result<(), StoreError> {
        // Plain blocking I/O off the async threads: every write error is
        // reported (disk full must not pass as success).
        let tmp = self.temp_path(key);
        let to = self.path_of(key);
        let usage = Arc::clone(&self.usage);
        let held = data.len() as u64;
        let result = self
            .run_write(now, held, move || {
                let landed = write_synced(&tmp, &data)
                    .and_then(|()| land(&tmp, &to, data.len() as u64, &usage));
                if landed.is_err() {
                    let _ = std::fs::remove_file(&tmp);
                }
                landed
            })
            .await;
        self.written(key, result)
    }

    /// Syncs the complete file at `spool` and renames it to `key`; on
    /// failure the spool file is removed.
    async fn publish(&self, key: &str, spool: &Path, now: bool) -> Result<(), StoreError> {
        let (from, to) = (spool.to_path_buf(), self.path_of(key));
        let usage = Arc::clone(&self.usage);
        let result = self
            .run_write(now, 0, move || {
                let file = std::fs::File::open(&from)?;
                file.sync_data()?;
                land(&from, &to, file.metadata()?.len(), &usage)
            })
            .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(spool).await;
        }
        self.written(key, result)
    }
}

/// Module paths in the store containing `query` (case-insensitive),
/// sorted, at most `limit`; the walk is bounded too (blocking: run it
/// off the async threads).
fn modules_matching(root: &Path, query: &str, limit: usize) -> Vec<String> {
    const DIRS_READ: usize = 100_000;
    let query = query.to_lowercase();
    let mut found = Vec::new();
    let _ = walk(root, DIRS_READ, |dir, entry, kind| {
        if !kind.is_dir() {
            return false;
        }
        let name = entry.file_name();
        if dir == root && name == "sumdb" {
            return false;
        }
        if name != "@v" {
            return true;
        }
        if let Ok(rel) = dir.strip_prefix(root) {
            let escaped = rel.to_string_lossy();
            let module = modproxy_module::path::ModulePath::unescape(&escaped)
                .map_or_else(|_| escaped.to_string(), |m| m.into_string());
            if module.to_lowercase().contains(&query) {
                found.push(module);
            }
        }
        false
    });
    found.sort();
    found.truncate(limit);
    found
}

/// Opens a stored object: `None` when there is none (or a path element is
/// a file where a directory is expected); small ones read whole when
/// `whole` has room. With `wait` false, only from what the kernel holds in
/// memory ([`nowait`]), and `None` (outer) when that is not enough.
fn open_object(
    path: &Path,
    whole: &WholeReads,
    wait: bool,
) -> Option<io::Result<Option<StoredObject>>> {
    use std::io::Read;
    let opened = if wait {
        std::fs::File::open(path)
    } else {
        nowait::open(path)?
    };
    let mut file = match opened {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Some(Ok(None)),
        Err(e) if e.raw_os_error() == Some(20) => return Some(Ok(None)),
        Err(e) => return Some(Err(e)),
    };
    let meta = match file.metadata() {
        Ok(meta) if meta.is_file() => meta,
        Ok(_) => return Some(Ok(None)),
        Err(e) => return Some(Err(e)),
    };
    let size = meta.len();
    let body = match whole.share(size) {
        None => ObjectBody::File(file),
        Some(share) if wait => {
            let mut buf = Vec::with_capacity(size as usize);
            if let Err(e) = file.read_to_end(&mut buf) {
                return Some(Err(e));
            }
            ObjectBody::Bytes(share.hold(buf))
        }
        Some(share) => {
            let mut buf = vec![0; size as usize];
            if nowait::read_at(&file, &mut buf, 0)? != buf.len() {
                return None;
            }
            ObjectBody::Bytes(share.hold(buf))
        }
    };
    Some(meta.modified().map(|modified| {
        Some(StoredObject {
            body,
            size,
            modified,
        })
    }))
}

/// Renames the complete, synced file `from` (`size` bytes) to `to` and
/// counts it in the store's usage.
fn land(from: &Path, to: &Path, size: u64, usage: &Usage) -> io::Result<()> {
    let replaced = rename_into(from, to)?;
    usage.published(size, replaced);
    look_up_siblings(to);
    Ok(())
}

/// Removes what processes that are gone left in `.tmp/`: directories whose
/// lock file can be locked (or is missing), and anything else.
fn remove_leftovers(tmp_root: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(tmp_root)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".lock") {
            continue; // judged with its directory below
        }
        let lock_path = tmp_root.join(format!("{name}.lock"));
        let lock = std::fs::File::options().write(true).open(&lock_path);
        let alive = match &lock {
            Ok(file) => matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock)),
            Err(_) => false,
        };
        if alive {
            continue;
        }
        let removed = if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        match removed {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => tracing::info!(path = %path.display(), "removed leftovers of an unfinished write"),
        }
        if lock.is_ok() {
            let _ = std::fs::remove_file(&lock_path);
        }
    }
    // Lock files left without a directory (a crash between the two creates).
    for entry in std::fs::read_dir(tmp_root)? {
        let path = entry?.path();
        let is_lock = path.extension().is_some_and(|e| e == "lock");
        if is_lock && !path.with_extension("").exists() {
            let unlocked = std::fs::File::options()
                .write(true)
                .open(&path)
                .is_ok_and(|f| f.try_lock().is_ok());
            if unlocked {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    Ok(())
}

#[async_trait]
impl Store for DiskStore {
    async fn get(&self, key: &str) -> Result<Option<StoredObject>, StoreError> {
        // Here if the kernel has it all in memory, else one trip to the
        // blocking pool: open, stat and (for small objects) read together.
        let path = self.path_of(key);
        let opened = match open_object(&path, &self.whole, false) {
            Some(opened) => opened,
            None => {
                let whole = self.whole.clone();
                tokio::task::spawn_blocking(move || {
                    open_object(&path, &whole, true).expect("a waiting open always answers")
                })
                .await
                .unwrap_or_else(|e| Err(io::Error::other(e)))
            }
        };
        opened.map_err(|e| StoreError::new(StoreOp::Read, key, e))
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<(), StoreError> {
        self.write(key, data, false).await
    }

    async fn put_now(&self, key: &str, data: Bytes) -> Result<(), StoreError> {
        self.write(key, data, true).await
    }

    async fn check_writable(&self) -> Result<(), StoreError> {
        let probe = self.temp_path("readyz");
        // Not deferred: a probe must not wait for a burst to end.
        let result = self
            .run_write(true, 0, move || {
                let written = write_synced(&probe, b"ok");
                let _ = std::fs::remove_file(&probe);
                written
            })
            .await;
        result.map_err(|e| StoreError::new(StoreOp::Write, ".tmp (readiness probe)", e))
    }

    async fn put_file(&self, key: &str, spool: &Path) -> Result<(), StoreError> {
        self.publish(key, spool, false).await
    }

    async fn put_file_now(&self, key: &str, spool: &Path) -> Result<(), StoreError> {
        self.publish(key, spool, true).await
    }

    fn touch(&self, key: &str) {
        if self.toucher.due(key) {
            let path = self.path_of(key);
            tokio::task::spawn_blocking(move || {
                if let Err(e) = evict::stamp(&path) {
                    tracing::debug!(path = %path.display(), error = %e, "cannot stamp the access time");
                }
            });
        }
    }

    fn usage(&self) -> Option<(u64, u64)> {
        self.usage.get()
    }

    fn spool_dir(&self) -> &Path {
        &self.tmp
    }

    async fn entries(&self) -> Result<Vec<evict::Entry>, StoreError> {
        let root = self.root.clone();
        let listed = tokio::task::spawn_blocking(move || {
            let mut entries = Vec::new();
            walk(&root, usize::MAX, |dir, entry, kind| {
                if kind.is_dir() {
                    return true;
                }
                let (Ok(meta), Ok(rel)) = (entry.metadata(), dir.strip_prefix(&root)) else {
                    return false;
                };
                let name = entry.file_name().to_string_lossy().into_owned();
                let key = if rel.as_os_str().is_empty() {
                    name
                } else {
                    format!("{}/{name}", rel.to_string_lossy())
                };
                let last_used = [meta.accessed().ok(), meta.modified().ok()]
                    .into_iter()
                    .flatten()
                    .max()
                    .unwrap_or(std::time::SystemTime::UNIX_EPOCH);
                entries.push(evict::Entry {
                    key,
                    size: meta.len(),
                    last_used,
                });
                false
            })?;
            Ok(entries)
        })
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e)));
        listed.map_err(|e| StoreError::new(StoreOp::List, self.describe(), e))
    }

    async fn remove(&self, key: &str) -> Result<(), StoreError> {
        match tokio::fs::remove_file(self.path_of(key)).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(StoreError::new(StoreOp::Remove, key, e))
            }
            _ => Ok(()),
        }
    }

    fn measured(&self, bytes: u64, objects: u64) {
        self.usage.measured(bytes, objects);
    }

    async fn exists(&self, key: &str) -> bool {
        tokio::fs::metadata(self.path_of(key))
            .await
            .is_ok_and(|m| m.is_file())
    }

    async fn search(&self, query: &str, limit: usize) -> Vec<String> {
        // A walk of directories only: no stat per file.
        let (root, query) = (self.root.clone(), query.to_string());
        tokio::task::spawn_blocking(move || modules_matching(&root, &query, limit))
            .await
            .unwrap_or_default()
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn whole_reads(&self) -> Option<&WholeReads> {
        Some(&self.whole)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_get_and_leftovers_cleaned_on_open() {
        let dir = std::env::temp_dir().join(format!("modproxy-disk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = DiskStore::open(&dir).unwrap();
        assert!(store.get("rsc.io/quote/@v/list").await.unwrap().is_none());
        store
            .put("rsc.io/quote/@v/list", Bytes::from_static(b"v1.0.0\n"))
            .await
            .unwrap();
        let obj = store.get("rsc.io/quote/@v/list").await.unwrap().unwrap();
        let size = obj.size;
        let bytes = obj.into_bytes("list").await.unwrap();
        assert_eq!((&bytes[..], size), (&b"v1.0.0\n"[..], 7));

        let half = store.temp_path("half.zip");
        std::fs::write(&half, b"partial").unwrap();
        // A second store on the same directory (another live process) leaves
        // the first one's files alone.
        let second = DiskStore::open(&dir).unwrap();
        assert!(half.exists(), "a live store's temporary file was removed");
        // Once the first is gone, the next open removes its leftovers.
        drop(store);
        drop(second);
        let store = DiskStore::open(&dir).unwrap();
        assert!(!half.exists());
        let left: Vec<_> = std::fs::read_dir(dir.join(".tmp")).unwrap().collect();
        assert_eq!(left.len(), 2, "only the new store's directory and lock");
        assert_eq!(std::fs::read_dir(store.spool_dir()).unwrap().count(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn small_objects_are_read_whole_only_within_their_budget() {
        let dir = std::env::temp_dir().join(format!("modproxy-whole-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = DiskStore::open(&dir)
            .unwrap()
            .reading_whole(WholeReads::new(1500));
        for key in ["a/@v/v1.0.0.zip", "b/@v/v1.0.0.zip"] {
            store.put(key, Bytes::from(vec![7u8; 1000])).await.unwrap();
        }
        let body = |o: Option<StoredObject>| o.unwrap().body;
        let held = body(store.get("a/@v/v1.0.0.zip").await.unwrap());
        assert!(matches!(held, ObjectBody::Bytes(_)));
        // While a client holds that copy, the next one is handed out unread.
        let next = body(store.get("b/@v/v1.0.0.zip").await.unwrap());
        assert!(matches!(next, ObjectBody::File(_)), "read past the budget");
        drop(held);
        let next = body(store.get("b/@v/v1.0.0.zip").await.unwrap());
        assert!(matches!(next, ObjectBody::Bytes(_)));
        // A file larger than that is sent from the file, room or not.
        let large = Bytes::from(vec![7u8; FILE_READ_WHOLE as usize + 1]);
        store.put("c/@v/v1.0.0.zip", large).await.unwrap();
        let store = store.reading_whole(WholeReads::default().up_to(FILE_READ_WHOLE));
        let large = body(store.get("c/@v/v1.0.0.zip").await.unwrap());
        assert!(matches!(large, ObjectBody::File(_)), "read whole");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_published_file_leaves_its_version_siblings_missing_in_the_dentry_cache() {
        let dir = std::env::temp_dir().join(format!("modproxy-siblings-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = DiskStore::open(&dir).unwrap();
        let module = "example.com/siblings/@v/v1.0.0";
        store
            .put(&format!("{module}.mod"), Bytes::from_static(b"module m\n"))
            .await
            .unwrap();
        // Never asked for, yet their absence is known without the disk.
        for ext in ["info", "zip"] {
            let path = store.path_of(&format!("{module}.{ext}"));
            let opened = nowait::open(&path).map(|r| r.map_err(|e| e.kind()).map(drop));
            assert_eq!(opened, Some(Err(io::ErrorKind::NotFound)), "{ext}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
