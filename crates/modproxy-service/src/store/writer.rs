//! Store writes on threads of their own, deferred while writes keep
//! coming.
//!
//! A synced write holds its thread until the disk has the bytes, a
//! millisecond or more, and on a virtual machine each sync costs CPU as
//! well (every request to the disk is a trip out of the guest). On tokio's
//! blocking pool, a burst of them (a cold graph's go.mods, `.info`s,
//! lookups and zips, prefetched at once) took every thread of the pool,
//! so the reads and zip checks the go command was waiting for queued
//! behind writes nobody was waiting for, and the syncs competed with the
//! go command for the machine while it walked the graph.
//!
//! So the disk store's writes go through a [`Writer`]: a few threads,
//! taking the writes in the order they were asked for, each write waiting
//! until none has been asked for in [`QUIET`] (the burst is over), at
//! most [`MAX_DELAY`]; deferring stops while the writes waiting hold more
//! than [`DEFERRED_BYTES`] (the queue itself is not bounded: past that,
//! writes go at the disk's pace, as they did on the blocking pool). Only
//! writes nobody waits for come here: an answer goes out before its store
//! write, and the fetch it came from stays joinable, answering from memory
//! (or its spool file), until the write is done. Writes a client or
//! another replica waits for go to the blocking pool at once
//! (`Store::put_now`). A process that dies meanwhile loses only cache
//! entries, fetched again when next asked for; nothing half-written is
//! ever visible, since each write is still synced before it is renamed
//! into place.

use std::io;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A write waits until no other has been asked for in this long...
const QUIET: Duration = Duration::from_millis(50);
/// ...but no longer than this after it was asked for...
const MAX_DELAY: Duration = Duration::from_secs(1);
/// ...and not at all while the writes waiting hold more than this (their
/// data is in memory until written).
const DEFERRED_BYTES: u64 = 16 << 20;
/// What a waiting write counts for besides its data.
const JOB_BYTES: u64 = 512;
/// How long dropping the writer waits for the writes asked for.
const DRAIN: Duration = Duration::from_secs(10);

struct Job {
    write: Box<dyn FnOnce() + Send>,
    asked: Instant,
    /// What it counts for in [`Shared::deferred`].
    bytes: u64,
}

/// What the threads and the writer share.
struct Shared {
    /// When the last write was asked for.
    last: Mutex<Instant>,
    /// Bytes of the writes asked for and not started.
    deferred: AtomicU64,
    /// Set when the writer is dropped: nothing is deferred any more.
    closing: AtomicBool,
}

/// A few threads that run blocking writes in turn.
pub(super) struct Writer {
    /// `None` once dropped.
    jobs: Mutex<Option<Sender<Job>>>,
    shared: Arc<Shared>,
    /// Disconnected when every thread has ended.
    ended: Mutex<Receiver<()>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("deferred", &self.shared.deferred.load(Ordering::Relaxed))
            .finish()
    }
}

