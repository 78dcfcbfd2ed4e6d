//! The spool file of a flight, as its waiters share it: the file, the
//! piece being written to it, and its most recently written or read
//! pieces kept in memory.

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

/// Pieces `(offset, bytes)`, oldest first, and their total size; and the
/// piece on its way to the file.
#[derive(Default)]
struct Recent {
    pieces: VecDeque<(u64, Bytes)>,
    bytes: usize,
    /// The piece being written: waiters read it from here until its write
    /// lands, so the first bytes of a download do not wait for the disk.
    /// The file holds every byte before it.
    unwritten: Option<(u64, Bytes)>,
}

/// Where a waiter finds the bytes at an offset.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Found {
    /// In memory: these, up to what is visible.
    Memory(Bytes),
    /// In the file, which holds them up to `written` (the rest of what is
    /// visible is still being written).
    File { written: u64 },
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

    /// `piece` is about to be written at `offset`, after every byte before
    /// it: waiters read it from memory meanwhile.
    pub fn writing(&self, offset: u64, piece: Bytes) {
        self.recent.locked().unwritten = Some((offset, piece));
    }

    /// The piece being written has landed in the file. (One whose write
    /// failed stays: waiters that saw it shown may still read it, while
    /// the relay carries it and the rest to the others.)
    pub fn written(&self) {
        let piece = self.recent.locked().unwritten.take();
        if let Some((offset, piece)) = piece {
            self.remember(offset, piece);
        }
    }

    /// Keeps `piece`, just written or read at `offset`, dropping the oldest
    /// pieces beyond [`RECENT_BYTES`].
    pub fn remember(&self, offset: u64, piece: Bytes) {
        let mut recent = self.recent.locked();
        if self.readers() < 2 {
            // Nobody to share with (a prefetch, a single client).
            recent.pieces.clear();
            recent.bytes = 0;
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

    /// Where the bytes from `offset` on are, of the first `available`:
    /// a piece in memory holding them, or the file.
    pub(super) fn find(&self, offset: u64, available: u64) -> Found {
        let recent = self.recent.locked();
        let written = recent.unwritten.as_ref().map_or(u64::MAX, |(at, _)| *at);
        let holding = recent
            .unwritten
            .iter()
            .chain(&recent.pieces)
            .find(|(start, b)| *start <= offset && offset < start + b.len() as u64);
        if let Some((start, piece)) = holding {
            let end = (start + piece.len() as u64).min(available);
            if end > offset {
                let part = (offset - start) as usize..(end - start) as usize;
                return Found::Memory(piece.slice(part));
            }
        }
        Found::File { written }
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

    fn memory(b: &'static [u8]) -> Found {
        Found::Memory(Bytes::from_static(b))
    }

    const ANYWHERE: Found = Found::File { written: u64::MAX };

    #[test]
    fn recent_pieces_are_shared_up_to_what_is_visible() {
        let spool = spool("visible");
        spool.remember(0, Bytes::from_static(b"hello "));
        spool.remember(6, Bytes::from_static(b"world"));
        assert_eq!(spool.find(2, 11), memory(b"llo "));
        // Not past what waiters may see (the unverified tail).
        assert_eq!(spool.find(6, 8), memory(b"wo"));
        assert_eq!(spool.find(8, 8), ANYWHERE);
        assert_eq!(spool.find(11, 20), ANYWHERE);
    }

    #[test]
    fn the_piece_being_written_is_read_from_memory_and_the_file_only_before_it() {
        let spool = spool("unwritten");
        spool.readers.store(1, Ordering::Relaxed);
        spool.remember(0, Bytes::from_static(b"hello "));
        spool.writing(6, Bytes::from_static(b"world"));
        // Even for a lone reader, who keeps no recent pieces.
        assert_eq!(spool.find(7, 11), memory(b"orld"));
        assert_eq!(spool.find(0, 10), Found::File { written: 6 });
        spool.written();
        assert_eq!(spool.find(7, 11), ANYWHERE);
    }

    #[test]
    fn nothing_is_kept_without_two_readers_to_share_it() {
        let spool = spool("alone");
        spool.readers.store(1, Ordering::Relaxed);
        spool.remember(0, Bytes::from_static(b"hello"));
        assert_eq!(spool.find(0, 5), ANYWHERE);
        assert_eq!(spool.recent.lock().unwrap().bytes, 0);
    }

    #[test]
    fn recent_pieces_stay_within_their_budget() {
        let spool = spool("budget");
        let piece = Bytes::from(vec![7u8; 1 << 20]);
        for i in 0..20u64 {
            spool.remember(i << 20, piece.clone());
        }
        assert_eq!(spool.find(0, u64::MAX), ANYWHERE, "oldest dropped");
        assert!(matches!(spool.find(19 << 20, u64::MAX), Found::Memory(_)));
        let recent = spool.recent.lock().unwrap();
        assert!(recent.bytes <= RECENT_BYTES);
    }
}
