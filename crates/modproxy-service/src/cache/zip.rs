//! Fetching a module zip: written to a spool file as it arrives (waiters
//! read behind the writer), handed over whole once verified, then
//! published (by rename, or an upload) while the flight still answers
//! from the spool file. A zip no larger than what is held back until
//! verified anyway is read into memory instead, and answered from there.
//!
//! If the spool cannot be written (disk full, I/O error) the rest of the zip
//! is relayed to the waiters instead and nothing is cached; a relayed fetch
//! that every waiter has left is cancelled, since nobody needs it any more.
//! On any failure nothing is published and the spool file is removed.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use modproxy_module::path::ModulePath;

use super::fetch::ToStore;
use super::flight::{FlightState, Landed, Progress, Relay, SpoolFile, RELAY_CAPACITY};
use super::ingest::ZipSource;
use super::Cache;
use crate::error::ServeError;
use crate::request::ModuleRequest;
use crate::store::{Store, StoreFailure, StoreOp};
use crate::upstream::Fetched;

/// Largest module zip accepted (the go command's limit).
const ZIP_LIMIT: u64 = 500 << 20;
/// Spool writes are batched to this size, then shown to waiters.
const WRITE_BATCH: usize = 128 * 1024;
/// The end of a zip held back from waiters until it is verified.
const HOLD_BACK: u64 = WRITE_BATCH as u64;
/// Smallest piece written while the first batch arrives.
const EARLY_PIECE: usize = 16 * 1024;

