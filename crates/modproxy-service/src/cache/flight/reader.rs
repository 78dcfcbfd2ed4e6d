//! A waiter reading a streamed body: from the spool file behind its
//! writer, then from the relay if the spool failed.

use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::broadcast;

use super::spool::Found;
use super::{abandoned, finished, FlightState, Joined, Landed, SpoolFile, Spooled, Stream};

/// Largest and smallest piece a waiter reads from a spool file itself
/// (when no recent piece has its bytes): hundreds of waiters may each hold
/// one, so the size shrinks as they grow in number, to keep all of them
/// together within [`READ_BUDGET`].
const READ_CHUNK: (u64, u64) = (64 * 1024, 16 * 1024);
const READ_BUDGET: u64 = 16 << 20;

/// Reads a streamed object from the start: from the spool behind its
/// writer, then from the relay if the spool failed. Made by
/// `flight::started` for a flight that streams.
pub struct SpoolReader {
    joined: Joined,
    offset: u64,
    /// The spool this reader is counted on, once it has one.
    on: Option<Arc<SpoolFile>>,
}

/// Where the next bytes of a streamed object are.
struct Snapshot {
    stream: Stream,
    /// The fetch has ended: nothing more will be spooled or relayed.
    complete: bool,
}

impl Drop for SpoolReader {
    fn drop(&mut self) {
        if let Some(spool) = &self.on {
            spool.remove_reader();
        }
    }
}

impl SpoolReader {
    pub(super) fn new(joined: Joined) -> SpoolReader {
        SpoolReader {
            joined,
            offset: 0,
            on: None,
        }
    }

    /// How much a waiter of `spool` reads from the file at once now: a
    /// power of two, so blocks read by different waiters line up.
    fn chunk(spool: &SpoolFile) -> u64 {
        let readers = spool.readers().max(1);
        let size = (READ_BUDGET / readers).clamp(READ_CHUNK.1, READ_CHUNK.0);
        1 << (63 - size.leading_zeros())
    }

    fn snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        let state = self.joined.rx.borrow_and_update();
        Ok(Some(match &*state {
            FlightState::Pending => return Ok(None),
            FlightState::Streaming { stream, .. } => Snapshot {
                stream: stream.clone(),
                complete: false,
            },
            FlightState::Done(Ok(Landed::Stream(stream))) => Snapshot {
                stream: stream.clone(),
                complete: true,
            },
            FlightState::Done(Ok(Landed::Bytes(_) | Landed::Stored)) => {
                return Err(io::Error::other("internal error: no stream to read"))
            }
            FlightState::Done(Err(e)) => return Err(io::Error::other(e.clone())),
        }))
    }

    /// The next bytes, `None` at the end, an error if the fetch failed.
    pub async fn next(&mut self) -> Option<io::Result<Bytes>> {
        loop {
            let snap = match self.snapshot() {
                Ok(s) => s,
                Err(e) => return Some(Err(e)),
            };
            if let Some(snap) = snap {
                let spooled = snap.stream.spooled().filter(|s| self.offset < s.len);
                if let Some(Spooled { file, len }) = spooled.cloned() {
                    if self.on.is_none() {
                        file.add_reader();
                        self.on = Some(Arc::clone(&file));
                    }
                    return Some(self.read_spool(file, len).await);
                }
                if snap.stream.relay_from().is_some_and(|x| self.offset >= x) {
                    return self.read_relay().await;
                }
                if snap.complete {
                    return None;
                }
            }
            if self.joined.rx.changed().await.is_err() {
                return Some(Err(io::Error::other(abandoned().to_string())));
            }
        }
    }

    async fn read_spool(&mut self, spool: Arc<SpoolFile>, available: u64) -> io::Result<Bytes> {
        let offset = self.offset;
        let read = match spool.find(offset, available) {
            Found::Memory(shared) => shared,
            Found::File { written } => {
                // A whole aligned block, kept for the waiters just behind,
                // of what the file holds.
                let chunk = Self::chunk(&spool);
                let start = offset - offset % chunk;
                let len = (available.min(written) - start).min(chunk) as usize;
                // Allocated here, not on a blocking thread: pieces then come
                // from the few runtime threads' allocator arenas instead of
                // one per blocking thread (which kept RSS high).
                let mut buf = vec![0; len];
                // Just written, so usually in the page cache: read here,
                // without a trip to the blocking pool (which the first
                // byte of a cold zip would wait for).
                let block = if crate::nowait::read_at(&spool.file, &mut buf, start) == Some(len) {
                    Bytes::from(buf)
                } else {
                    let file = Arc::clone(&spool);
                    tokio::task::spawn_blocking(move || {
                        file.file.read_exact_at(&mut buf, start)?;
                        Ok::<_, io::Error>(Bytes::from(buf))
                    })
                    .await
                    .unwrap_or_else(|e| Err(io::Error::other(e)))?
                };
                spool.remember(start, block.clone());
                block.slice((offset - start) as usize..)
            }
        };
        self.offset += read.len() as u64;
        Ok(read)
    }

    async fn read_relay(&mut self) -> Option<io::Result<Bytes>> {
        loop {
            match self.joined.relay.recv().await {
                Ok((at, bytes)) => {
                    let end = at + bytes.len() as u64;
                    if end <= self.offset {
                        continue;
                    }
                    if at > self.offset {
                        return Some(Err(io::Error::other("internal error: relay gap")));
                    }
                    let piece = bytes.slice((self.offset - at) as usize..);
                    self.offset = end;
                    return Some(Ok(piece));
                }
                Err(broadcast::error::RecvError::Closed) => {
                    // The fetch ended: its final state says how.
                    return match finished(&mut self.joined.rx).await {
                        Ok(_) => None,
                        Err(e) => Some(Err(io::Error::other(e))),
                    };
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    return Some(Err(io::Error::other("internal error: relay overrun")))
                }
            }
        }
    }
}
