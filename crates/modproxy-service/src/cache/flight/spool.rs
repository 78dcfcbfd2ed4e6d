//! The spool file of a flight, as its waiters share it: the file, and its
//! most recently written or read pieces kept in memory.

use std::collections::VecDeque;
use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use bytes::Bytes;

use crate::sync::Locked;

/// Bytes of recent spool pieces kept in memory for the waiters.
const RECENT_BYTES: usize = 8 << 20;

/// A spool file with its most recently written or read pieces also in
/// memory: hundreds of waiters on one download move through it close
/// together, and share those pieces instead of each reading and holding
/// its own copy (memory stays flat in the number of waiters).
pub struct SpoolFile {
    pub file: File,
    recent: Mutex<Recent>,
    /// Readers on it: pieces are kept only while they can be shared.
    readers: AtomicU64,
}

/// Pieces `(offset, bytes)`, oldest first, and their total size.
#[derive(Default)]
struct Recent {
    pieces: VecDeque<(u64, Bytes)>,
    bytes: usize,
}

impl std::fmt::Debug for SpoolFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpoolFile")
            .field("file", &self.file)
            .finish()
    }
}

impl SpoolFile {
    pub fn new(file: File) -> SpoolFile {
        SpoolFile {
            file,
            recent: Mutex::default(),
            readers: AtomicU64::new(0),
        }
    }

    /// Keeps `piece`, just written or read at `offset`, dropping the oldest
    /// pieces beyond [`RECENT_BYTES`].
    pub fn remember(&self, offset: u64, piece: Bytes) {
        let mut recent = self.recent.locked();
        if self.readers() < 2 {
            // Nobody to share with (a prefetch, a single client).
            *recent = Recent::default();
            return;
        }
        recent.bytes += piece.len();
        recent.pieces.push_back((offset, piece));
        while recent.bytes > RECENT_BYTES {
            match recent.pieces.pop_front() {
                Some((_, b)) => recent.bytes -= b.len(),
                None => break,
            }
        }
    }

    /// The remembered bytes from `offset` on, up to `available`.
    pub(super) fn recent_from(&self, offset: u64, available: u64) -> Option<Bytes> {
        let recent = self.recent.locked();
        let (start, piece) = recent
            .pieces
            .iter()
            .find(|(start, b)| *start <= offset && offset < start + b.len() as u64)?;
        let end = (start + piece.len() as u64).min(available);
        (end > offset).then(|| piece.slice((offset - start) as usize..(end - start) as usize))
    }

    /// How many readers are on it.
    pub(super) fn readers(&self) -> u64 {
        self.readers.load(Ordering::Relaxed)
    }

    /// A reader starts reading it.
    pub(super) fn add_reader(&self) {
        self.readers.fetch_add(1, Ordering::Relaxed);
    }

    /// A reader is done with it.
    pub(super) fn remove_reader(&self) {
        self.readers.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spool(label: &str) -> SpoolFile {
        let name = format!("modproxy-spool-{label}-{}", std::process::id());
        let path = std::env::temp_dir().join(name);
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        let spool = SpoolFile::new(file);
        spool.readers.store(2, Ordering::Relaxed);
        spool
    }

    #[test]
    fn recent_pieces_are_shared_up_to_what_is_visible() {
        let spool = spool("visible");
        spool.remember(0, Bytes::from_static(b"hello "));
        spool.remember(6, Bytes::from_static(b"world"));
        assert_eq!(spool.recent_from(2, 11).as_deref(), Some(&b"llo "[..]));
        // Not past what waiters may see (the unverified tail).
        assert_eq!(spool.recent_from(6, 8).as_deref(), Some(&b"wo"[..]));
        assert_eq!(spool.recent_from(8, 8), None);
        assert_eq!(spool.recent_from(11, 20), None);
    }

    #[test]
    fn nothing_is_kept_without_two_readers_to_share_it() {
        let spool = spool("alone");
        spool.readers.store(1, Ordering::Relaxed);
        spool.remember(0, Bytes::from_static(b"hello"));
        assert_eq!(spool.recent_from(0, 5), None);
        assert_eq!(spool.recent.lock().unwrap().bytes, 0);
    }

    #[test]
    fn recent_pieces_stay_within_their_budget() {
        let spool = spool("budget");
        let piece = Bytes::from(vec![7u8; 1 << 20]);
        for i in 0..20u64 {
            spool.remember(i << 20, piece.clone());
        }
        assert_eq!(spool.recent_from(0, u64::MAX), None, "oldest dropped");
        assert!(spool.recent_from(19 << 20, u64::MAX).is_some());
        let recent = spool.recent.lock().unwrap();
        assert!(recent.bytes <= RECENT_BYTES);
    }
}