impl Cache {
    pub(super) async fn fetch_zip(
        &self,
        request: &ModuleRequest,
        key: &str,
        progress: &Progress,
        relay: &Relay,
        to_store: &mut Vec<ToStore>,
    ) -> Result<Landed, ServeError> {
        let crate::request::Endpoint::Zip(version) = &request.endpoint else {
            unreachable!("fetch_zip is called for zips");
        };
        let mut fetched = self
            .upstreams
            .fetch(&request.module, key)
            .await?
            .resumable(true);
        let what = request.to_string();
        let too_large = || format!("larger than the limit of {ZIP_LIMIT} bytes");
        if fetched.content_length.is_some_and(|n| n > ZIP_LIMIT) {
            return Err(fetched.invalid(&what, too_large()).into());
        }
        // A zip no larger than HOLD_BACK is held back whole until verified
        // anyway: it is read into memory, checked and answered from there,
        // with no spool file on the way to the client (the store write
        // follows), and served even when the store takes no writes. Of a
        // zip whose length is not announced, that much is read first.
        let mut head = Vec::new();
        if fetched.content_length.is_none_or(|n| n <= HOLD_BACK) {
            head.reserve(fetched.content_length.unwrap_or(0) as usize);
            while head.len() as u64 <= HOLD_BACK {
                let Some(chunk) = fetched.chunk().await? else {
                    check_length(&fetched, head.len() as u64, &what)?;
                    head.shrink_to_fit();
                    let body = Bytes::from(head);
                    return self
                        .small_zip(&request.module, version, key, body, to_store)
                        .await;
                };
                head.extend_from_slice(&chunk);
            }
        }
        let spool = match Spool::create(self.spool_path(key)) {
            Ok(s) => Some(s),
            Err(e) => {
                self.store_health.failed(StoreFailure::of_io(e.kind()), &e);
                None
            }
        };
        // Zips the checksum database covers are verified before their last
        // bytes go out; without a spool they cannot be, so they are refused.
        let verified = self
            .sumdb
            .as_ref()
            .is_some_and(|db| db.covers(&request.module));
        if spool.is_none() && verified {
            return Err(unverifiable(&what));
        }
        let mut relay_from = spool.is_none().then_some(0);
        progress.send_replace(FlightState::Streaming {
            file: spool.as_ref().map(|s| Arc::clone(&s.file)),
            written: 0,
            length: fetched.content_length,
            relay_from,
            relayed: 0,
        });
        let mut batch = head;
        batch.reserve(WRITE_BATCH);
        let mut total = 0u64;
        loop {
            let chunk = fetched.chunk().await?;
            let end = chunk.is_none();
            if let Some(chunk) = chunk {
                batch.extend_from_slice(&chunk);
            }
            // The start goes out in small pieces (time to first byte), the
            // rest in batches.
            let early = total < WRITE_BATCH as u64 && batch.len() >= EARLY_PIECE;
            let flush = !batch.is_empty() && (batch.len() >= WRITE_BATCH || end || early);
            if !flush {
                if end {
                    break;
                }
                continue;
            }
            if total + batch.len() as u64 > ZIP_LIMIT {
                return Err(fetched.invalid(&what, too_large()).into());
            }
            // Exactly sized: pieces are kept for waiters (SpoolFile).
            let piece = Bytes::copy_from_slice(&batch);
            batch.clear();
            if let Some(s) = spool.as_ref().filter(|_| relay_from.is_none()) {
                match s.write_at(piece.clone(), total).await {
                    Ok(()) => {
                        let visible = visible_before_verified(
                            total,
                            piece.len() as u64,
                            fetched.content_length,
                        );
                        total += piece.len() as u64;
                        progress.send_modify(|state| {
                            if let FlightState::Streaming { written, .. } = state {
                                *written = visible;
                            }
                        });
                        if end {
                            break;
                        }
                        continue;
                    }
                    Err(e) => {
                        self.store_health.failed(StoreFailure::of_io(e.kind()), &e);
                        if verified {
                            return Err(unverifiable(&what));
                        }
                        relay_from = Some(total);
                        progress.send_modify(|state| {
                            if let FlightState::Streaming {
                                written,
                                relay_from: r,
                                ..
                            } = state
                            {
                                *written = total;
                                *r = Some(total);
                            }
                        });
                    }
                }
            }
            let patience = self.upstreams.http().policy.stall;
            total = relay_piece(progress, relay, piece, total, &what, patience).await?;
            if end {
                break;
            }
        }
        check_length(&fetched, total, &what)?;
        match (spool, relay_from) {
            (Some(spool), None) => {
                let file = Arc::clone(&spool.file);
                let zip = ZipSource::Spool(Arc::clone(&file));
                let h1 = self
                    .verify_zip(&request.module, version, zip, total)
                    .await?;
                to_store.push(ToStore::Zip(VerifiedZip {
                    body: ZipBody::Spool(spool),
                    key: key.to_string(),
                    h1,
                }));
                Ok(Landed::Spool { file, size: total })
            }
            (spool, Some(spooled)) => Ok(Landed::Relayed {
                file: spool.map(|s| Arc::clone(&s.file)),
                spooled,
            }),
            (None, None) => unreachable!("no spool means relaying from 0"),
        }
    }

    /// Verifies a zip read whole into memory; it is answered from there.
    async fn small_zip(
        &self,
        module: &ModulePath,
        version: &str,
        key: &str,
        body: Bytes,
        to_store: &mut Vec<ToStore>,
    ) -> Result<Landed, ServeError> {
        let size = body.len() as u64;
        let zip = ZipSource::Memory(body.clone());
        let h1 = self.verify_zip(module, version, zip, size).await?;
        to_store.push(ToStore::Zip(VerifiedZip {
            body: ZipBody::Memory(body.clone()),
            key: key.to_string(),
            h1,
        }));
        Ok(Landed::Bytes(body))
    }

    /// Publishes a complete, verified zip, and its `h1:` next to it
    /// (`$version.ziphash`, as in the go command's module cache) for
    /// `modproxy verify`. If the store refuses, the waiters were still
    /// served (from the spool file or memory), and it is not cached.
    pub(super) async fn publish_zip(&self, zip: VerifiedZip) {
        let VerifiedZip { body, key, h1 } = zip;
        let hash_key = format!("{}.ziphash", key.trim_end_matches(".zip"));
        let published = match self
            .store
            .put(&hash_key, Bytes::from(format!("{h1}\n")))
            .await
        {
            Ok(()) => match body {
                ZipBody::Spool(spool) => spool.publish(&*self.store, &key).await,
                ZipBody::Memory(bytes) => self.store.put(&key, bytes).await,
            },
            Err(e) => Err(e),
        };
        match published {
            Ok(()) => self.store_health.succeeded(),
            Err(e) => self.store_health.failed(e.failure(), &e),
        }
    }

