//! The disk store: a directory that is itself a valid GOPROXY tree.
//!
//! ```text
//! $data/
//!   rsc.io/quote/@v/list               mutable, replaced atomically
//!   rsc.io/quote/@v/v1.5.2.info        immutable
//!   rsc.io/quote/@v/v1.5.2.mod
//!   rsc.io/quote/@v/v1.5.2.zip
//!   rsc.io/quote/@latest
//!   .tmp/$pid/                         spool and temporary files of one process
//! ```
//!
//! Writes go to `.tmp/$pid/` and are renamed into place, so a crash at any
//! moment leaves only complete objects in the tree. When a store is opened,
//! the `.tmp/` directories of processes that are gone are removed; those of
//! live processes (another modproxy on the same directory) are left alone.
//! Module paths cannot have an element starting with a dot, so `.tmp` never
//! collides with a module.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;

use super::{Store, StoreError, StoredObject};

/// A [`Store`] on a local directory.
#[derive(Debug)]
pub struct DiskStore {
    root: PathBuf,
    tmp: PathBuf,
    counter: AtomicU64,
}

impl DiskStore {
    /// Opens (creating if needed) the store at `root` and removes leftovers
    /// of writes that never finished.
    pub fn open(root: &Path) -> Result<DiskStore, StoreError> {
        let setup = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Setup { path, source }
        };
        std::fs::create_dir_all(root).map_err(setup(root))?;
        let tmp_root = root.join(".tmp");
        std::fs::create_dir_all(&tmp_root).map_err(setup(&tmp_root))?;
        remove_leftovers(&tmp_root).map_err(setup(&tmp_root))?;
        let tmp = tmp_root.join(std::process::id().to_string());
        std::fs::create_dir_all(&tmp).map_err(setup(&tmp))?;
        Ok(DiskStore {
            root: root.to_path_buf(),
            tmp,
            counter: AtomicU64::new(0),
        })
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

    async fn publish(&self, key: &str, from: &Path) -> io::Result<()> {
        let (from, to) = (from.to_path_buf(), self.path_of(key));
        tokio::task::spawn_blocking(move || rename_into(&from, &to))
            .await
            .unwrap_or_else(|e| Err(io::Error::other(e)))
    }
}

/// Writes `data` to a new file at `path` and syncs it; the temporary
/// directory is recreated if something removed it.
fn write_synced(path: &Path, data: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut file = match std::fs::File::create(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::File::create(path)?
        }
        other => other?,
    };
    file.write_all(data)?;
    file.sync_data()
}

/// Renames `from` to `to`, creating `to`'s directory as needed.
fn rename_into(from: &Path, to: &Path) -> io::Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::rename(from, to)
}

/// Removes the temporary directories of processes that no longer run (and
/// anything else found in `.tmp/`).
fn remove_leftovers(tmp_root: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(tmp_root)? {
        let entry = entry?;
        let owner = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok());
        if owner.is_some_and(process_alive) {
            continue;
        }
        let path = entry.path();
        let removed = if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        match removed {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => tracing::info!(path = %path.display(), "removed leftovers of an unfinished write"),
        }
    }
    Ok(())
}

/// Whether process `pid` runs (Linux: it has a `/proc` entry). Our own pid
/// counts as gone: a directory with it is from an earlier process that had
/// the same pid.
fn process_alive(pid: u32) -> bool {
    pid != std::process::id() && Path::new("/proc").join(pid.to_string()).exists()
}

#[async_trait]
impl Store for DiskStore {
    async fn get(&self, key: &str) -> Result<Option<StoredObject>, StoreError> {
        let read_err = |source| StoreError::Read {
            key: key.to_string(),
            source,
        };
        let file = match tokio::fs::File::open(self.path_of(key)).await {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            // A path element that is a file where a directory is expected.
            Err(e) if e.raw_os_error() == Some(20) => return Ok(None),
            Err(e) => return Err(read_err(e)),
        };
        let meta = file.metadata().await.map_err(read_err)?;
        if !meta.is_file() {
            return Ok(None);
        }
        Ok(Some(StoredObject {
            reader: Box::pin(file),
            size: meta.len(),
            modified: meta.modified().map_err(read_err)?,
        }))
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<(), StoreError> {
        // Plain blocking I/O off the async threads: every write error is
        // reported (disk full must not pass as success).
        let tmp = self.temp_path(key);
        let to = self.path_of(key);
        let result = tokio::task::spawn_blocking(move || {
            let written = write_synced(&tmp, &data).and_then(|()| rename_into(&tmp, &to));
            if written.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            written
        })
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e)));
        result.map_err(|source| StoreError::Write {
            key: key.to_string(),
            source,
        })
    }

    async fn put_file(&self, key: &str, spool: &Path) -> Result<(), StoreError> {
        let result = self.publish(key, spool).await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(spool).await;
        }
        result.map_err(|source| StoreError::Write {
            key: key.to_string(),
            source,
        })
    }

    fn spool_dir(&self) -> &Path {
        &self.tmp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

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
        let mut obj = store.get("rsc.io/quote/@v/list").await.unwrap().unwrap();
        let mut s = String::new();
        obj.reader.read_to_string(&mut s).await.unwrap();
        assert_eq!((s.as_str(), obj.size), ("v1.0.0\n", 7));

        std::fs::write(store.temp_path("half.zip"), b"partial").unwrap();
        // A dead process's leftovers go; a live one's (pid 1) stay.
        let dead = dir.join(".tmp/4294967295");
        let live = dir.join(".tmp/1");
        std::fs::create_dir_all(&dead).unwrap();
        std::fs::create_dir_all(&live).unwrap();
        drop(store);
        let store = DiskStore::open(&dir).unwrap();
        assert_eq!(std::fs::read_dir(store.spool_dir()).unwrap().count(), 0);
        assert!(!dead.exists());
        assert!(live.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
