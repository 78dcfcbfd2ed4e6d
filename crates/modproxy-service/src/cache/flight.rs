//! Request coalescing: one upstream fetch per missing object, however many
//! requests wait for it.
//!
//! A flight is a running fetch. Its progress is published on a `watch`
//! channel: `Pending` until the upstream answers, then `Streaming` while a
//! large body is written to a spool file (waiters read the spool behind the
//! writer, so every waiter gets bytes as they arrive and nothing big is held
//! in memory), then `Done`. The fetch runs in its own task, so a client that
//! goes away does not cancel what the store and other waiters still need.
//!
//! When the spool cannot be written (disk full, I/O error), the rest of the
//! body is relayed to the waiters through a bounded broadcast channel
//! instead: they are still served, nothing is cached, and the fetcher slows
//! to the slowest waiter rather than buffering. Every waiter subscribes to
//! the relay when it joins, so it cannot miss a relayed piece.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::future::Future;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::{broadcast, watch};

use crate::error::ServeError;
use crate::sync::Locked;
use tokio_util::task::TaskTracker;

/// Largest and smallest piece a waiter reads from a spool file itself
/// (when no recent piece has its bytes): hundreds of waiters may each hold
/// one, so the size shrinks as they grow in number, to keep all of them
/// together within [`READ_BUDGET`].
const READ_CHUNK: (u64, u64) = (64 * 1024, 16 * 1024);
const READ_BUDGET: u64 = 16 << 20;
/// Bytes of recent spool pieces kept in memory for the waiters.
const RECENT_BYTES: usize = 8 << 20;
/// Relay pieces in flight before the fetcher waits for the slowest waiter.
pub const RELAY_CAPACITY: usize = 64;

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
        if self.readers.load(Ordering::Relaxed) < 2 {
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
    fn recent_from(&self, offset: u64, available: u64) -> Option<Bytes> {
        let recent = self.recent.locked();
        let (start, piece) = recent
            .pieces
            .iter()
            .find(|(start, b)| *start <= offset && offset < start + b.len() as u64)?;
        let end = (start + piece.len() as u64).min(available);
        (end > offset).then(|| piece.slice((offset - start) as usize..(end - start) as usize))
    }
}

/// What a finished fetch produced.
#[derive(Debug, Clone)]
pub enum Landed {
    /// A small object, kept in memory.
    Bytes(Bytes),
    /// A large object in the spool file (published unless the store failed).
    Spool { file: Arc<SpoolFile>, size: u64 },
    /// A large object partly spooled, the rest relayed; not cached.
    Relayed {
        file: Option<Arc<SpoolFile>>,
        spooled: u64,
    },
    /// Nothing fetched: a racing fetch published it to the store just before.
    Stored,
}

/// The progress of a fetch, as waiters see it.
#[derive(Debug, Clone)]
pub enum FlightState {
    Pending,
    Streaming {
        /// The spool file, readable up to `written`.
        file: Option<Arc<SpoolFile>>,
        written: u64,
        length: Option<u64>,
        /// Bytes from here on come through the relay.
        relay_from: Option<u64>,
        /// Bytes sent through the relay so far (updated before each send).
        relayed: u64,
    },
    Done(Result<Landed, ServeError>),
}

/// The sending half, held by the fetch task.
pub type Progress = watch::Sender<FlightState>;
/// Pieces `(offset, bytes)` relayed when the spool fails.
pub type Relay = broadcast::Sender<(u64, Bytes)>;

/// A waiter's view of a flight.
pub struct Joined {
    pub rx: watch::Receiver<FlightState>,
    pub relay: broadcast::Receiver<(u64, Bytes)>,
}

struct Running {
    id: u64,
    rx: watch::Receiver<FlightState>,
    relay: Relay,
}

/// Fetches in flight, by store key.
#[derive(Default)]
pub struct Flights {
    running: Mutex<HashMap<String, Running>>,
    next_id: Mutex<u64>,
    /// Fetches that have written to the store so far (see [`Flights::landed`]).
    landed: AtomicU64,
    /// Every fetch task, so shutdown can wait for them to land.
    pub background: TaskTracker,
}

impl Flights {
    /// How many fetches have written to the store so far. Read before a
    /// look in the store that finds no fresh copy: while it is unchanged,
    /// no fetch of this process has stored anything since, so the look
    /// still holds and a fetch started from it need not look again (other
    /// replicas' writes are covered by `--lock`, which looks again).
    pub fn landed(&self) -> u64 {
        self.landed.load(Ordering::SeqCst)
    }

    /// Counts a fetch's store writes, once they are done (and before its
    /// flight ends, so a request that no longer finds the flight sees the
    /// count moved).
    pub fn note_landed(&self) {
        self.landed.fetch_add(1, Ordering::SeqCst);
    }

    /// Joins the fetch of `key`, starting it with `start` if none is running.
    pub fn join<F, Fut>(self: &Arc<Self>, key: &str, start: F) -> Joined
    where
        F: FnOnce(Progress, Relay) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let mut running = self.running.locked();
        if let Some(r) = running.get(key) {
            return Joined {
                rx: r.rx.clone(),
                relay: r.relay.subscribe(),
            };
        }
        let id = {
            let mut next = self.next_id.locked();
            *next += 1;
            *next
        };
        let (tx, rx) = watch::channel(FlightState::Pending);
        let (relay, relay_rx) = broadcast::channel(RELAY_CAPACITY);
        running.insert(
            key.to_string(),
            Running {
                id,
                rx: rx.clone(),
                relay: relay.clone(),
            },
        );
        drop(running);

