//! The one walk over a disk store's tree, shared by its size count,
//! eviction scans and module search.

use std::fs::{DirEntry, FileType};
use std::io;
use std::path::Path;

/// Calls `visit(dir, entry, kind)` for every entry under `root`, depth
/// first, leaving out the store's own directories at its root (`.tmp/`,
/// `direct`'s `.vcs/`: module paths never start with a dot). A directory is entered when
/// `visit` returns true for it (the result is ignored for files). At most
/// `max_dirs` directories are read. Failing to read `root` is an error;
/// a directory that vanishes or cannot be read mid-walk is skipped.
pub fn walk(
    root: &Path,
    max_dirs: usize,
    mut visit: impl FnMut(&Path, &DirEntry, FileType) -> bool,
) -> io::Result<()> {
    let mut stack = vec![root.to_path_buf()];
    let mut read = 0;
    while let Some(dir) = stack.pop() {
        read += 1;
        if read > max_dirs {
            break;
        }
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if dir == root => return Err(e),
            Err(_) => continue,
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let ours = dir == root && entry.file_name().as_encoded_bytes().starts_with(b".");
            if ours {
                continue;
            }
            if visit(&dir, &entry, kind) && kind.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    Ok(())
}
