//! Request coalescing: one upstream fetch per missing object, however many
//! requests wait for it.
//!
//! A [`Flight`] is a running fetch. Its progress is published on a `watch`
//! channel: `Pending` until the upstream answers, then `Streaming` while a
//! large body is written to a spool file (waiters read the spool behind the
//! writer, so every waiter gets bytes as they arrive and nothing big is held
//! in memory), then `Done`. The fetch runs in its own task, so a client that
//! goes away does not cancel what the store and other waiters still need.

use std::collections::HashMap;
use std::fs::File;
use std::future::Future;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::watch;

use crate::error::ServeError;

/// Largest piece a waiter reads from the spool at once.
const READ_CHUNK: u64 = 256 * 1024;

/// What a finished fetch produced.
#[derive(Debug, Clone)]
pub enum Landed {
    /// A small object, kept in memory.
    Bytes(Bytes),
    /// A large object in the (now published) spool file.
    Spool { file: Arc<File>, size: u64 },
    /// Nothing fetched: a racing fetch published it to the store just before.
    Stored,
}

/// The progress of a fetch, as waiters see it.
#[derive(Debug, Clone)]
pub enum FlightState {
    Pending,
    Streaming {
        file: Arc<File>,
        written: u64,
        length: Option<u64>,
    },
    Done(Result<Landed, ServeError>),
}

/// The sending half, held by the fetch task.
pub type Progress = watch::Sender<FlightState>;

/// Fetches in flight, by store key.
#[derive(Debug, Default)]
pub struct Flights {
    running: Mutex<HashMap<String, (u64, watch::Receiver<FlightState>)>>,
    next_id: Mutex<u64>,
}

impl Flights {
    /// Joins the fetch of `key`, starting it with `start` if none is running.
    /// Returns the progress receiver and whether this call started the fetch.
    pub fn join<F, Fut>(
        self: &Arc<Self>,
        key: &str,
        start: F,
    ) -> (watch::Receiver<FlightState>, bool)
    where
        F: FnOnce(Progress) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, rx)) = running.get(key) {
            return (rx.clone(), false);
        }
        let id = {
            let mut next = self.next_id.lock().unwrap_or_else(|p| p.into_inner());
            *next += 1;
            *next
        };
        let (tx, rx) = watch::channel(FlightState::Pending);
        running.insert(key.to_string(), (id, rx.clone()));
        drop(running);

        let fetch = start(tx);
        let flights = Arc::clone(self);
        let key = key.to_string();
        tokio::spawn(async move {
            fetch.await;
            let mut running = flights.running.lock().unwrap_or_else(|p| p.into_inner());
            if running.get(&key).is_some_and(|(i, _)| *i == id) {
                running.remove(&key);
            }
        });
        (rx, true)
    }
}

/// Waits until the fetch has an answer to start a response with: a stream
/// under way, or the end.
pub async fn started(rx: &mut watch::Receiver<FlightState>) -> FlightState {
    loop {
        let state = rx.borrow_and_update().clone();
        if !matches!(state, FlightState::Pending) {
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
    ServeError::Internal("internal error: fetch ended without an answer".to_string())
}

/// Reads a spooled object behind its writer, from the start.
pub struct SpoolReader {
    rx: watch::Receiver<FlightState>,
    offset: u64,
}

impl SpoolReader {
    pub fn new(rx: watch::Receiver<FlightState>) -> SpoolReader {
        SpoolReader { rx, offset: 0 }
    }

    /// The next bytes, `None` at the end, an error if the fetch failed.
    pub async fn next(&mut self) -> Option<io::Result<Bytes>> {
        loop {
            let (file, available, complete) = match &*self.rx.borrow_and_update() {
                FlightState::Pending => (None, 0, false),
                FlightState::Streaming { file, written, .. } => {
                    (Some(Arc::clone(file)), *written, false)
                }
                FlightState::Done(Ok(Landed::Spool { file, size })) => {
                    (Some(Arc::clone(file)), *size, true)
                }
                FlightState::Done(Ok(Landed::Bytes(b))) => {
                    let rest = b.slice((self.offset as usize).min(b.len())..);
                    self.offset += rest.len() as u64;
                    return (!rest.is_empty()).then_some(Ok(rest));
                }
                FlightState::Done(Err(e)) => return Some(Err(io::Error::other(e.to_string()))),
                FlightState::Done(Ok(Landed::Stored)) => {
                    return Some(Err(io::Error::other("internal error: no spool to read")))
                }
            };
            if let Some(file) = file.filter(|_| self.offset < available) {
                let len = (available - self.offset).min(READ_CHUNK) as usize;
                let offset = self.offset;
                let read = tokio::task::spawn_blocking(move || {
                    let mut buf = vec![0; len];
                    file.read_exact_at(&mut buf, offset)
                        .map(|()| Bytes::from(buf))
                })
                .await
                .unwrap_or_else(|e| Err(io::Error::other(e)));
                if let Ok(b) = &read {
                    self.offset += b.len() as u64;
                }
                return Some(read);
            }
            if complete {
                return None;
            }
            if self.rx.changed().await.is_err() {
                return Some(Err(io::Error::other(abandoned().to_string())));
            }
        }
    }
}