        let fetch = start(tx, relay);
        let cleanup = Cleanup {
            flights: Arc::clone(self),
            key: key.to_string(),
            id,
        };
        self.background.spawn(async move {
            fetch.await;
            drop(cleanup);
        });
        Joined {
            rx,
            relay: relay_rx,
        }
    }

    /// Starts a fetch that nobody else can join (for a waiter that came too
    /// late to a relayed flight).
    pub fn solo<F, Fut>(&self, start: F) -> Joined
    where
        F: FnOnce(Progress, Relay) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (tx, rx) = watch::channel(FlightState::Pending);
        let (relay, relay_rx) = broadcast::channel(RELAY_CAPACITY);
        self.background.spawn(start(tx, relay));
        Joined {
            rx,
            relay: relay_rx,
        }
    }
}

/// Removes a flight from the map when its task ends, even by a panic, so
/// the next request for the key starts a new fetch.
struct Cleanup {
    flights: Arc<Flights>,
    key: String,
    id: u64,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let mut running = self.flights.running.locked();
        if running.get(&self.key).is_some_and(|r| r.id == self.id) {
            running.remove(&self.key);
        }
    }
}

/// Waits until the fetch has an answer to start a response with: the first
/// bytes of a stream, a relay, or the end. A stream with nothing to show
/// yet is not one: a small zip is held back whole until verified, and if
/// it fails the client gets an error status, not a connection closed
/// before its response headers.
pub async fn started(rx: &mut watch::Receiver<FlightState>) -> FlightState {
    loop {
        let state = rx.borrow_and_update().clone();
        let nothing_yet = match &state {
            FlightState::Pending => true,
            FlightState::Streaming {
                written,
                relay_from,
                ..
            } => *written == 0 && relay_from.is_none(),
            FlightState::Done(_) => false,
        };
        if !nothing_yet {
            return state;
        }
        if rx.changed().await.is_err() {
            return FlightState::Done(Err(abandoned()));
        }
    }
}

/// Waits for the end of the fetch.
pub async fn finished(rx: &mut watch::Receiver<FlightState>) -> Result<Landed, ServeError> {
    loop {
        if let FlightState::Done(result) = &*rx.borrow_and_update() {
            return result.clone();
        }
        if rx.changed().await.is_err() {
            return Err(abandoned());
        }
    }
}

fn abandoned() -> ServeError {
    crate::error::Internal::Abandoned.into()
}

impl Drop for SpoolReader {
    fn drop(&mut self) {
        if let Some(spool) = &self.on {
            spool.readers.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Where the next bytes of a streamed object are.
struct Snapshot {
    file: Option<Arc<SpoolFile>>,
    spooled: u64,
    relay_from: Option<u64>,
    complete: bool,
}

/// Reads a streamed object from the start: from the spool behind its
/// writer, then from the relay if the spool failed.
pub struct SpoolReader {
    joined: Joined,
    offset: u64,
    /// The spool this reader is counted on, once it has one.
    on: Option<Arc<SpoolFile>>,
}

impl SpoolReader {
    pub fn new(joined: Joined) -> SpoolReader {
        SpoolReader {
            joined,
            offset: 0,
            on: None,
        }
    }

    /// How much a waiter of `spool` reads from the file at once now: a
    /// power of two, so blocks read by different waiters line up.
    fn chunk(spool: &SpoolFile) -> u64 {
        let readers = spool.readers.load(Ordering::Relaxed).max(1);
        let size = (READ_BUDGET / readers).clamp(READ_CHUNK.1, READ_CHUNK.0);
        1 << (63 - size.leading_zeros())
    }

    fn snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        let state = self.joined.rx.borrow_and_update();
        Ok(Some(match &*state {
            FlightState::Pending => return Ok(None),
            FlightState::Streaming {
                file,
                written,
                relay_from,
                ..
            } => Snapshot {
                file: file.clone(),
                spooled: *written,
                relay_from: *relay_from,
                complete: false,
            },
            FlightState::Done(Ok(Landed::Spool { file, size })) => Snapshot {
                file: Some(Arc::clone(file)),
                spooled: *size,
                relay_from: None,
                complete: true,
            },
            FlightState::Done(Ok(Landed::Relayed { file, spooled })) => Snapshot {
                file: file.clone(),
                spooled: *spooled,
                relay_from: Some(*spooled),
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
                if let Some(file) = snap.file.filter(|_| self.offset < snap.spooled) {
                    if self.on.is_none() {
                        file.readers.fetch_add(1, Ordering::Relaxed);
                        self.on = Some(Arc::clone(&file));
                    }
                    return Some(self.read_spool(file, snap.spooled).await);
                }
                if snap.relay_from.is_some_and(|x| self.offset >= x) {
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
        let read = match spool.recent_from(offset, available) {
            Some(shared) => shared,
            None => {
                // A whole aligned block, kept for the waiters just behind.
                let chunk = Self::chunk(&spool);
                let start = offset - offset % chunk;
                let len = (available - start).min(chunk) as usize;
                // Allocated here, not on a blocking thread: pieces then come
                // from the few runtime threads' allocator arenas instead of
                // one per blocking thread (which kept RSS high).
                let mut buf = vec![0; len];
                let block = tokio::task::spawn_blocking(move || {
                    spool.file.read_exact_at(&mut buf, start)?;
                    let block = Bytes::from(buf);
                    spool.remember(start, block.clone());
                    Ok::<_, io::Error>(block)
                })
                .await
                .unwrap_or_else(|e| Err(io::Error::other(e)))?;
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