impl Writer {
    /// Starts `threads` threads named `name`. Dropping the writer runs
    /// the writes already asked for at once and waits for them (at most
    /// [`DRAIN`]).
    pub(super) fn new(threads: usize, name: &str) -> io::Result<Writer> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let shared = Arc::new(Shared {
            last: Mutex::new(Instant::now()),
            deferred: AtomicU64::new(0),
            closing: AtomicBool::new(false),
        });
        let (alive, ended) = mpsc::channel();
        for _ in 0..threads.max(1) {
            let (queue, shared, alive) = (Arc::clone(&queue), Arc::clone(&shared), alive.clone());
            std::thread::Builder::new()
                .name(name.to_string())
                .spawn(move || {
                    work(&queue, &shared);
                    drop(alive);
                })?;
        }
        Ok(Writer {
            jobs: Mutex::new(Some(jobs)),
            shared,
            ended: Mutex::new(ended),
        })
    }

    /// Runs `write` on one of the threads once the burst it came in is
    /// over, and waits for it; it holds `held` bytes of memory until then.
    pub(super) async fn run<T: Send + 'static>(
        &self,
        held: u64,
        write: impl FnOnce() -> io::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        let (done, outcome) = tokio::sync::oneshot::channel();
        let asked = Instant::now();
        let bytes = held + JOB_BYTES;
        let job = Job {
            write: Box::new(move || {
                let _ = done.send(write());
            }),
            asked,
            bytes,
        };
        *locked(&self.shared.last) = asked;
        self.shared.deferred.fetch_add(bytes, Ordering::SeqCst);
        let queued = match &*locked(&self.jobs) {
            Some(jobs) => jobs.send(job).is_ok(),
            None => false,
        };
        if !queued {
            self.shared.deferred.fetch_sub(bytes, Ordering::SeqCst);
            return Err(io::Error::other("the store's writer threads are gone"));
        }
        // A write that panicked drops its sender.
        outcome
            .await
            .unwrap_or_else(|_| Err(io::Error::other("a store write panicked")))
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.shared.closing.store(true, Ordering::SeqCst);
        // The threads end once the queue is empty and closed.
        locked(&self.jobs).take();
        let _ = locked(&self.ended).recv_timeout(DRAIN);
    }
}

fn locked<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One thread's life: the next write when its time has come, until the
/// writer is dropped.
fn work(queue: &Mutex<Receiver<Job>>, shared: &Shared) {
    loop {
        let next = locked(queue).recv();
        let Ok(job) = next else {
            return;
        };
        loop {
            let wait = due_in(job.asked, locked(&shared.last).elapsed(), shared);
            if wait.is_zero() {
                break;
            }
            std::thread::sleep(wait);
        }
        shared.deferred.fetch_sub(job.bytes, Ordering::SeqCst);
        // One write's panic must not take the thread and every later
        // write with it; its caller sees an error.
        let _ = std::panic::catch_unwind(AssertUnwindSafe(job.write));
    }
}

/// How much longer a deferred write asked for at `asked` waits, the last
/// write having been asked for `since` ago.
fn due_in(asked: Instant, since: Duration, shared: &Shared) -> Duration {
    let age = asked.elapsed();
    if age >= MAX_DELAY || since >= QUIET || shared.closing.load(Ordering::SeqCst) {
        return Duration::ZERO;
    }
    if shared.deferred.load(Ordering::SeqCst) > DEFERRED_BYTES {
        return Duration::ZERO;
    }
    (QUIET - since).min(MAX_DELAY - age)
}

// The file operations of a disk store write.

/// Writes `data` to a new file at `path` and syncs it; the temporary
/// directory is recreated if something removed it.
pub(super) fn write_synced(path: &Path, data: &[u8]) -> io::Result<()> {
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

/// Renames `from` to `to`, creating `to`'s directory when it is missing
/// (tried after the rename, not before: a `mkdir` of a directory that is
/// there locks its parent all the same); the size of the object it
/// replaced, if any.
pub(super) fn rename_into(from: &Path, to: &Path) -> io::Result<Option<u64>> {
    let replaced = std::fs::metadata(to).ok().map(|m| m.len());
    match std::fs::rename(from, to) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::rename(from, to)?;
        }
        renamed => renamed?,
    }
    Ok(replaced)
}

