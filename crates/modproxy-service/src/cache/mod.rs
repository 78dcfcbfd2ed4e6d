//! Cache orchestration: what to answer from the store, what to fetch, and
//! how concurrent requests share one fetch.
//!
//! - Canonical `.info`, `.mod` and `.zip` are immutable: a stored copy is a
//!   HIT forever; a miss is fetched once (coalesced) and published.
//! - `@v/list`, `@latest` and non-canonical `.info` queries are mutable: HIT
//!   while fresh; after that the stored copy is served (UPDATING) while a
//!   background refresh runs, or as STALE when the last refresh failed, up to
//!   the maximum staleness; older or absent copies are fetched (MISS).
//! - "Not found" is remembered briefly (negative cache).
//!
//! A miss joins (or starts) a flight: one fetch task per key, whose
//! states (pending, streaming to a spool file or through a relay, done)
//! are drawn in `flight`. The task runs `fetch` (small files, checked
//! whole) or `zip` (spooled, verified, or relayed when the spool cannot be
//! written), then publishes. Upstreams are reached through the
//! [`Upstream`] trait, which the unit tests (`tests`) fake.

mod fetch;
mod flight;
mod handled;
mod health;
mod ingest;
mod negative;
mod prefetch;
#[cfg(test)]
mod tests;
mod zip;

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use tokio::io::AsyncRead;

use crate::error::ServeError;
use crate::metrics::Metrics;
use crate::request::ModuleRequest;
use crate::settings::{CachePolicy, PrefetchMode};
use crate::store::memory::HotCache;
use crate::store::{ObjectBody, Store, StoredObject};
use crate::sumdb::SumDb;
use crate::sync::Locked;
use crate::upstream::Upstream;
use flight::{Flights, Joined, Started};
use health::StoreHealth;
use negative::NegativeCache;
use prefetch::Prefetcher;

pub use flight::SpoolReader;

/// The `X-Cache-Status` of an answer (nginx's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    Hit,
    Miss,
    /// Served from the store because every upstream failed.
    Stale,
    /// Served from the store while a refresh runs.
    Updating,
    /// Not cacheable.
    Bypass,
}

impl CacheStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "HIT",
            CacheStatus::Miss => "MISS",
            CacheStatus::Stale => "STALE",
            CacheStatus::Updating => "UPDATING",
            CacheStatus::Bypass => "BYPASS",
        }
    }
}

/// The body of an answer.
pub enum AnswerBody {
    Bytes(Bytes),
    File(std::fs::File),
    Reader(Pin<Box<dyn AsyncRead + Send>>),
    Spool(SpoolReader),
}

/// A file to send.
pub struct Answer {
    pub status: CacheStatus,
    pub length: Option<u64>,
    pub body: AnswerBody,
}

impl Answer {
    fn bytes(status: CacheStatus, bytes: Bytes) -> Answer {
        Answer {
            status,
            length: Some(bytes.len() as u64),
            body: AnswerBody::Bytes(bytes),
        }
    }

    fn stored(status: CacheStatus, object: StoredObject) -> Answer {
        Answer {
            status,
            length: Some(object.size),
            body: match object.body {
                ObjectBody::Bytes(b) => AnswerBody::Bytes(b),
                ObjectBody::File(f) => AnswerBody::File(f),
                ObjectBody::Reader(r) => AnswerBody::Reader(r),
            },
        }
    }
}

/// How the cache behaves (from the settings).
pub struct CacheConfig {
    pub policy: CachePolicy,
    /// Serve only what is stored.
    pub cached_only: bool,
    pub prefetch: PrefetchMode,
    /// Cross-replica fetch locks (`--lock`).
    pub locks: Option<Arc<crate::replica_lock::FetchLocks>>,
}

/// The cache in front of the store and the upstreams.
pub struct Cache {
    store: Arc<dyn Store>,
    upstreams: Arc<dyn Upstream>,
    /// Verifies what enters the store; `None` when the database is off.
    sumdb: Option<Arc<SumDb>>,
    metrics: Arc<Metrics>,
    policy: CachePolicy,
    cached_only: bool,
    flights: Arc<Flights>,
    negative: NegativeCache,
    /// Mutable entries whose last refresh failed, and when.
    refresh_failed: Mutex<HashMap<String, Instant>>,
    spools: zip::Spools,
    store_health: StoreHealth,
    prefetch: Prefetcher,
    hot: HotCache,
    /// Cross-replica fetch locks (`--lock`).
    locks: Option<Arc<crate::replica_lock::FetchLocks>>,
}