    fn spool_path(&self, key: &str) -> PathBuf {
        let n = self.spool_counter.fetch_add(1, Ordering::Relaxed);
        let name = key.rsplit('/').next().unwrap_or("zip");
        self.store.spool_dir().join(format!("spool-{n}-{name}"))
    }
}

/// Sends one piece through the relay, waiting while the slowest waiter is
/// `RELAY_CAPACITY` pieces behind, but no longer than `patience` (a waiter
/// that stopped reading then falls behind and fails alone); cancels when no
/// waiter is left.
async fn relay_piece(
    progress: &Progress,
    relay: &Relay,
    piece: Bytes,
    offset: u64,
    what: &str,
    patience: Duration,
) -> Result<u64, ServeError> {
    let started = tokio::time::Instant::now();
    loop {
        if relay.receiver_count() == 0 {
            return Err(crate::error::Internal::Cancelled {
                what: what.to_string(),
            }
            .into());
        }
        if relay.len() < RELAY_CAPACITY - 1 || started.elapsed() >= patience {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let end = offset + piece.len() as u64;
    progress.send_modify(|state| {
        if let FlightState::Streaming { relayed, .. } = state {
            *relayed = end;
        }
    });
    // Receivers may all have left since the check; that is handled above
    // on the next piece.
    let _ = relay.send((offset, piece));
    Ok(end)
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

/// Fails a body of `total` bytes that is not as long as announced.
fn check_length(fetched: &Fetched, total: u64, what: &str) -> Result<(), ServeError> {
    match fetched.content_length.filter(|n| *n != total) {
        Some(expected) => {
            let reason = format!("body ended after {total} of {expected} bytes");
            Err(fetched.invalid(what, reason).into())
        }
        None => Ok(()),
    }
}

/// A zip that must be verified but cannot be spooled to be checked.
fn unverifiable(what: &str) -> ServeError {
    crate::error::IntegrityError::Unverifiable {
        what: what.to_string(),
    }
    .into()
}

/// A downloaded and verified zip, to be published at `key`.
pub(super) struct VerifiedZip {
    body: ZipBody,
    key: String,
    h1: String,
}

/// Where a verified zip waits for its store write.
enum ZipBody {
    Spool(Spool),
    /// A small one, read whole.
    Memory(Bytes),
}

/// A file being downloaded; removed on drop unless published.
struct Spool {
    file: Arc<SpoolFile>,
    path: Option<PathBuf>,
}

impl Spool {
    fn create(path: PathBuf) -> io::Result<Spool> {
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| with_path(&path, e))?;
        Ok(Spool {
            file: Arc::new(SpoolFile::new(file)),
            path: Some(path),
        })
    }

    /// Writes `piece` at `offset`, off the async threads, and keeps it
    /// among the recent pieces for the waiters.
    async fn write_at(&self, piece: Bytes, offset: u64) -> io::Result<()> {
        let file = Arc::clone(&self.file);
        let path = self.path.clone().unwrap_or_default();
        let kept = piece.clone();
        tokio::task::spawn_blocking(move || file.file.write_all_at(&piece, offset))
            .await
            .map_err(io::Error::other)?
            .map_err(|e| with_path(&path, e))?;
        self.file.remember(offset, kept);
        Ok(())
    }

    /// Syncs and publishes the spool at `key`; on failure it is removed.
    async fn publish(
        mut self,
        store: &dyn Store,
        key: &str,
    ) -> Result<(), crate::store::StoreError> {
        let path = self.path.take().unwrap_or_default();
        let file = Arc::clone(&self.file);
        let synced = tokio::task::spawn_blocking(move || file.file.sync_data())
            .await
            .map_err(io::Error::other)
            .and_then(|r| r);
        if let Err(source) = synced {
            let _ = std::fs::remove_file(&path);
            return Err(crate::store::StoreError::new(StoreOp::Write, key, source));
        }
        store.put_file(key, &path).await
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