/// Looks up the other files of the module version that `path` (just
/// published) belongs to, so the kernel keeps the answer, usually that
/// they are not there yet: the go command asks for a version's `.mod`,
/// `.info` and `.zip` in turn, and a miss the dentry cache answers needs
/// no trip to the blocking pool ([`nowait::open`]). A few microseconds
/// here, off the request's path.
pub(super) fn look_up_siblings(path: &Path) {
    let Some(ext) = path.extension().and_then(|e| e.to_str()) else {
        return;
    };
    const VERSION_FILES: [&str; 3] = ["info", "mod", "zip"];
    if VERSION_FILES.contains(&ext) {
        for sibling in VERSION_FILES.iter().filter(|e| **e != ext) {
            let _ = std::fs::symlink_metadata(path.with_extension(sibling));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_run_on_the_writer_threads_and_a_panic_is_an_error() {
        let writer = Writer::new(1, "test-writer").unwrap();
        let name = writer
            .run(0, || Ok(std::thread::current().name().map(str::to_string)))
            .await
            .unwrap();
        assert_eq!(name.as_deref(), Some("test-writer"));
        let panicked = writer.run::<()>(0, || panic!("boom")).await;
        assert!(panicked.unwrap_err().to_string().contains("panicked"));
        // The thread is still there for the next write.
        assert_eq!(writer.run(0, || Ok(7)).await.unwrap(), 7);
    }

    #[tokio::test]
    async fn a_write_waits_for_the_end_of_its_burst() {
        let writer = Arc::new(Writer::new(2, "test-writer").unwrap());
        // A write alone runs once QUIET has passed.
        let asked = Instant::now();
        let ran = writer.run(10, || Ok(Instant::now())).await.unwrap();
        assert!(ran.duration_since(asked) >= QUIET, "it did not wait");
        // Writes asked for every 10 ms for 200 ms: the first one waits
        // until the last one is QUIET old.
        let first = {
            let writer = Arc::clone(&writer);
            tokio::spawn(async move { writer.run(10, || Ok(Instant::now())).await })
        };
        let burst = Instant::now();
        while burst.elapsed() < Duration::from_millis(200) {
            tokio::time::sleep(Duration::from_millis(10)).await;
            let writer = Arc::clone(&writer);
            tokio::spawn(async move { writer.run(10, || Ok(())).await });
        }
        let last_asked = Instant::now();
        let ran = first.await.unwrap().unwrap();
        assert!(ran >= last_asked, "a write ran during the burst");
        assert!(ran.duration_since(burst) < MAX_DELAY + Duration::from_millis(500));
    }

    #[test]
    fn writes_are_not_deferred_past_the_delay_or_the_memory_bound() {
        let shared = Shared {
            last: Mutex::new(Instant::now()),
            deferred: AtomicU64::new(0),
            closing: AtomicBool::new(false),
        };
        let now = Instant::now();
        assert!(due_in(now, Duration::ZERO, &shared) > Duration::ZERO);
        assert_eq!(due_in(now, QUIET, &shared), Duration::ZERO);
        let old = now - MAX_DELAY;
        assert_eq!(due_in(old, Duration::ZERO, &shared), Duration::ZERO);
        shared.deferred.store(DEFERRED_BYTES + 1, Ordering::SeqCst);
        assert_eq!(due_in(now, Duration::ZERO, &shared), Duration::ZERO);
        shared.deferred.store(0, Ordering::SeqCst);
        shared.closing.store(true, Ordering::SeqCst);
        assert_eq!(due_in(now, Duration::ZERO, &shared), Duration::ZERO);
    }

    #[tokio::test]
    async fn dropping_the_writer_runs_the_writes_asked_for() {
        let writer = Writer::new(1, "test-writer").unwrap();
        let done = Arc::new(AtomicBool::new(false));
        // Asked for, then nobody waits for it (a task cancelled at
        // shutdown): it stays queued, waiting for a quiet moment.
        let ran = Arc::clone(&done);
        let asked = writer.run(10, move || {
            ran.store(true, Ordering::SeqCst);
            Ok(())
        });
        assert!(tokio::time::timeout(Duration::from_millis(5), asked)
            .await
            .is_err());
        assert!(!done.load(Ordering::SeqCst));
        tokio::task::spawn_blocking(move || drop(writer))
            .await
            .unwrap();
        assert!(done.load(Ordering::SeqCst), "dropped before its writes ran");
    }
}