impl Cache {
    pub fn new(
        store: Arc<dyn Store>,
        upstreams: Arc<dyn Upstream>,
        sumdb: Option<Arc<SumDb>>,
        metrics: Arc<Metrics>,
        config: CacheConfig,
    ) -> Arc<Cache> {
        let CacheConfig {
            policy,
            cached_only,
            prefetch,
            locks,
        } = config;
        let cache = Arc::new(Cache {
            store,
            upstreams,
            sumdb,
            metrics,
            policy,
            cached_only,
            flights: Arc::default(),
            negative: NegativeCache::default(),
            refresh_failed: Mutex::default(),
            spools: zip::Spools::default(),
            store_health: StoreHealth::default(),
            hot: HotCache::default(),
            locks,
            prefetch: Prefetcher::new(if cached_only {
                PrefetchMode::Off
            } else {
                prefetch
            }),
        });
        cache.start_prefetch();
        cache
    }

    /// Whether the store takes writes (for `/readyz`).
    pub async fn check_store(&self) -> Result<(), crate::store::StoreError> {
        self.store.check_writable().await
    }

    /// Resolves once every fetch and every store write started so far has
    /// ended (for shutdown: what was fetched and verified is kept).
    pub async fn settled(&self) {
        crate::sync::settled(&self.flights.background).await;
        if let Some(db) = &self.sumdb {
            crate::sync::settled(&db.background).await;
        }
    }

    /// The bytes of `key` when the in-memory tier holds it and answering
    /// it needs nothing more (prefetch's books on it are closed): then
    /// [`Cache::hot_answer`] answers as [`Cache::get`] would. Only
    /// immutable files are kept there, each under the protocol path of a
    /// request that parsed. `None`: ask [`Cache::get`].
    pub fn hot_peek(&self, key: &str) -> Option<Bytes> {
        // Memory first: a miss then costs one lookup here, not two.
        let bytes = self.hot.get(key)?;
        (!self.prefetch.books(key, true).due).then_some(bytes)
    }

    /// Answers `key` with `bytes` from the in-memory tier.
    pub fn hot_answer(&self, key: &str, bytes: Bytes) -> Answer {
        self.store.touch(key);
        Answer::bytes(CacheStatus::Hit, bytes)
    }

    /// Answers one module file request; `key` is its
    /// [`protocol_path`](ModuleRequest::protocol_path).
    pub async fn get(
        self: &Arc<Self>,
        request: &ModuleRequest,
        key: String,
        cached_only: bool,
    ) -> Result<Answer, (CacheStatus, ServeError)> {
        let cached_only = cached_only || self.cached_only;
        let books = self.prefetch.books(&key, request.endpoint.is_immutable());
        if books.due {
            self.prefetch.claim(&key, &self.metrics);
        }
        let answer = self.answer(request, &key, cached_only).await;
        if let (Ok(answer), true) = (&answer, books.due) {
            let bytes = match &answer.body {
                AnswerBody::Bytes(b) => Some(b.clone()),
                _ => None,
            };
            if self.after_answer(request, bytes) {
                self.prefetch.booked(books);
            }
        }
        answer
    }

