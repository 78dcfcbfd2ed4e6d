//! Stored objects read whole into memory (the small ones: metadata, go.mod
//! files, small zips), within one byte budget per store.
//!
//! Such a copy lives as long as its last holder: the in-memory tier, or a
//! slow client still taking its answer. Each copy holds its share of the
//! budget until then, so memory stays bounded by the budget, not by the
//! number of clients. When the budget is spent, an object is handed out
//! unread (a file to `sendfile`, or a stream read in pieces within
//! `--body-buffers`): slower for that answer, never more memory.
//!
//! Bodies a fetch puts in the tier take a share too ([`WholeReads::charged`]).
//! The tier and the answers share the budget: while answers hold it all
//! (many slow clients on distinct small files), the tier does not take
//! new entries until they finish.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Objects up to this size are read whole when their budget has room:
/// from an object store, where the next read is another request.
pub const READ_WHOLE: u64 = 1 << 20;

/// Files up to this size are read whole from a local disk served over
/// plain HTTP/1. A larger one goes out faster by `sendfile` than copied
/// from memory: cached zips on loopback, against nginx in the same runs,
/// 1 MiB 1.41-1.51x nginx by `sendfile` and 0.90x from memory, 512 KiB
/// 1.59x and 1.24x, 256 KiB 1.42x and 1.33x, 64 KiB about even, 16 KiB
/// 0.82x and 1.35x (BENCHMARKS.md).
pub const FILE_READ_WHOLE: u64 = 64 << 10;

/// The budget of copies read whole.
#[derive(Clone, Debug)]
pub struct WholeReads {
    /// Permits are bytes.
    budget: Arc<Semaphore>,
    /// The largest object read whole.
    largest: u64,
}

/// A share of the budget for one copy, given back when the copy is gone.
pub struct Share {
    _permit: OwnedSemaphorePermit,
}

impl WholeReads {
    /// A budget of `bytes`.
    pub fn new(bytes: u64) -> WholeReads {
        let bytes = usize::try_from(bytes).unwrap_or(usize::MAX);
        WholeReads {
            budget: Arc::new(Semaphore::new(bytes.min(Semaphore::MAX_PERMITS))),
            largest: READ_WHOLE,
        }
    }

    /// This budget, reading whole only objects up to `largest` bytes
    /// (never more than its limit so far).
    pub fn up_to(self, largest: u64) -> WholeReads {
        let largest = largest.min(self.largest);
        WholeReads { largest, ..self }
    }

    /// The serving budget: what the in-memory tier keeps
    /// ([`super::memory::HOT_BYTES`]), plus `body_buffers` for copies that
    /// only answers hold.
    pub fn serving(body_buffers: u64) -> WholeReads {
        WholeReads::new(super::memory::HOT_BYTES as u64 + body_buffers)
    }

    /// A share for an object of `size` bytes, if it is small enough to be
    /// read whole and the budget has room now.
    pub fn share(&self, size: u64) -> Option<Share> {
        if size > self.largest {
            return None;
        }
        let permit = Arc::clone(&self.budget).try_acquire_many_owned(size as u32);
        permit.ok().map(|_permit| Share { _permit })
    }

    /// A copy of `bytes` to keep in memory beside the store (a fetched
    /// body for the memory tier), holding a share of the budget as a copy
    /// read whole does; `None` if the budget has no room now.
    pub fn charged(&self, bytes: &Bytes) -> Option<Bytes> {
        let share = self.share(bytes.len() as u64)?;
        Some(share.hold(bytes.clone()))
    }

    /// Bytes left in the budget.
    #[cfg(test)]
    pub fn room(&self) -> usize {
        self.budget.available_permits()
    }
}

impl Default for WholeReads {
    /// The serving budget with the default `--body-buffers`.
    fn default() -> WholeReads {
        WholeReads::serving(16 << 20)
    }
}

impl Share {
    /// `data` as bytes that hold this share until their last copy is dropped.
    pub fn hold<T: AsRef<[u8]> + Send + 'static>(self, data: T) -> Bytes {
        Bytes::from_owner(Held { data, _share: self })
    }
}

struct Held<T> {
    data: T,
    _share: Share,
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Held<T> {
    fn as_ref(&self) -> &[u8] {
        self.data.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_lasts_as_long_as_the_last_copy() {
        let reads = WholeReads::new(100);
        let bytes = reads.share(60).unwrap().hold(vec![1u8; 60]);
        let copy = bytes.clone();
        assert!(reads.share(60).is_none(), "past the budget");
        drop(bytes);
        assert_eq!(reads.room(), 40, "a copy is still held");
        drop(copy);
        assert_eq!(reads.room(), 100);
        assert!(
            reads.share(READ_WHOLE + 1).is_none(),
            "too large to read whole"
        );
        let files = reads.clone().up_to(50);
        assert!(files.share(51).is_none(), "past its own limit");
        assert!(files.share(50).is_some());
        let kept = reads.charged(&Bytes::from(vec![2u8; 70])).unwrap();
        assert!(reads.charged(&Bytes::from(vec![3u8; 40])).is_none());
        drop(kept);
        assert_eq!(reads.room(), 100);
    }
}
