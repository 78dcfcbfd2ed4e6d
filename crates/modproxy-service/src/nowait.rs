//! File I/O that never waits for the disk: done on a runtime thread when
//! the kernel has what it needs in memory (the usual case for a hit),
//! and `None` otherwise, so the caller goes to the blocking pool. A trip
//! there costs two thread wake-ups, more than a cached open or read.

use std::fs::File;
use std::io;
use std::path::Path;

/// Opens `path` read-only if every step of its lookup is in the dentry
/// cache (`RESOLVE_CACHED`, Linux 5.12+). `Some(Err(NotFound))` is a
/// cached answer that it is not there. `O_NONBLOCK`: something other
/// than a file (a FIFO) does not wait for a writer. Meant for a store on
/// a local filesystem: on FUSE the open itself asks the daemon.
#[cfg(target_os = "linux")]
pub fn open(path: &Path) -> Option<io::Result<File>> {
    use rustix::fs::{openat2, Mode, OFlags, ResolveFlags, CWD};
    use rustix::io::Errno;
    use std::sync::atomic::{AtomicBool, Ordering};
    /// Set once the kernel has refused `openat2` or the flag.
    static UNSUPPORTED: AtomicBool = AtomicBool::new(false);
    if UNSUPPORTED.load(Ordering::Relaxed) {
        return None;
    }
    match openat2(
        CWD,
        path,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
        ResolveFlags::CACHED,
    ) {
        Ok(fd) => Some(Ok(File::from(fd))),
        Err(e @ (Errno::NOENT | Errno::NOTDIR)) => Some(Err(e.into())),
        // An older kernel, or a sandbox that denies the call.
        Err(Errno::NOSYS | Errno::INVAL | Errno::PERM) => {
            UNSUPPORTED.store(true, Ordering::Relaxed);
            None
        }
        // EAGAIN: not all cached.
        Err(_) => None,
    }
}

#[cfg(not(target_os = "linux"))]
pub fn open(_: &Path) -> Option<io::Result<File>> {
    None
}

/// Fills `buf` from `file` at `offset` (less only at its end) if the page
/// cache holds all of it (`RWF_NOWAIT`); how much.
#[cfg(target_os = "linux")]
pub fn read_at(file: &File, buf: &mut [u8], offset: u64) -> Option<usize> {
    use rustix::io::{preadv2, Errno, ReadWriteFlags};
    let mut filled = 0;
    while filled < buf.len() {
        let at = offset + filled as u64;
        let mut slice = [io::IoSliceMut::new(&mut buf[filled..])];
        match preadv2(file, &mut slice, at, ReadWriteFlags::NOWAIT) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(Errno::INTR) => {}
            // EAGAIN: not all in memory; EOPNOTSUPP and others: the
            // caller reads the plain way.
            Err(_) => return None,
        }
    }
    Some(filled)
}

#[cfg(not(target_os = "linux"))]
pub fn read_at(_: &File, _: &mut [u8], _: u64) -> Option<usize> {
    None
}

/// Whether the page cache seems to hold `len` bytes of `file` at
/// `offset`: a probe of the first and last byte (pages between them may
/// be gone; for a piece of a file read in order they seldom are).
pub fn holds(file: &File, offset: u64, len: usize) -> bool {
    let mut byte = [0];
    let last = offset + len.saturating_sub(1) as u64;
    read_at(file, &mut byte, offset).is_some() && read_at(file, &mut byte, last).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_file_is_opened_and_read_from_memory() {
        let dir = std::env::temp_dir().join(format!("modproxy-nowait-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        std::fs::write(&path, b"hello").unwrap();
        // Just written: its dentry and pages are in memory.
        let file = open(&path).expect("answered from the cache").unwrap();
        let mut buf = [0; 8];
        assert_eq!(read_at(&file, &mut buf, 0), Some(5));
        assert_eq!(&buf[..5], b"hello");
        // A name never looked up is not cached either way; after one
        // plain lookup its absence is.
        let nope = dir.join("nope");
        assert!(std::fs::File::open(&nope).is_err());
        let missing = open(&nope).expect("a cached miss");
        assert_eq!(missing.unwrap_err().kind(), io::ErrorKind::NotFound);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
