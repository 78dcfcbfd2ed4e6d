//! Request coalescing: one upstream fetch per missing object, however many
//! requests wait for it.
//!
//! A flight is a running fetch. It runs in its own task, so a client that
//! goes away does not cancel what the store and other waiters still need,
//! and publishes its progress, a [`FlightState`], on a `watch` channel:
//!
//! ```text
//!             ┌──► Done(Ok(Bytes))    a small file or small zip, checked
//!   Pending ──┼──► Done(Ok(Stored))   a racing fetch stored it just before
//!      │      └──► Done(Err)          not found; upstream or check failed
//!      │ a large zip's headers are in
//!      ├──────────► Streaming(Spool) ──► Done(Ok(Stream(Spool)))   verified
//!      │                  │ a spool write fails
//!      │ no spool file    ▼ (zips the checksum database does not cover)
//!      └──────────► Streaming(Relay) ──► Done(Ok(Stream(Relay)))   not cached
//!
//!   Streaming(…) ──► Done(Err) on any failure, and when a relay has no
//!   waiter left.
//! ```
//!
//! While `Streaming(Spool)`, a large body is written to a spool file and
//! waiters read it behind the writer (every waiter gets bytes as they
//! arrive and nothing big is held in memory; the piece being written is
//! read from memory until its write lands); the end of a zip stays
//! hidden until it is verified. When the spool cannot be written (disk
//! full, I/O error), the rest of the body goes to the waiters through the
//! [`relay`] instead: they are still served, nothing is cached. Every
//! waiter subscribes to the relay when it joins, so it cannot miss a
//! relayed piece; one that joins after pieces went out fetches on its own
//! ([`Joined::missed_relay`]).
//!
//! Waiters see a flight through [`started`] (how to begin the answer: a
//! [`SpoolReader`] on the stream, bytes, or "in the store"), [`finished`]
//! (how it ended) and the [`SpoolReader`]. After `Done` the fetch task
//! publishes what it fetched to the store; the flight stays joinable (and
//! answers the same way) until that is done.

mod reader;
mod relay;
mod spool;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::watch;

use crate::error::ServeError;
use crate::sync::Locked;
use tokio_util::task::TaskTracker;

pub use reader::SpoolReader;
pub use relay::{Abandoned, Relay, RelayReceiver};
pub use spool::SpoolFile;

/// A spool file and how many of its first bytes waiters may read.
#[derive(Debug, Clone)]
pub struct Spooled {
    pub file: Arc<SpoolFile>,
    pub len: u64,
}

/// Where the bytes of a large body are, for its waiters.
#[derive(Debug, Clone)]
pub enum Stream {
    /// In the spool file (all of it once the flight is done).
    Spool(Spooled),
    /// The bytes the spool file holds (none without one), then the rest
    /// through the relay.
    Relay {
        spooled: Option<Spooled>,
        /// The end of the pieces relayed so far (updated before each
        /// send; 0 before the first).
        relayed: u64,
    },
}

impl Stream {
    /// The part in the spool file.
    pub fn spooled(&self) -> Option<&Spooled> {
        match self {
            Stream::Spool(s) => Some(s),
            Stream::Relay { spooled, .. } => spooled.as_ref(),
        }
    }

    /// Where the relayed part starts, when there is one.
    pub fn relay_from(&self) -> Option<u64> {
        match self {
            Stream::Spool(_) => None,
            Stream::Relay { spooled, .. } => Some(spooled.as_ref().map_or(0, |s| s.len)),
        }
    }
}

/// What a finished fetch produced.
#[derive(Debug, Clone)]
pub enum Landed {
    /// A small object, kept in memory.
    Bytes(Bytes),
    /// A large object: whole in the spool file (published unless the store
    /// failed), or partly spooled and the rest relayed (not cached).
    Stream(Stream),
    /// Nothing fetched: a racing fetch published it to the store just before.
    Stored,
}

/// The progress of a fetch, as waiters see it (see the module docs).
#[derive(Debug, Clone)]
pub enum FlightState {
    /// The upstream has not answered yet.
    Pending,
    /// A large body is arriving.
    Streaming {
        /// As announced by the upstream.
        length: Option<u64>,
        stream: Stream,
    },
    Done(Result<Landed, ServeError>),
}

/// The sending half, held by the fetch task.
pub type Progress = watch::Sender<FlightState>;

/// A waiter's view of a flight.
pub struct Joined {
    pub rx: watch::Receiver<FlightState>,
    pub relay: RelayReceiver,
}

impl Joined {
    /// Whether the flight has relayed pieces this waiter can no longer
    /// receive (it joined too late).
    pub fn missed_relay(&self) -> bool {
        match &*self.rx.borrow() {
            FlightState::Streaming {
                stream: Stream::Relay { relayed, .. },
                ..
            } => *relayed > 0,
            FlightState::Done(Ok(Landed::Stream(Stream::Relay { .. }))) => true,
            _ => false,
        }
    }
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
        let (relay, relay_rx) = Relay::new();
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
        let (relay, relay_rx) = Relay::new();
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

/// How a waiter begins its answer.
pub enum Started {
    /// A large body: read it as it arrives; its length if announced.
    Stream {
        reader: SpoolReader,
        length: Option<u64>,
    },
    /// A small object, whole.
    Bytes(Bytes),
    /// It is in the store (a racing fetch put it there).
    Stored,
}

/// Waits until the fetch has an answer to start a response with: the first
/// bytes of a stream, a relay, or the end. A stream with nothing to show
/// yet is not one: a small zip is held back whole until verified, and if
/// it fails the client gets an error status, not a connection closed
/// before its response headers.
pub async fn started(mut joined: Joined) -> Result<Started, ServeError> {
    loop {
        // `Some(length)` once a stream has something to read.
        let readable = match &*joined.rx.borrow_and_update() {
            FlightState::Pending => None,
            FlightState::Streaming { stream, length } => {
                let nothing_yet = matches!(stream, Stream::Spool(s) if s.len == 0);
                (!nothing_yet).then_some(*length)
            }
            FlightState::Done(Ok(Landed::Stream(stream))) => Some(match stream {
                Stream::Spool(s) => Some(s.len),
                Stream::Relay { .. } => None,
            }),
            FlightState::Done(Ok(Landed::Bytes(bytes))) => {
                return Ok(Started::Bytes(bytes.clone()))
            }
            FlightState::Done(Ok(Landed::Stored)) => return Ok(Started::Stored),
            FlightState::Done(Err(e)) => return Err(e.clone()),
        };
        if let Some(length) = readable {
            let reader = SpoolReader::new(joined);
            return Ok(Started::Stream { reader, length });
        }
        if joined.rx.changed().await.is_err() {
            return Err(abandoned());
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
