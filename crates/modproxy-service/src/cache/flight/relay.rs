//! The relay of a flight: when its spool file cannot be written, the rest
//! of the body goes to the waiters through a bounded broadcast channel
//! instead (they are still served, nothing is cached).
//!
//! Backpressure is by notification: every waiter wakes the fetcher when it
//! takes a piece or leaves, and the fetcher, before each piece, waits
//! while the slowest waiter is [`RELAY_CAPACITY`] pieces behind, but no
//! longer than its patience (a waiter that stopped reading then falls
//! behind and fails alone), rather than buffering. A relay every waiter
//! has left is abandoned.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{broadcast, Notify};

/// Relay pieces in flight before the fetcher waits for the slowest waiter.
pub const RELAY_CAPACITY: usize = 64;

/// A piece of a body, `(offset, bytes)`.
type Piece = (u64, Bytes);

/// The sending half, held by the fetch task (and by the flight, to
/// subscribe waiters that join).
#[derive(Clone)]
pub struct Relay {
    tx: broadcast::Sender<Piece>,
    /// Notified when a waiter takes a piece or leaves.
    taken: Arc<Notify>,
}

/// A waiter's half: receives every piece sent after it subscribed.
pub struct RelayReceiver {
    rx: broadcast::Receiver<Piece>,
    /// Declared after `rx`, so dropped after it: the fetcher, woken when
    /// a waiter leaves, no longer counts it.
    taken: WakeOnDrop,
}

/// Wakes the fetcher when a waiter takes a piece, and when it leaves.
struct WakeOnDrop(Arc<Notify>);

impl Drop for WakeOnDrop {
    fn drop(&mut self) {
        // The pieces it had not taken are freed: there may be room now,
        // or nobody left.
        self.0.notify_one();
    }
}

/// Every waiter has left the relay: nobody needs the rest.
#[derive(Debug, PartialEq, Eq)]
pub struct Abandoned;

impl Relay {
    /// A relay and its first waiter's half.
    pub fn new() -> (Relay, RelayReceiver) {
        let (tx, rx) = broadcast::channel(RELAY_CAPACITY);
        let taken = Arc::new(Notify::new());
        let receiver = RelayReceiver {
            rx,
            taken: WakeOnDrop(Arc::clone(&taken)),
        };
        (Relay { tx, taken }, receiver)
    }

    /// A new waiter's half.
    pub fn subscribe(&self) -> RelayReceiver {
        RelayReceiver {
            rx: self.tx.subscribe(),
            taken: WakeOnDrop(Arc::clone(&self.taken)),
        }
    }

    /// Waits until the next piece may be sent: while the slowest waiter
    /// is [`RELAY_CAPACITY`] pieces behind, but no longer than `patience`.
    /// Fails when no waiter is left.
    pub async fn room(&self, patience: Duration) -> Result<(), Abandoned> {
        let deadline = tokio::time::Instant::now() + patience;
        let mut out_of_patience = false;
        loop {
            if self.tx.receiver_count() == 0 {
                return Err(Abandoned);
            }
            if self.tx.len() < RELAY_CAPACITY - 1 || out_of_patience {
                return Ok(());
            }
            // A notification given since the last look is kept (one
            // permit), so none is lost between the look and the wait.
            let woken = tokio::time::timeout_at(deadline, self.taken.notified()).await;
            out_of_patience = woken.is_err();
        }
    }

    /// Sends `piece`, at `offset` of the body, to every waiter. Waiters
    /// may all have left since [`Relay::room`]; the next `room` says so.
    pub fn send(&self, offset: u64, piece: Bytes) {
        let _ = self.tx.send((offset, piece));
    }
}

impl RelayReceiver {
    /// The next piece; `Closed` once the fetch has ended.
    pub async fn recv(&mut self) -> Result<Piece, broadcast::error::RecvError> {
        let piece = self.rx.recv().await;
        self.taken.0.notify_one();
        piece
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    const LONG: Duration = Duration::from_secs(30);

    fn fill(relay: &Relay) {
        for i in 0..RELAY_CAPACITY as u64 - 1 {
            relay.send(i, Bytes::from_static(b"x"));
        }
    }

    #[tokio::test]
    async fn the_fetcher_waits_for_the_slowest_waiter_and_is_woken_when_it_reads() {
        let (relay, mut fast) = Relay::new();
        let mut slow = relay.subscribe();
        fill(&relay);
        while fast.rx.try_recv().is_ok() {}
        let started = Instant::now();
        let waiting = tokio::spawn({
            let relay = relay.clone();
            async move { relay.room(LONG).await }
        });
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(!waiting.is_finished(), "sent past the slowest waiter");
        slow.recv().await.unwrap();
        assert_eq!(waiting.await.unwrap(), Ok(()));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn the_fetcher_waits_no_longer_than_its_patience() {
        let (relay, _stuck) = Relay::new();
        fill(&relay);
        let started = Instant::now();
        assert_eq!(relay.room(Duration::from_millis(20)).await, Ok(()));
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(20), "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
    }

    #[tokio::test]
    async fn a_relay_every_waiter_left_is_abandoned_at_once() {
        let (relay, receiver) = Relay::new();
        fill(&relay);
        let waiting = tokio::spawn({
            let relay = relay.clone();
            async move { relay.room(LONG).await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        let started = Instant::now();
        drop(receiver);
        assert_eq!(waiting.await.unwrap(), Err(Abandoned));
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(relay.room(LONG).await, Err(Abandoned));
    }
}
