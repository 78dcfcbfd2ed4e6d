//! Where the pieces of a large zip go as they arrive: the [`Sink`], a
//! state with one function per transition.
//!
//! ```text
//!   open ──► Spool ── write fails ──► Relay { spooled: Some(…) }
//!     └── no spool file ────────────► Relay { spooled: None }
//! ```
//!
//! `Relay` is only ever reached by a zip the checksum database does not
//! cover: one it covers cannot be verified without its spool file, so it
//! fails instead. The [`Feed`] shows each step to the waiters.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::{unverifiable, EARLY_PIECE, HOLD_BACK};
use crate::cache::flight::{Abandoned, FlightState, Progress, Relay, SpoolFile, Spooled, Stream};
use crate::cache::health::StoreHealth;
use crate::error::ServeError;
use crate::store::{Store, StoreFailure};

/// Where the pieces of a large zip go.
pub(super) enum Sink {
    /// To the spool file: verified once whole, then published.
    Spool(Spool),
    /// To the waiters through the relay, after what the spool file holds
    /// (the file and its length; `None` when it could not be made). Not
    /// cached.
    Relay { spooled: Option<(Spool, u64)> },
}

/// What the waiters of a large zip are shown, and how much arrived.
pub(super) struct Feed<'a> {
    pub progress: &'a Progress,
    pub relay: &'a Relay,
    /// How long a relayed piece waits for the slowest waiter.
    pub patience: Duration,
    /// As announced by the upstream.
    pub length: Option<u64>,
    /// Bytes spooled or relayed so far.
    pub total: u64,
    /// The request, for messages.
    pub what: &'a str,
    /// The checksum database covers it: it cannot be relayed.
    pub verified: bool,
    pub health: &'a StoreHealth,
}

impl Sink {
    /// The first state: the spool file at `path` (made already, or to
    /// make), or the relay from the first byte when it cannot be made.
    pub(super) fn open(
        (path, made): (PathBuf, Option<File>),
        feed: &Feed<'_>,
    ) -> Result<Sink, ServeError> {
        let (sink, stream) = match Spool::create(path, made, feed.length) {
            Ok(spool) => {
                let file = Arc::clone(&spool.file);
                let stream = Stream::Spool(Spooled { file, len: 0 });
                (Sink::Spool(spool), stream)
            }
            Err(e) => {
                feed.health.failed(StoreFailure::of_io(e.kind()), &e);
                if feed.verified {
                    return Err(unverifiable(feed.what));
                }
                let stream = Stream::Relay {
                    spooled: None,
                    relayed: 0,
                };
                (Sink::Relay { spooled: None }, stream)
            }
        };
        feed.progress.send_replace(FlightState::Streaming {
            length: feed.length,
            stream,
        });
        Ok(sink)
    }

    /// Takes the next piece: into the spool file while it can be written,
    /// otherwise (from the first failed write on) through the relay.
    pub(super) async fn write(self, piece: Bytes, feed: &mut Feed<'_>) -> Result<Sink, ServeError> {
        let sink = match self {
            Sink::Spool(spool) => {
                let n = piece.len() as u64;
                // Shown from memory while it is written, once room for
                // the whole body is reserved or a write has landed: a
                // first write that fails (for want of space, say) fails a
                // verified zip before any waiter starts its answer.
                let early = spool.reserved || feed.total > 0;
                if early {
                    spool.file.writing(feed.total, piece.clone());
                    feed.show(n);
                }
                match spool.write_at(piece.clone(), feed.total).await {
                    Ok(()) => {
                        spool.file.written();
                        if !early {
                            feed.show(n);
                        }
                        feed.total += n;
                        return Ok(Sink::Spool(spool));
                    }
                    // The piece stays readable from memory for waiters
                    // that saw it before the relay took over.
                    Err(e) => feed.spool_failed(spool, e)?,
                }
            }
            relay @ Sink::Relay { .. } => relay,
        };
        feed.relay(piece).await?;
        Ok(sink)
    }
}

impl Feed<'_> {
    /// `n` more bytes are on their way to the spool file (readable from
    /// memory until they land): shows the waiters what they may read
    /// before the zip is verified.
    fn show(&mut self, n: u64) {
        let visible = visible_before_verified(self.total, n, self.length);
        self.progress.send_modify(|state| {
            if let FlightState::Streaming {
                stream: Stream::Spool(spooled),
                ..
            } = state
            {
                spooled.len = visible;
            }
        });
    }

    /// Spool → Relay: a write to the spool file failed after
    /// [`Feed::total`] bytes. Only a zip that needs no verification goes
    /// on; its waiters may read all the spool file holds.
    fn spool_failed(&mut self, spool: Spool, error: io::Error) -> Result<Sink, ServeError> {
        self.health
            .failed(StoreFailure::of_io(error.kind()), &error);
        if self.verified {
            return Err(unverifiable(self.what));
        }
        let file = Arc::clone(&spool.file);
        self.progress.send_replace(FlightState::Streaming {
            length: self.length,
            stream: Stream::Relay {
                spooled: Some(Spooled {
                    file,
                    len: self.total,
                }),
                relayed: 0,
            },
        });
        Ok(Sink::Relay {
            spooled: Some((spool, self.total)),
        })
    }

    /// Sends one piece through the relay once there is room (see
    /// [`Relay::room`]); fails when no waiter is left.
    async fn relay(&mut self, piece: Bytes) -> Result<(), ServeError> {
        self.relay.room(self.patience).await.map_err(|Abandoned| {
            ServeError::from(crate::error::Internal::Cancelled {
                what: self.what.to_string(),
            })
        })?;
        let (offset, end) = (self.total, self.total + piece.len() as u64);
        // Before the send: a waiter joining after this sees that it
        // missed a piece.
        self.progress.send_modify(|state| {
            if let FlightState::Streaming {
                stream: Stream::Relay { relayed, .. },
                ..
            } = state
            {
                *relayed = end;
            }
        });
        self.relay.send(offset, piece);
        self.total = end;
        Ok(())
    }
}

