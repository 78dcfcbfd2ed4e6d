//! The memory of stored files on their way to clients: one budget all
//! answers share (`--body-buffers`), counted in pieces of [`PIECE`] bytes
//! from their read until the connection has written them. An answer
//! whose next piece does not fit waits its turn, so memory is bounded by
//! the budget, not by the number of clients.
//!
//! Piece buffers are reused (at most a budget's worth is kept): a fresh
//! 128 KiB buffer per piece cost more than copying into it (the
//! allocator maps and unmaps it, and every page faults in again).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::sync::Locked;

/// Size of one piece of a stored file or object on its way to a client.
pub const PIECE: usize = 128 * 1024;

/// The shared budget and the buffers kept for reuse.
#[derive(Clone)]
pub struct Pieces {
    /// Permits are pieces.
    budget: Arc<Semaphore>,
    free: Arc<Mutex<Vec<Vec<u8>>>>,
    keep: usize,
}

impl Pieces {
    /// A budget of `bytes` (at least one piece).
    pub fn new(bytes: u64) -> Pieces {
        let pieces = (bytes as usize / PIECE).clamp(1, Semaphore::MAX_PERMITS);
        Pieces {
            budget: Arc::new(Semaphore::new(pieces)),
            free: Arc::default(),
            keep: pieces,
        }
    }

    /// Room for one piece, waited for, and a buffer for it.
    async fn room(&self) -> (OwnedSemaphorePermit, Vec<u8>) {
        let permit = Arc::clone(&self.budget)
            .acquire_owned()
            .await
            .expect("the budget is never closed");
        // Taken (or made) here, not on a blocking thread: buffers then
        // come from the runtime threads' allocator arenas, not one arena
        // per blocking thread (which kept memory high).
        let buf = self.free.locked().pop().unwrap_or_else(|| vec![0; PIECE]);
        (permit, buf)
    }

    /// The piece of `file` at `offset` (`None` at its end).
    /// Read here when the page cache has it all (a hit's usual case),
    /// else on the blocking pool: a trip there per piece cost more CPU
    /// than the copies themselves (the thread wake-ups).
    pub async fn read_file(
        &self,
        file: &Arc<std::fs::File>,
        offset: u64,
    ) -> io::Result<Option<Bytes>> {
        let (permit, mut buf) = self.room().await;
        let cached = crate::nowait::read_at(file, &mut buf, offset);
        if let Some(len) = cached {
            return Ok(self.piece(permit, buf, len));
        }
        let file = Arc::clone(file);
        let (buf, read) = tokio::task::spawn_blocking(move || {
            let read = read_at(&file, &mut buf, offset);
            (buf, read)
        })
        .await
        .map_err(io::Error::other)?;
        Ok(self.piece(permit, buf, read?))
    }

    /// Reads `len` bytes of `file` at `offset` into the page cache (for
    /// `sendfile`), on the blocking pool, through a piece buffer held
    /// within the budget meanwhile.
    pub async fn read_in(
        &self,
        file: &Arc<std::fs::File>,
        offset: u64,
        len: usize,
    ) -> io::Result<()> {
        let (permit, mut buf) = self.room().await;
        let file = Arc::clone(file);
        let (buf, read) = tokio::task::spawn_blocking(move || {
            let mut done = 0;
            let read = loop {
                if done >= len {
                    break Ok(());
                }
                let want = buf.len().min(len - done);
                match read_at(&file, &mut buf[..want], offset + done as u64) {
                    Ok(0) => break Ok(()),
                    Ok(n) => done += n,
                    Err(e) => break Err(e),
                }
            };
            (buf, read)
        })
        .await
        .map_err(io::Error::other)?;
        // An empty piece: the buffer and its share go straight back.
        drop(self.piece(permit, buf, 0));
        read
    }

    /// The next piece of `reader` (`None` at its end).
    pub async fn read_stream(
        &self,
        reader: &mut Pin<Box<dyn AsyncRead + Send>>,
    ) -> io::Result<Option<Bytes>> {
        let (permit, mut buf) = self.room().await;
        let mut filled = 0;
        while filled < PIECE {
            match reader.read(&mut buf[filled..]).await? {
                0 => break,
                n => filled += n,
            }
        }
        Ok(self.piece(permit, buf, filled))
    }

    /// The first `len` bytes of `buf` as a piece holding its share of the
    /// budget until dropped; an empty one is the end.
    fn piece(&self, permit: OwnedSemaphorePermit, buf: Vec<u8>, len: usize) -> Option<Bytes> {
        let held = Held {
            buf,
            len,
            _permit: permit,
            pieces: self.clone(),
        };
        (len > 0).then(|| Bytes::from_owner(held))
    }
}

/// A piece's buffer and its share of the budget, given back together
/// when the connection drops the piece.
struct Held {
    buf: Vec<u8>,
    len: usize,
    _permit: OwnedSemaphorePermit,
    pieces: Pieces,
}

impl AsRef<[u8]> for Held {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut free = self.pieces.free.locked();
        if free.len() < self.pieces.keep {
            free.push(std::mem::take(&mut self.buf));
        }
    }
}

/// Fills `buf` from `file` at `offset` (less only at its end); how much.
fn read_at(file: &std::fs::File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pieces_wait_for_room_and_buffers_are_reused() {
        let pieces = Pieces::new(2 * PIECE as u64);
        let path = std::env::temp_dir().join(format!("modproxy-pieces-{}", std::process::id()));
        std::fs::write(&path, vec![7u8; 3 * PIECE + 10]).unwrap();
        let file = Arc::new(std::fs::File::open(&path).unwrap());
        std::fs::remove_file(&path).unwrap();
        let a = pieces.read_file(&file, 0).await.unwrap().unwrap();
        let b = pieces
            .read_file(&file, PIECE as u64)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((a.len(), b.len()), (PIECE, PIECE));
        // The budget is spent: the third waits until a piece is dropped.
        let third = pieces.read_file(&file, 3 * PIECE as u64);
        tokio::pin!(third);
        let waited = tokio::time::timeout(std::time::Duration::from_millis(50), &mut third);
        assert!(waited.await.is_err(), "read past the budget");
        let reused = a.as_ptr();
        drop(a);
        let c = third.await.unwrap().unwrap();
        assert_eq!(c.len(), 10);
        assert_eq!(c.as_ptr(), reused, "the dropped piece's buffer is reused");
        drop((b, c));
        assert!(pieces
            .read_file(&file, 4 * PIECE as u64)
            .await
            .unwrap()
            .is_none());
    }
}
