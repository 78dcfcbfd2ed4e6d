//! Fetching a module zip: written to a spool file as it arrives (waiters
//! read behind the writer), handed over whole once verified, then
//! published (by rename, or an upload) while the flight still answers
//! from the spool file. A zip no larger than what is held back until
//! verified anyway is read into memory instead, and answered from there.
//!
//! If the spool cannot be written (disk full, I/O error) the rest of the zip
//! is relayed to the waiters instead and nothing is cached; a relayed fetch
//! that every waiter has left is cancelled, since nobody needs it any more
//! (see [`sink`] for the states). On any failure nothing is published and
//! the spool file is removed.

mod sink;
mod spools;

use std::sync::Arc;

use bytes::Bytes;
use modproxy_module::path::ModulePath;

use super::flight::{Landed, Progress, Relay, Spooled, Stream};
use super::ingest::{ZipHash, ZipSource};
use super::Cache;
use crate::error::ServeError;
use crate::request::ModuleRequest;
use crate::upstream::Fetched;
use sink::{Feed, Sink, Spool};
pub(super) use spools::Spools;

/// Largest module zip accepted (the go command's limit).
const ZIP_LIMIT: u64 = 500 << 20;
/// Spool writes are batched to this size, then shown to waiters.
const WRITE_BATCH: usize = 128 * 1024;
/// The end of a zip held back from waiters until it is verified.
const HOLD_BACK: u64 = WRITE_BATCH as u64;
/// Smallest piece written while the first batch arrives.
const EARLY_PIECE: usize = 16 * 1024;

impl Cache {
    /// Fetches the zip of `request` (of `version`), reporting on
    /// `progress`: how it landed, and the verified zip to publish (none
    /// when relayed).
    pub(super) async fn fetch_zip(
        &self,
        request: &ModuleRequest,
        version: &str,
        key: &str,
        progress: &Progress,
        relay: &Relay,
    ) -> Result<(Landed, Option<VerifiedZip>), ServeError> {
        let mut fetched = self
            .upstreams
            .fetch(&request.module, key)
            .await?
            .resumable(true);
        let what = request.to_string();
        if fetched.content_length.is_some_and(|n| n > ZIP_LIMIT) {
            return Err(too_large(&fetched, &what));
        }
        let head = match read_head(&mut fetched, &what).await? {
            Head::Whole(body) => return self.small_zip(&request.module, version, key, body).await,
            Head::Start(head) => head,
        };
        let mut feed = Feed {
            progress,
            relay,
            patience: self.upstreams.stall(),
            length: fetched.content_length,
            total: 0,
            what: &what,
            // Zips the checksum database covers are verified before their
            // last bytes go out; without a spool they cannot be, so they
            // are refused.
            verified: self
                .sumdb
                .as_ref()
                .is_some_and(|db| db.covers(&request.module)),
            health: &self.store_health,
        };
        let spool = self
            .spools
            .next(self.store.spool_dir(), key, &self.flights.background);
        let mut sink = Sink::open(spool, &feed)?;
        let mut pieces = Pieces::new(head);
        while let Some(piece) = pieces.next(&mut fetched, &what).await? {
            sink = sink.write(piece, &mut feed).await?;
        }
        let total = feed.total;
        check_length(&fetched, total, &what)?;
        match sink {
            Sink::Spool(spool) => {
                let file = Arc::clone(&spool.file);
                let zip = ZipSource::Spool(Arc::clone(&file));
                let hash = self
                    .verify_zip(&request.module, version, zip, total)
                    .await?;
                let landed = Landed::Stream(Stream::Spool(Spooled { file, len: total }));
                let zip = VerifiedZip {
                    body: ZipBody::Spool(spool),
                    key: key.to_string(),
                    record: Record::new(hash, &request.module, version),
                };
                Ok((landed, Some(zip)))
            }
            Sink::Relay { spooled } => {
                let spooled = spooled.map(|(spool, len)| Spooled {
                    file: Arc::clone(&spool.file),
                    len,
                });
                let relayed = total;
                Ok((Landed::Stream(Stream::Relay { spooled, relayed }), None))
            }
        }
    }

    /// Verifies a zip read whole into memory; it is answered from there.
    async fn small_zip(
        &self,
        module: &ModulePath,
        version: &str,
        key: &str,
        body: Bytes,
    ) -> Result<(Landed, Option<VerifiedZip>), ServeError> {
        let size = body.len() as u64;
        let zip = ZipSource::Memory(body.clone());
        let hash = self.verify_zip(module, version, zip, size).await?;
        let zip = VerifiedZip {
            body: ZipBody::Memory(body.clone()),
            key: key.to_string(),
            record: Record::new(hash, module, version),
        };
        Ok((Landed::Bytes(body), Some(zip)))
    }