    async fn answer(
        self: &Arc<Self>,
        request: &ModuleRequest,
        key: &str,
        cached_only: bool,
    ) -> Result<Answer, (CacheStatus, ServeError)> {
        let immutable = request.endpoint.is_immutable();
        if let Some(bytes) = self.hot.get(key).filter(|_| immutable) {
            return Ok(self.hot_answer(key, bytes));
        }
        let seen = self.flights.landed();
        let stored = self
            .store
            .get(key)
            .await
            .map_err(|e| (CacheStatus::Miss, e.into()))?;
        if let Some(object) = stored {
            if immutable {
                self.store.touch(key);
                if let ObjectBody::Bytes(bytes) = &object.body {
                    self.hot.insert(key, bytes.clone());
                }
            }
            if immutable || cached_only {
                return Ok(Answer::stored(CacheStatus::Hit, object));
            }
            let age = age(object.modified);
            if age < self.policy.fresh_for {
                return Ok(Answer::stored(CacheStatus::Hit, object));
            }
            if age < self.policy.max_stale {
                let status = self.refresh_in_background(request, key, seen);
                return Ok(Answer::stored(status, object));
            }
        }
        if let Some(message) = self.negative.get(key) {
            return Err((CacheStatus::Hit, ServeError::NotFound(message)));
        }
        if cached_only {
            let message = format!("{request}: not in the cache (cached-only mode)");
            return Err((CacheStatus::Miss, ServeError::NotFound(message)));
        }
        self.fetch(request, key, seen)
            .await
            .map_err(|e| (CacheStatus::Miss, e))
    }

    /// Joins (or starts) the fetch of `key` and answers from it; `seen`
    /// as for [`Cache::start_fetch`].
    async fn fetch(
        self: &Arc<Self>,
        request: &ModuleRequest,
        key: &str,
        seen: u64,
    ) -> Result<Answer, ServeError> {
        let mut joined = self.start_fetch(request, key, Some(seen));
        if joined.missed_relay() {
            // Pieces went out before we subscribed: fetch on our own.
            let cache = Arc::clone(self);
            let request = request.clone();
            joined = self
                .flights
                .solo(move |progress, relay| cache.run_fetch(request, progress, relay, None));
        }
        match flight::started(joined).await? {
            Started::Stream { reader, length } => Ok(Answer {
                status: CacheStatus::Miss,
                length,
                body: AnswerBody::Spool(reader),
            }),
            Started::Bytes(bytes) => Ok(Answer::bytes(CacheStatus::Miss, bytes)),
            Started::Stored => match self.store.get(key).await? {
                Some(object) => Ok(Answer::stored(CacheStatus::Hit, object)),
                None => Err(crate::error::Internal::Vanished {
                    what: request.to_string(),
                }
                .into()),
            },
        }
    }

    /// Joins (or starts) the fetch of `key`. `seen` is
    /// [`Flights::landed`](flight::Flights::landed) read before the caller
    /// found no fresh copy in the store, if it looked: a fetch started
    /// while nothing landed since does not look again.
    fn start_fetch(
        self: &Arc<Self>,
        request: &ModuleRequest,
        key: &str,
        seen: Option<u64>,
    ) -> Joined {
        let cache = Arc::clone(self);
        let request = request.clone();
        let mut started = false;
        let joined = self.flights.join(key, |progress, relay| {
            started = true;
            cache.run_fetch(request, progress, relay, seen)
        });
        if !started {
            Metrics::inc(&self.metrics.coalesced);
        }
        joined
    }

    /// Starts a refresh of a stale mutable entry unless its last one failed
    /// recently; says whether the stored copy is UPDATING or STALE.
    fn refresh_in_background(
        self: &Arc<Self>,
        request: &ModuleRequest,
        key: &str,
        seen: u64,
    ) -> CacheStatus {
        let failed_at = {
            let failed = self.refresh_failed.locked();
            failed.get(key).copied()
        };
        let backoff = self.policy.negative_ttl.max(Duration::from_secs(1));
        if failed_at.is_some_and(|t| t.elapsed() < backoff) {
            tracing::warn!(%request, "serving stale copy: the last refresh failed");
            return CacheStatus::Stale;
        }
        let mut rx = self.start_fetch(request, key, Some(seen)).rx;
        let cache = Arc::clone(self);
        let key = key.to_string();
        tokio::spawn(async move {
            let result = flight::finished(&mut rx).await;
            let mut failed = cache.refresh_failed.locked();
            match result {
                Ok(_) => failed.remove(&key),
                Err(_) => failed.insert(key, Instant::now()),
            };
        });
        if failed_at.is_some() {
            CacheStatus::Stale
        } else {
            CacheStatus::Updating
        }
    }
}

fn age(modified: SystemTime) -> Duration {
    SystemTime::now()
        .duration_since(modified)
        .unwrap_or(Duration::ZERO)
}