/// How much of a zip being downloaded waiters may read, after writing
/// `piece` bytes at `total`: never its end before the whole zip is
/// verified, so a zip that fails never reaches a client whole. Of what has
/// arrived, the last [`EARLY_PIECE`] bytes wait (the last [`HOLD_BACK`] when
/// the length is not announced); of an announced length, the last
/// [`HOLD_BACK`] bytes. So the first bytes go out almost as they arrive,
/// and an upstream announcing more than it sends still cannot get its
/// actual end out early.
fn visible_before_verified(total: u64, piece: u64, length: Option<u64>) -> u64 {
    let received = total + piece;
    match length {
        Some(length) => received
            .saturating_sub(EARLY_PIECE as u64)
            .min(length.saturating_sub(HOLD_BACK)),
        None => received.saturating_sub(HOLD_BACK),
    }
}

/// A file being downloaded; removed on drop unless published.
pub(super) struct Spool {
    pub(super) file: Arc<SpoolFile>,
    path: Option<PathBuf>,
    /// Disk space for the whole announced body is reserved.
    reserved: bool,
}

impl Spool {
    /// A new spool file at `path` (`made` already, or created here),
    /// with room reserved for `length` bytes where the file system can: a
    /// full disk fails here, before the first byte, rather than on a
    /// write after waiters started.
    fn create(path: PathBuf, made: Option<File>, length: Option<u64>) -> io::Result<Spool> {
        let file = match made {
            Some(file) => file,
            None => super::spools::create(&path).map_err(|e| with_path(&path, e))?,
        };
        let mut spool = Spool {
            file: Arc::new(SpoolFile::new(file)),
            path: Some(path),
            reserved: false,
        };
        if let Some(n) = length.filter(|n| *n > 0) {
            use rustix::fs::{fallocate, FallocateFlags};
            // Blocks only, the size stays: readers see what is written.
            match fallocate(&spool.file.file, FallocateFlags::KEEP_SIZE, 0, n) {
                Ok(()) => spool.reserved = true,
                Err(e) if e == rustix::io::Errno::NOSPC || e == rustix::io::Errno::DQUOT => {
                    let path = spool.path.clone().unwrap_or_default();
                    return Err(with_path(&path, e.into())); // dropped: removed
                }
                // Not supported here: the writes will tell.
                Err(_) => {}
            }
        }
        Ok(spool)
    }

    /// Writes `piece` at `offset`, off the async threads.
    async fn write_at(&self, piece: Bytes, offset: u64) -> io::Result<()> {
        let file = Arc::clone(&self.file);
        let path = self.path.clone().unwrap_or_default();
        tokio::task::spawn_blocking(move || file.file.write_all_at(&piece, offset))
            .await
            .map_err(io::Error::other)?
            .map_err(|e| with_path(&path, e))
    }

    /// Publishes the spool at `key` (the store syncs it where that
    /// matters; `now`: not deferred); on failure it is removed.
    pub(super) async fn publish(
        mut self,
        store: &dyn Store,
        key: &str,
        now: bool,
    ) -> Result<(), crate::store::StoreError> {
        let path = self.path.take().unwrap_or_default();
        if now {
            store.put_file_now(key, &path).await
        } else {
            store.put_file(key, &path).await
        }
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        if let Some(path) = &self.path {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn with_path(path: &std::path::Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("spool file {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_end_of_a_zip_is_never_visible_before_verification() {
        let k = 1024;
        // Announced 1 MiB: the start goes out, the last 128 KiB wait.
        assert_eq!(visible_before_verified(0, 64 * k, Some(1024 * k)), 48 * k);
        assert_eq!(
            visible_before_verified(1000 * k, 24 * k, Some(1024 * k)),
            896 * k
        );
        // Announced 10 MiB, 100 KiB actually sent: its end stays back.
        assert_eq!(
            visible_before_verified(84 * k, 16 * k, Some(10240 * k)),
            84 * k
        );
        // Small or unannounced: nothing of the last 128 KiB received.
        assert_eq!(visible_before_verified(0, 100 * k, Some(100 * k)), 0);
        assert_eq!(visible_before_verified(0, 100 * k, None), 0);
        assert_eq!(visible_before_verified(200 * k, 16 * k, None), 88 * k);
    }
}
