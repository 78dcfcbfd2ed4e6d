//! The checksum database client: every module entering the store is
//! checked against it, with full verification like the go command's own
//! client — the signed tree head (Ed25519 note), the record's inclusion in
//! that tree (tiles), and the consistency of every new tree head with the
//! last one this proxy accepted (persisted in the store).
//!
//! The database is reached through the first upstream proxy that supports
//! it (`$proxy/sumdb/$name/…`), or directly where the upstream list says
//! `direct`. What it verified is kept in the store under `sumdb/$name/`,
//! laid out like the protocol (`latest`, `lookup/…`, `tile/…`), and served
//! to clients from there (see `server::sumdb`).

mod head;
mod record;
mod tiles;

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use modproxy_module::path::{escape_version, ModulePath};
use modproxy_module::pattern::PathPatterns;
use modproxy_module::sumdb_setting::SumDbConfig;
use tlog_tiles::{record_hash, stored_hash_index, HashReader, Tile};

use record::{hashes_for, parse_record};
pub use record::{open_tree_note, Tree};
use tiles::{full_tile, prefix, tile_key, Tiles};

use crate::error::{chain, ErrorKind, SumDbFailure};
use crate::store::memory::HotCache;
use crate::store::{Store, StoreError};
use crate::sync::Locked;
use crate::upstream::{ProxyUpstream, Source, UpstreamError, Upstreams};
use std::sync::Arc;
use tokio_util::task::TaskTracker;

/// Largest checksum database answer accepted.
const ANSWER_LIMIT: u64 = 1 << 20;
/// Recent lookups and tiles kept in memory: up to 8 KiB (a full tile)
/// each, 4 MiB in all.
const RECENT: (usize, usize) = (8 << 10, 4 << 20);
/// How long the route to the database is reused before it is probed again.
const ROUTE_TTL: Duration = Duration::from_secs(300);

/// What the database says about one module version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SumHashes {
    /// `h1:` of the zip, when the record lists it.
    pub zip: Option<String>,
    /// `h1:` of the go.mod.
    pub gomod: Option<String>,
}

