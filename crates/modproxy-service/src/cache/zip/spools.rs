//! Names for spool files, and one spool file made ahead of need.
//!
//! A large zip's first byte waits for its spool file. Creating a file is
//! a few hundred microseconds on a busy file system (more where the inode
//! allocator scans recently deleted inodes), and it ran on the request's
//! async thread. So one empty spool file is kept ready: a download takes
//! it and a blocking-pool thread makes the next. The first large zip of a
//! process (or one arriving while the next is being made) creates its
//! own as before. The spare is removed when the cache is dropped, and a
//! process that dies leaves it in its `.tmp/` directory, which the next
//! process to open the store removes.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio_util::task::TaskTracker;

use crate::sync::Locked;

#[derive(Default)]
pub(in crate::cache) struct Spools {
    counter: AtomicU64,
    spare: Arc<Spare>,
}

#[derive(Default)]
struct Spare {
    ready: Mutex<Option<(PathBuf, File)>>,
    making: AtomicBool,
}

impl Spools {
    /// A spool file for `key` in `dir`: the spare when one is ready
    /// (`Some` file), else a fresh name to create. Either way a next spare
    /// is made in the background, on `background`, unless one is being
    /// made already.
    pub(super) fn next(
        &self,
        dir: &Path,
        key: &str,
        background: &TaskTracker,
    ) -> (PathBuf, Option<File>) {
        let taken = self.spare.ready.locked().take();
        self.make_spare(dir, background);
        match taken {
            Some((path, file)) => (path, Some(file)),
            None => (self.name(dir, key), None),
        }
    }

    fn name(&self, dir: &Path, what: &str) -> PathBuf {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let what = what.rsplit('/').next().unwrap_or("zip");
        dir.join(format!("spool-{n}-{what}"))
    }

    fn make_spare(&self, dir: &Path, background: &TaskTracker) {
        if self.spare.making.swap(true, Ordering::AcqRel) {
            return;
        }
        let (spare, path) = (Arc::clone(&self.spare), self.name(dir, "spare"));
        background.spawn(async move {
            let made = {
                let path = path.clone();
                tokio::task::spawn_blocking(move || create(&path)).await
            };
            // A failure (a full disk, a directory removed) only means the
            // next download makes its own.
            let mut ready = spare.ready.locked();
            if let Ok(Ok(file)) = made {
                if ready.is_none() {
                    *ready = Some((path, file));
                } else {
                    let _ = std::fs::remove_file(&path);
                }
            }
            // Under the lock: whoever takes this spare sees the flag down
            // and makes the next.
            spare.making.store(false, Ordering::Release);
        });
    }

    /// The spare's path, if one is ready.
    #[cfg(test)]
    pub(in crate::cache) fn spare(&self) -> Option<PathBuf> {
        let ready = self.spare.ready.locked();
        ready.as_ref().map(|(path, _)| path.clone())
    }
}

impl Drop for Spare {
    fn drop(&mut self) {
        if let Some((path, _)) = self.ready.get_mut().ok().and_then(Option::take) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Creates a new, empty spool file at `path`.
pub(super) fn create(path: &Path) -> io::Result<File> {
    File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn made(spools: &Spools, tracker: &TaskTracker) -> PathBuf {
        tracker.close();
        tracker.wait().await;
        tracker.reopen();
        spools.spare().expect("a spare")
    }

    #[tokio::test]
    async fn a_spare_is_made_after_each_take_and_removed_with_them() {
        let dir = std::env::temp_dir().join(format!("spools-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (spools, tracker) = (Spools::default(), TaskTracker::new());

        let (first, file) = spools.next(&dir, "a/@v/v1.0.0.zip", &tracker);
        assert!(file.is_none(), "none ready at first");
        let name = first.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with("spool-") && name.ends_with("-v1.0.0.zip"),
            "{name}"
        );
        let spare = made(&spools, &tracker).await;
        assert!(spare.is_file());

        let (taken, file) = spools.next(&dir, "a/@v/v1.1.0.zip", &tracker);
        assert_eq!((taken, file.is_some()), (spare.clone(), true));
        let next = made(&spools, &tracker).await;
        assert_ne!(next, spare);

        drop(spools);
        assert!(!next.exists(), "the spare is removed with them");
        assert!(spare.exists(), "a taken one is its user's");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
