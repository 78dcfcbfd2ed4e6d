//! What a store holds, kept as a running count: counted once when the
//! store opens (in the background), then moved by this process's writes,
//! and replaced by every full listing (eviction scans).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Usage {
    bytes: AtomicU64,
    objects: AtomicU64,
    /// Whether the count at open has finished.
    counted: AtomicBool,
}

impl Usage {
    /// (bytes, objects), or `None` until the first count is done.
    pub fn get(&self) -> Option<(u64, u64)> {
        self.counted.load(Ordering::Acquire).then(|| {
            (
                self.bytes.load(Ordering::Relaxed),
                self.objects.load(Ordering::Relaxed),
            )
        })
    }

    /// An object of `size` bytes was published, replacing one of
    /// `replaced` bytes if any.
    pub fn published(&self, size: u64, replaced: Option<u64>) {
        self.bytes.fetch_add(size, Ordering::Relaxed);
        match replaced {
            Some(old) => subtract(&self.bytes, old),
            None => {
                self.objects.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The count at open found `bytes` in `objects` (added to what this
    /// process wrote meanwhile).
    pub fn counted(&self, bytes: u64, objects: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.objects.fetch_add(objects, Ordering::Relaxed);
        self.counted.store(true, Ordering::Release);
    }

    /// What a full listing just measured replaces the running count (which
    /// drifts when another process writes to or evicts from the store).
    pub fn measured(&self, bytes: u64, objects: u64) {
        self.bytes.store(bytes, Ordering::Relaxed);
        self.objects.store(objects, Ordering::Relaxed);
        self.counted.store(true, Ordering::Release);
    }
}

/// `counter -= n`, stopping at zero.
fn subtract(counter: &AtomicU64, n: u64) {
    let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
        Some(v.saturating_sub(n))
    });
}