/// Why a module could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum SumDbError {
    #[error("checksum database {db}")]
    Upstream {
        db: String,
        #[source]
        source: UpstreamError,
    },
    #[error("checksum database {db} is not reachable through any upstream (the upstream list has no proxy that supports it and no `direct`)")]
    NoRoute { db: String },
    #[error("checksum database: {0}")]
    Invalid(String),
    #[error("checksum database: verifying the tree: {0}")]
    Proof(String),
    #[error("SECURITY ERROR: checksum database {db} misbehaves: its tree of size {newer} does not contain its earlier tree of size {older} (a fork); refusing its answers")]
    Fork { db: String, older: u64, newer: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SumDbError {
    /// What failed: the upstream's failure on the way to the database
    /// (`NotFound` when it has no such module version), or the database's.
    pub fn kind(&self) -> ErrorKind {
        match self {
            SumDbError::Upstream { source, .. } => source.kind(),
            SumDbError::NoRoute { .. } => ErrorKind::SumDb(SumDbFailure::NoRoute),
            SumDbError::Invalid(_) => ErrorKind::SumDb(SumDbFailure::Invalid),
            SumDbError::Proof(_) => ErrorKind::SumDb(SumDbFailure::Proof),
            SumDbError::Fork { .. } => ErrorKind::SumDb(SumDbFailure::Fork),
            SumDbError::Store(_) => ErrorKind::SumDb(SumDbFailure::Store),
        }
    }
}

/// One configured checksum database.
pub struct SumDb {
    name: String,
    key: String,
    direct_url: String,
    store: Arc<dyn Store>,
    upstreams: Arc<Upstreams>,
    private: PathPatterns,
    nosumdb: PathPatterns,
    route: Mutex<Option<(Instant, Option<ProxyUpstream>)>>,
    /// The newest tree head accepted and its signed note; loaded lazily.
    latest: tokio::sync::Mutex<Option<(Tree, Bytes)>>,
    /// The size of the newest tree head this process wrote to the store.
    persisted: tokio::sync::Mutex<u64>,
    /// The last write of an accepted tree head failed: the next lookup
    /// with that head tries again.
    unsaved: AtomicBool,
    /// Authenticated lookup answers and tiles on their way to the store,
    /// read from here until written: an answer never waits for the disk.
    writing: Mutex<HashMap<String, Bytes>>,
    /// Told each time a write of `writing` ends.
    landed: tokio::sync::Notify,
    /// Recently used lookup answers and tiles (immutable), so the go
    /// command's lookups and tile reads do not queue behind store writes.
    recent: HotCache,
    /// The writes of `writing` and of accepted tree heads, so shutdown can
    /// wait for them.
    pub background: TaskTracker,
}

impl SumDb {
    pub fn new(
        config: &SumDbConfig,
        store: Arc<dyn Store>,
        upstreams: Arc<Upstreams>,
        private: PathPatterns,
        nosumdb: PathPatterns,
    ) -> SumDb {
        SumDb {
            name: config.name.clone(),
            key: config.key.clone(),
            direct_url: config
                .url
                .clone()
                .unwrap_or_else(|| format!("https://{}", config.name)),
            store,
            upstreams,
            private,
            nosumdb,
            route: Mutex::new(None),
            latest: tokio::sync::Mutex::new(None),
            persisted: tokio::sync::Mutex::new(0),
            unsaved: AtomicBool::new(false),
            writing: Mutex::new(HashMap::new()),
            landed: tokio::sync::Notify::new(),
            recent: HotCache::with_tiers(&[RECENT]),
            background: TaskTracker::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether `module` is checked: not private and not exempted.
    pub fn covers(&self, module: &ModulePath) -> bool {
        !self.private.matches(module.as_str()) && !self.nosumdb.matches(module.as_str())
    }

    /// The verified hashes of `module`@`version`, for a fetch of it.
    pub async fn hashes(
        self: &Arc<Self>,
        module: &ModulePath,
        version: &str,
    ) -> Result<SumHashes, SumDbError> {
        let raw = self.lookup_for_fetch(module, version).await?;
        let record = parse_record(&raw).map_err(SumDbError::Invalid)?;
        let (zip, gomod) = hashes_for(record.text, module.as_str(), version);
        Ok(SumHashes { zip, gomod })
    }

    /// The raw lookup answer for `module`@`version`, verified: from memory
    /// or the store if it was verified before, else fetched, verified and
    /// stored; also says whether it was verified before.
    pub async fn lookup_cached(
        self: &Arc<Self>,
        module: &ModulePath,
        version: &str,
    ) -> Result<(Bytes, bool), SumDbError> {
        let (path, key) = self.lookup_path(module, version)?;
        if let Some(raw) = self.read_stored(&key).await? {
            return Ok((raw, true));
        }
        let raw = self.fetch(&path).await?;
        let raw = self.accept_lookup(raw, module, version, key).await?;
        Ok((raw, false))
    }

    /// Like [`SumDb::lookup_cached`], for a module version being fetched:
    /// unless it is in memory it is most likely not stored either (a
    /// go.mod fetched for the first time), so the database is asked while
    /// the store is read, not after. The request runs in a task of its
    /// own: when the stored answer wins, it still runs to its end (the
    /// upstream's health is judged by its requests).
    async fn lookup_for_fetch(
        self: &Arc<Self>,
        module: &ModulePath,
        version: &str,
    ) -> Result<Bytes, SumDbError> {
        let (path, key) = self.lookup_path(module, version)?;
        if let Some(raw) = self.remembered(&key) {
            return Ok(raw);
        }
        let db = Arc::clone(self);
        let fetched = tokio::spawn(async move { db.fetch(&path).await });
        if let Some(raw) = self.read_stored(&key).await? {
            return Ok(raw);
        }
        let raw = fetched
            .await
            .map_err(|e| SumDbError::Invalid(format!("lookup of {module}@{version}: {e}")))??;
        self.accept_lookup(raw, module, version, key).await
    }

    /// Authenticates a fetched lookup answer and stores it.
    async fn accept_lookup(
        self: &Arc<Self>,
        raw: Bytes,
        module: &ModulePath,
        version: &str,
        key: String,
    ) -> Result<Bytes, SumDbError> {
        self.authenticate(&raw, module, version).await?;
        self.store_behind(key, raw.clone());
        Ok(raw)
    }

    /// Stores an authenticated answer in the background; until it is
    /// written, [`SumDb::read_stored`] finds it in memory, and afterwards
    /// among the recent answers (a zip is verified with the lookup its
    /// go.mod just made). A failed write only costs a later lookup.
    fn store_behind(self: &Arc<Self>, key: String, data: Bytes) {
        self.recent.insert(&key, data.clone());
        if self
            .writing
            .locked()
            .insert(key.clone(), data.clone())
            .is_some()
        {
            return; // on its way already (immutable: the same bytes)
        }
        let db = Arc::clone(self);
        self.background.spawn(async move {
            if let Err(e) = db.store.put(&key, data).await {
                tracing::warn!(error = %chain(&e), "checksum database answer or tile not cached");
            }
            db.writing.locked().remove(&key);
            db.landed.notify_waiters();
        });
    }

    /// Whether the store holds the lookup answer for `module`@`version`
    /// (the record of a zip it vouched for); waits, boundedly, for a write
    /// of it under way.
    pub async fn lookup_stored(&self, module: &ModulePath, version: &str) -> bool {
        let Ok((_, key)) = self.lookup_path(module, version) else {
            return false;
        };
        let patience = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let landed = self.landed.notified();
            tokio::pin!(landed);
            landed.as_mut().enable();
            if !self.writing.locked().contains_key(&key) {
                break;
            }
            if tokio::time::timeout_at(patience, landed).await.is_err() {
                return false;
            }
        }
        self.store.exists(&key).await
    }

    /// The hashes of `module`@`version` with the stored lookup answer
    /// authenticated again (signature, tree consistency, inclusion), not
    /// trusted for being in the store: for `modproxy verify`.
    pub async fn hashes_reverified(
        self: &Arc<Self>,
        module: &ModulePath,
        version: &str,
    ) -> Result<SumHashes, SumDbError> {
        let (path, key) = self.lookup_path(module, version)?;
        let raw = match self.read_stored(&key).await? {
            Some(raw) => raw,
            None => self.fetch(&path).await?,
        };
        self.authenticate(&raw, module, version).await?;
        let record = parse_record(&raw).map_err(SumDbError::Invalid)?;
        let (zip, gomod) = hashes_for(record.text, module.as_str(), version);
        Ok(SumHashes { zip, gomod })
    }

    fn lookup_path(
        &self,
        module: &ModulePath,
        version: &str,
    ) -> Result<(String, String), SumDbError> {
        let escaped_version =
            escape_version(version).map_err(|e| SumDbError::Invalid(e.to_string()))?;
        let path = format!("lookup/{}@{escaped_version}", module.escaped());
        let key = format!("sumdb/{}/{path}", self.name);
        Ok((path, key))
    }

    /// Checks a lookup answer: its tree head is signed and consistent with
    /// the newest accepted, its record is in that tree, and the record is
    /// about `module`@`version`. Stores the tiles the proof authenticated.
    async fn authenticate(
        self: &Arc<Self>,
        raw: &[u8],
        module: &ModulePath,
        version: &str,
    ) -> Result<(), SumDbError> {
        let record = parse_record(raw).map_err(SumDbError::Invalid)?;
        let latest = self.merge_latest(record.note).await?;
        if record.id >= latest.n {
            return Err(SumDbError::Invalid(format!(
                "record {} is not in the tree of size {}",
                record.id, latest.n
            )));
        }
        let index = stored_hash_index(0, record.id);
        let (hashes, saved) = Tiles::run(self, latest, |thr| thr.read_hashes(&[index])).await?;
        if hashes.first() != Some(&record_hash(record.text)) {
            return Err(SumDbError::Invalid(format!(
                "cannot authenticate the record for {module}@{version} in the tree"
            )));
        }
        // A genuine record, but is it the one asked for?
        if hashes_for(record.text, module.as_str(), version) == (None, None) {
            return Err(SumDbError::Invalid(format!(
                "the answer to the lookup of {module}@{version} is a record of something else"
            )));
        }
        self.save_tiles(saved);
        Ok(())
    }

    /// Whether some route to the database exists (for `supported`).
    pub async fn reachable(&self) -> bool {
        self.route().await.is_ok()
    }

    /// A tile for a proof: from the store, or a stored full tile's prefix,
    /// or the network (partial tiles fall back to the full one, as the go
    /// command does), and whether it came from the store (stored tiles were
    /// authenticated when they were stored; others are not yet).
    pub async fn tile(&self, tile: Tile) -> Result<(Bytes, bool), SumDbError> {
        if let Some(data) = self.read_stored(&tile_key(&self.name, &tile)).await? {
            return Ok((data, true));
        }
        let full = full_tile(&tile);
        if full != tile {
            if let Some(data) = self.read_stored(&tile_key(&self.name, &full)).await? {
                if let Some(p) = prefix(&data, tile.width()) {
                    return Ok((p, true));
                }
            }
        }
        match self.fetch(&tile.path()).await {
            Ok(data) => Ok((data, false)),
            Err(e) if full != tile && e.kind().is_not_found() => {
                let data = self.fetch(&full.path()).await?;
                let p = prefix(&data, tile.width())
                    .ok_or_else(|| SumDbError::Invalid(format!("short tile {}", full.path())))?;
                Ok((p, false))
            }
            Err(e) => Err(e),
        }
    }

    /// Authenticates a full hash tile fetched for a client against the
    /// newest accepted tree head and has it stored (with the tiles the proof
    /// needed); `false` when it cannot be (e.g. beyond that tree).
    pub async fn keep_tile(self: &Arc<Self>, tile: Tile) -> bool {
        let h = tile.height();
        if tile.is_data() || tile.width() != 1 << h {
            return false;
        }
        let Ok((latest, _)) = self.current_latest().await else {
            return false;
        };
        let level = tile.level() * h;
        let index = stored_hash_index(level, tile.level_index() << h);
        if latest.n == 0 || index >= stored_hash_index(0, latest.n) {
            return false;
        }
        match Tiles::run(self, latest, |thr| thr.read_hashes(&[index])).await {
            Ok((_, saved)) => {
                let kept = saved.iter().any(|(t, _)| *t == tile);
                self.save_tiles(saved);
                kept
            }
            Err(e) => {
                tracing::debug!(tile = %tile.path(), error = %chain(&e), "tile not authenticated; not cached");
                false
            }
        }
    }

    /// Stores tiles a proof authenticated, in the background like lookup
    /// answers: read from memory until written, so no lookup waits for
    /// the disk (the first lookup of a run stores a handful).
    fn save_tiles(self: &Arc<Self>, tiles: Vec<(Tile, Vec<u8>)>) {
        for (tile, data) in tiles {
            self.store_behind(tile_key(&self.name, &tile), Bytes::from(data));
        }
    }

    /// An immutable stored answer (a lookup, a tile): from memory when it
    /// was used recently or is still being written, else from the store.
    async fn read_stored(&self, key: &str) -> Result<Option<Bytes>, SumDbError> {
        if let Some(data) = self.remembered(key) {
            return Ok(Some(data));
        }
        let data = self.read_store(key).await?;
        if let Some(data) = &data {
            self.recent.insert(key, data.clone());
        }
        Ok(data)
    }

    /// An immutable answer kept in memory: on its way to the store, or
    /// used recently.
    fn remembered(&self, key: &str) -> Option<Bytes> {
        let writing = self.writing.locked();
        writing.get(key).cloned().or_else(|| self.recent.get(key))
    }

    /// What the store holds at `key`, read now.
    async fn read_store(&self, key: &str) -> Result<Option<Bytes>, SumDbError> {
        match self.store.get(key).await? {
            Some(object) => Ok(Some(object.into_bytes(key).await?)),
            None => Ok(None),
        }
    }

    /// GETs `path` from the database along its route.
    pub async fn fetch(&self, path: &str) -> Result<Bytes, SumDbError> {
        let route = self.route().await?;
        let fetched = route
            .get(self.upstreams.http(), path)
            .await
            .map_err(|source| self.upstream_error(source))?;
        fetched
            .bytes(path, ANSWER_LIMIT)
            .await
            .map_err(|source| self.upstream_error(source))
    }

    fn upstream_error(&self, source: UpstreamError) -> SumDbError {
        SumDbError::Upstream {
            db: self.name.clone(),
            source,
        }
    }

    /// The base URL of the database: the first upstream proxy supporting
    /// it, or the database itself where the list says `direct`.
    async fn route(&self) -> Result<ProxyUpstream, SumDbError> {
        if let Some((at, route)) = &*self.route.locked() {
            if at.elapsed() < ROUTE_TTL {
                return route.clone().ok_or_else(|| SumDbError::NoRoute {
                    db: self.name.clone(),
                });
            }
        }
        let mut found = None;
        for (source, fall_through_on_error) in self.upstreams.public().entries() {
            match source {
                Source::Proxy(p) => {
                    // Shares the proxy's circuit breaker.
                    let candidate = p.sub(&format!("sumdb/{}", self.name));
                    match candidate.get(self.upstreams.http(), "supported").await {
                        Ok(_) => {
                            found = Some(candidate);
                            break;
                        }
                        Err(e) if e.kind().is_not_found() || fall_through_on_error => continue,
                        Err(e) => return Err(self.upstream_error(e)),
                    }
                }
                Source::Direct => {
                    let policy = &self.upstreams.http().policy;
                    found = Some(ProxyUpstream::new(&self.direct_url, policy));
                    break;
                }
                Source::Off => break,
            }
        }
        // Only a route found is remembered: a failure is retried next time.
        if let Some(route) = &found {
            *self.route.locked() = Some((Instant::now(), Some(route.clone())));
        }
        found.ok_or_else(|| SumDbError::NoRoute {
            db: self.name.clone(),
        })
    }
}