    /// Publishes a complete, verified zip. The `h1:` it was accepted with
    /// goes next to it (`$version.ziphash`, as in the go command's module
    /// cache) for `modproxy verify`, unless a checksum database vouched
    /// for it and the store holds that database's answer: that is its
    /// record then (authenticated again by `verify`), and a second one
    /// would cost a file and a sync per zip. If the store refuses, the
    /// waiters were still served (from the spool file or memory), and it
    /// is not cached. `now`: someone waits for the write, so it is not
    /// deferred.
    pub(super) async fn publish_zip(&self, zip: VerifiedZip, now: bool) {
        let VerifiedZip { body, key, record } = zip;
        let recorded_elsewhere = match &record.vouched_by {
            Some((module, version)) => self.lookup_stored(module, version).await,
            None => false,
        };
        let recorded = if recorded_elsewhere {
            Ok(())
        } else {
            let hash_key = format!("{}.ziphash", key.trim_end_matches(".zip"));
            let h1 = Bytes::from(format!("{}\n", record.h1));
            self.put(&hash_key, h1, now).await
        };
        let published = match recorded {
            Ok(()) => match body {
                ZipBody::Spool(spool) => spool.publish(&*self.store, &key, now).await,
                ZipBody::Memory(bytes) => self.put(&key, bytes, now).await,
            },
            Err(e) => Err(e),
        };
        match published {
            Ok(()) => self.store_health.succeeded(),
            Err(e) => self.store_health.failed(e.failure(), &e),
        }
    }
}

/// The start of a zip's body.
enum Head {
    /// All of it: no larger than what is held back until verified anyway.
    Whole(Bytes),
    /// Its first bytes (none when the length is announced and larger).
    Start(Vec<u8>),
}

/// A zip no larger than [`HOLD_BACK`] is held back whole until verified
/// anyway: it is read into memory, checked and answered from there, with
/// no spool file on the way to the client (the store write follows), and
/// served even when the store takes no writes. Of a zip whose length is
/// not announced, that much is read first.
async fn read_head(fetched: &mut Fetched, what: &str) -> Result<Head, ServeError> {
    let mut head = Vec::new();
    if fetched.content_length.is_none_or(|n| n <= HOLD_BACK) {
        head.reserve(fetched.content_length.unwrap_or(0) as usize);
        while head.len() as u64 <= HOLD_BACK {
            let Some(chunk) = fetched.chunk().await? else {
                check_length(fetched, head.len() as u64, what)?;
                head.shrink_to_fit();
                return Ok(Head::Whole(Bytes::from(head)));
            };
            head.extend_from_slice(&chunk);
        }
    }
    Ok(Head::Start(head))
}

/// Cuts a body into the pieces written to the spool (and shown to
/// waiters): small ones at first (time to first byte), then batches.
struct Pieces {
    batch: Vec<u8>,
    /// Bytes cut so far.
    cut: u64,
    ended: bool,
}

impl Pieces {
    /// Pieces of a body whose first bytes, `head`, were read already.
    fn new(head: Vec<u8>) -> Pieces {
        let mut batch = head;
        batch.reserve(WRITE_BATCH);
        Pieces {
            batch,
            cut: 0,
            ended: false,
        }
    }

    /// The next piece of `fetched`, `None` after the last; fails past
    /// [`ZIP_LIMIT`].
    async fn next(
        &mut self,
        fetched: &mut Fetched,
        what: &str,
    ) -> Result<Option<Bytes>, ServeError> {
        while !self.ended {
            let chunk = fetched.chunk().await?;
            self.ended = chunk.is_none();
            if let Some(chunk) = chunk {
                self.batch.extend_from_slice(&chunk);
            }
            let batch = self.batch.len();
            let early = self.cut < WRITE_BATCH as u64 && batch >= EARLY_PIECE;
            if batch == 0 || !(batch >= WRITE_BATCH || self.ended || early) {
                continue;
            }
            if self.cut + batch as u64 > ZIP_LIMIT {
                return Err(too_large(fetched, what));
            }
            // Exactly sized: pieces are kept for waiters (SpoolFile).
            let piece = Bytes::copy_from_slice(&self.batch);
            self.batch.clear();
            self.cut += piece.len() as u64;
            return Ok(Some(piece));
        }
        Ok(None)
    }
}

/// A zip over [`ZIP_LIMIT`].
fn too_large(fetched: &Fetched, what: &str) -> ServeError {
    let reason = format!("larger than the limit of {ZIP_LIMIT} bytes");
    fetched.invalid(what, reason).into()
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
    record: Record,
}

/// What a verified zip was accepted with.
struct Record {
    h1: String,
    /// The module version, when a checksum database vouched for it.
    vouched_by: Option<(ModulePath, String)>,
}

impl Record {
    fn new(hash: ZipHash, module: &ModulePath, version: &str) -> Record {
        Record {
            h1: hash.h1,
            vouched_by: hash.vouched.then(|| (module.clone(), version.to_string())),
        }
    }
}

/// Where a verified zip waits for its store write.
enum ZipBody {
    Spool(Spool),
    /// A small one, read whole.
    Memory(Bytes),
}
