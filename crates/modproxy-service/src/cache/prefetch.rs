//! Predictive prefetch: the go command walks the module graph one round
//! trip at a time (a go.mod, then the `.mod` of each requirement, then
//! theirs…). When a `.mod` passes through the proxy, its requirements are
//! fetched in the background, recursively to a bounded depth, so that the
//! client's next requests are hits or join a fetch already under way.
//!
//! Bounded everywhere: a fixed queue (new work is dropped when full), a
//! fixed number of concurrent prefetches, a depth limit, a set of what was
//! already scheduled. Client requests never wait for it: they only join a
//! prefetch that happens to fetch what they want. Prefetch pauses while
//! every upstream of a module is skipped by its circuit breaker; "not
//! found" answers land in the negative cache like any other.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use modproxy_module::modfile::requirements;
use modproxy_module::path::ModulePath;
use modproxy_module::semver;
use tokio::sync::{mpsc, watch, Semaphore};

use super::fetch::parse_info;
use super::flight::{self, FlightState, Landed};
use super::handled::{Handled, Token};
use super::Cache;
use crate::metrics::Metrics;
use crate::request::{Endpoint, ModuleRequest};
use crate::settings::PrefetchMode;
use crate::sync::Locked;

/// How far down the requirement graph a served go.mod reaches.
const MAX_DEPTH: u32 = 8;
/// Module versions waiting to be prefetched.
const QUEUE: usize = 4096;
/// Prefetches running at once.
const CONCURRENCY: usize = 32;
/// Past this many, the set of scheduled module versions starts over.
const SEEN_LIMIT: usize = 100_000;
/// A prefetched file nobody asked for within this long counts as wasted.
const USE_WINDOW: Duration = Duration::from_secs(600);

/// Why a version is prefetched, which decides what comes with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// Resolved by a query, a version list or an `.info`: its go.mod and
    /// `.info`, and its requirements' (recursively).
    Resolved,
    /// In a module graph a client walks (its go.mod was asked for, or it is
    /// a requirement of one that was): the same, and its requirements count
    /// as walked too.
    Walked,
    /// A walked version whose `.info` a client asked for: also its zip.
    Zip,
}

struct Job {
    module: ModulePath,
    version: String,
    depth: u32,
    want: Want,
}

impl Job {
    /// What `seen` holds for this job: `module@version`, plus ` zip` when
    /// the zip is wanted (a version first scheduled without its zip can be
    /// scheduled again with it).
    fn id(module: &ModulePath, version: &str, want: Want) -> String {
        let zip = if want == Want::Zip { " zip" } else { "" };
        format!("{module}@{version}{zip}")
    }
}

pub(super) struct Prefetcher {
    mode: PrefetchMode,
    tx: mpsc::Sender<Job>,
    rx: Mutex<Option<mpsc::Receiver<Job>>>,
    /// [`Job::id`]s already scheduled.
    seen: Mutex<HashSet<String>>,
    /// `module@version`s of module graphs walked lately: go.mods clients
    /// asked for, and their requirements.
    walked: Mutex<HashSet<String>>,
    /// Files fetched by prefetch that no client has asked for yet.
    unused: Mutex<HashMap<String, Instant>>,
    /// Immutable files whose answer went through these books already.
    handled: Handled,
}

/// Whether an answer goes through the prefetch books, and the token that
/// notes it did (immutable files only).
pub(super) struct Books {
    pub(super) due: bool,
    token: Option<Token>,
}

impl Prefetcher {
    pub(super) fn new(mode: PrefetchMode) -> Prefetcher {
        let (tx, rx) = mpsc::channel(QUEUE);
        Prefetcher {
            mode,
            tx,
            rx: Mutex::new(Some(rx)),
            seen: Mutex::default(),
            walked: Mutex::default(),
            unused: Mutex::default(),
            handled: Handled::new(),
        }
    }

    /// Whether the answer for `key` goes through the books: prefetch is
    /// on and, for an immutable file, it has not since the books last
    /// changed in a way that matters to it (see [`Handled`]).
    pub(super) fn books(&self, key: &str, immutable: bool) -> Books {
        if !self.enabled() {
            return Books {
                due: false,
                token: None,
            };
        }
        let token = immutable.then(|| self.handled.token(key));
        Books {
            due: token.is_none_or(|t| !self.handled.contains(t)),
            token,
        }
    }

    /// The answer went through the books.
    pub(super) fn booked(&self, books: Books) {
        if let Some(token) = books.token {
            self.handled.insert(token);
        }
    }

    pub(super) fn enabled(&self) -> bool {
        self.mode != PrefetchMode::Off
    }

    /// A client asked for `key`: if prefetch fetched it, it was used.
    pub(super) fn claim(&self, key: &str, metrics: &Metrics) {
        let mut unused = self.unused.locked();
        if unused.remove(key).is_some() {
            Metrics::inc(&metrics.prefetch_used);
        }
    }

    fn mark_fetched(&self, key: &str, metrics: &Metrics) {
        let now = Instant::now();
        let mut unused = self.unused.locked();
        let before = unused.len();
        unused.retain(|_, at| now.duration_since(*at) < USE_WINDOW);
        for _ in unused.len()..before {
            Metrics::inc(&metrics.prefetch_wasted);
        }
        unused.insert(key.to_string(), now);
        // The next client to ask for it must claim it.
        self.handled.forget_all();
    }

    fn forget_fetched(&self, key: &str) {
        let mut unused = self.unused.locked();
        unused.remove(key);
    }

    /// Queues `module`@`version` for what it is wanted for, unless already
    /// scheduled; drops it when the queue is full.
    fn schedule(&self, module: &str, version: &str, depth: u32, want: Want, metrics: &Metrics) {
        let Ok(module) = ModulePath::new(module) else {
            return;
        };
        if !semver::is_canonical_module_version(version) || !module.matches_major(version) {
            return;
        }
        let id = Job::id(&module, version, want);
        if !self.remember(&self.seen, id.clone()) {
            return;
        }
        let job = Job {
            module,
            version: version.to_string(),
            depth,
            want,
        };
        if self.tx.try_send(job).is_err() {
            // Dropped: may be scheduled again later.
            self.unsee(&id);
            Metrics::inc(&metrics.prefetch_skipped);
        }
    }

    /// Notes `module`@`version` as part of a module graph being walked.
    fn walk(&self, module: &str, version: &str) {
        if self.remember(&self.walked, format!("{module}@{version}")) {
            // Its `.info`, asked before, now also means its zip.
            self.handled.forget_all();
        }
    }

    /// Whether the zip of `module`@`version` is due with its `.info`: in
    /// `mod` mode (`zip` fetches every zip anyway), for a version of a
    /// module graph walked lately.
    fn zip_with_info(&self, module: &str, version: &str) -> bool {
        let walked = self.walked.locked();
        self.mode == PrefetchMode::Mod && walked.contains(&format!("{module}@{version}"))
    }

    /// Forgets that `id` (a [`Job::id`]) was scheduled.
    fn unsee(&self, id: &str) {
        let mut seen = self.seen.locked();
        seen.remove(id);
        // The next answer naming it schedules it again.
        self.handled.forget_all();
    }

    /// Adds `id` to a set bounded at [`SEEN_LIMIT`] (past it, the set
    /// starts over, and so do the books); whether it was new.
    fn remember(&self, set: &Mutex<HashSet<String>>, id: String) -> bool {
        let mut set = set.locked();
        if set.len() >= SEEN_LIMIT {
            set.clear();
            self.handled.forget_all();
        }
        set.insert(id)
    }
}

impl Cache {
    /// Starts the prefetch workers (once).
    pub(super) fn start_prefetch(self: &Arc<Self>) {
        let rx = self.prefetch.rx.locked().take();
        let Some(mut rx) = rx.filter(|_| self.prefetch.enabled()) else {
            return;
        };
        if let Some(db) = self.sumdb.clone() {
            // The route to the checksum database is found now, not on the
            // first client's critical path.
            tokio::spawn(async move { db.reachable().await });
        }
        let cache = Arc::clone(self);
        tokio::spawn(async move {
            let permits = Arc::new(Semaphore::new(CONCURRENCY));
            while let Some(job) = rx.recv().await {
                let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                    return;
                };
                let cache = Arc::clone(&cache);
                tokio::spawn(async move {
                    cache.prefetch_one(job).await;
                    drop(permit);
                });
            }
        });
    }

    /// A client got an answer: a `.mod` means its requirements come next;
    /// a resolved version (`@latest`, a query) means its `.mod` and then
    /// its requirements do; a version list usually means the go command is
    /// resolving `latest` from it next. A `.info` of a version in the
    /// module graph being walked also means its zip: `go mod download`
    /// asks every module's `.info` one after the other before it downloads
    /// their zips two at a time, so the zips are fetched while it is still
    /// listing.
    ///
    /// Nothing is scheduled while every upstream proxy of the module is
    /// skipped by its circuit breaker (each hit would queue a job that is
    /// dropped at once). Whether the books are done with this answer: false
    /// when the same answer again must look once more (an upstream was
    /// down).
    pub(super) fn after_answer(
        self: &Arc<Self>,
        request: &ModuleRequest,
        answer: Option<Bytes>,
    ) -> bool {
        let module = &request.module;
        let healthy = match self.upstreams.proxy_health(module) {
            // Fetched directly or not at all: nothing to prefetch, ever.
            None => return true,
            Some(healthy) => healthy,
        };
        if let Endpoint::Mod(version) = &request.endpoint {
            self.prefetch.walk(module.as_str(), version);
        }
        if !healthy {
            return false;
        }
        match &request.endpoint {
            Endpoint::Mod(version) => {
                self.prefetch
                    .schedule(module.as_str(), version, 0, Want::Walked, &self.metrics);
            }
            Endpoint::Info(version) => {
                // The zip only for a version of a module graph walked
                // lately: `go list -m -u` asks the `.info` of upgrade
                // candidates (and `go mod tidy` of a module it adds) and
                // no zip, or fetches it itself.
                let want = if self.prefetch.zip_with_info(module.as_str(), version) {
                    Want::Zip
                } else {
                    Want::Resolved
                };
                self.prefetch
                    .schedule(module.as_str(), version, 0, want, &self.metrics);
            }
            Endpoint::Latest | Endpoint::Query(_) | Endpoint::List => {
                // The version is in the answer (a stored one that was not
                // read whole is read again, off the hot path).
                let cache = Arc::clone(self);
                let request = request.clone();
                tokio::spawn(async move {
                    let answer = match answer {
                        Some(bytes) => bytes,
                        None => match cache.read_small(&request.protocol_path()).await {
                            Ok(Some(bytes)) => bytes,
                            _ => return,
                        },
                    };
                    let version = match request.endpoint {
                        Endpoint::List => latest_in_list(&request.module, &answer),
                        _ => parse_info(&answer).ok(),
                    };
                    if let Some(version) = version {
                        let module = request.module.as_str();
                        let metrics = &cache.metrics;
                        let want = Want::Resolved;
                        cache.prefetch.schedule(module, &version, 0, want, metrics);
                    }
                });
            }
            Endpoint::Zip(_) => {}
        }
        true
    }

    /// Makes sure the files of one module version are stored (fetching
    /// what is missing, coalesced with client requests, all at once), and
    /// as soon as its go.mod is there schedules its requirements one level
    /// deeper: the next level must not wait for this one's other files.
    async fn prefetch_one(self: Arc<Self>, job: Job) {
        if !self.upstreams.healthy_for(&job.module) {
            self.prefetch
                .unsee(&Job::id(&job.module, &job.version, job.want));
            Metrics::inc(&self.metrics.prefetch_skipped);
            return;
        }
        let endpoints = [
            Endpoint::Mod(job.version.clone()),
            Endpoint::Info(job.version.clone()),
        ];
        let gomod_key = ModuleRequest {
            module: job.module.clone(),
            endpoint: Endpoint::Mod(job.version.clone()),
        }
        .protocol_path();
        let (mut gomod, mut others) = (None, Vec::new());
        for endpoint in endpoints {
            let request = ModuleRequest {
                module: job.module.clone(),
                endpoint,
            };
            let key = request.protocol_path();
            let seen = self.flights.landed();
            if !self.needs_prefetch(&key).await {
                continue;
            }
            let flight = self.start_prefetch_flight(request, key, seen);
            if matches!(flight.0.endpoint, Endpoint::Mod(_)) {
                gomod = Some(flight);
            } else {
                others.push(flight);
            }
        }
        // The go.mod as the flight landed it (it may not be in the store
        // yet: answers go out before the store write), else as stored.
        // A job any of whose fetches failed (an upstream down, or skipped
        // while its breaker probes) is forgotten at the end, so the next
        // answer naming it schedules it again.
        let mut failed = false;
        let gomod = match gomod {
            Some(flight) => match self.prefetched(flight).await {
                Some(Landed::Bytes(bytes)) => Some(bytes),
                Some(_) => self.read_small(&gomod_key).await.ok().flatten(),
                None => {
                    failed = true;
                    None
                }
            },
            None => self.read_small(&gomod_key).await.ok().flatten(),
        };
        let gomod_stored = gomod.is_some();
        if let Some(gomod) = gomod.filter(|_| job.depth < MAX_DEPTH) {
            let want = match job.want {
                Want::Resolved => Want::Resolved,
                Want::Walked | Want::Zip => Want::Walked,
            };
            for (path, version) in requirements(&gomod) {
                if want == Want::Walked {
                    self.prefetch.walk(&path, &version);
                }
                let depth = job.depth + 1;
                self.prefetch
                    .schedule(&path, &version, depth, want, &self.metrics);
            }
        }
        // The zip only for a module whose go.mod is there and verified: a
        // bad one must not cost a whole download.
        if gomod_stored && (job.want == Want::Zip || self.prefetch.mode == PrefetchMode::Zip) {
            let request = ModuleRequest {
                module: job.module.clone(),
                endpoint: Endpoint::Zip(job.version.clone()),
            };
            let key = request.protocol_path();
            let seen = self.flights.landed();
            if self.needs_prefetch(&key).await {
                others.push(self.start_prefetch_flight(request, key, seen));
            }
        }
        for flight in others {
            failed |= self.prefetched(flight).await.is_none();
        }
        if failed {
            self.prefetch
                .unsee(&Job::id(&job.module, &job.version, job.want));
        }
    }

    /// Whether `key` is neither stored nor known to be missing.
    async fn needs_prefetch(&self, key: &str) -> bool {
        self.negative.get(key).is_none() && matches!(self.store.get(key).await, Ok(None))
    }

    /// Starts (or joins) the fetch of `request` for prefetch; `seen` as
    /// for [`Cache::start_fetch`].
    fn start_prefetch_flight(
        self: &Arc<Self>,
        request: ModuleRequest,
        key: String,
        seen: u64,
    ) -> (ModuleRequest, String, watch::Receiver<FlightState>) {
        self.prefetch.mark_fetched(&key, &self.metrics);
        Metrics::inc(&self.metrics.prefetch_started);
        let rx = self.start_fetch(&request, &key, Some(seen)).rx;
        (request, key, rx)
    }

    /// Waits for one prefetch flight; how it landed, `None` if it failed.
    async fn prefetched(
        &self,
        (request, key, mut rx): (ModuleRequest, String, watch::Receiver<FlightState>),
    ) -> Option<Landed> {
        match flight::finished(&mut rx).await {
            Ok(landed) => Some(landed),
            Err(e) => {
                tracing::debug!(%request, error = %crate::error::chain(&e), "prefetch failed");
                self.prefetch.forget_fetched(&key);
                None
            }
        }
    }

    /// A small stored object's bytes.
    async fn read_small(
        &self,
        key: &str,
    ) -> Result<Option<bytes::Bytes>, crate::store::StoreError> {
        match self.store.get(key).await? {
            Some(object) => object.into_bytes(key).await.map(Some),
            None => Ok(None),
        }
    }
}

/// The version the go command's `latest` query picks from a version list:
/// the highest release, else the highest prerelease, of the module's major
/// version; `+incompatible` ones only when there is nothing else (a guess:
/// the go command skips them when the latest compatible version has a
/// go.mod, which only costs a wasted prefetch when wrong).
fn latest_in_list(module: &ModulePath, list: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(list).ok()?;
    let candidates: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|v| semver::is_canonical_module_version(v) && module.matches_major(v))
        .collect();
    let highest = |incompatible: bool| {
        let (mut release, mut pre): (Option<&str>, Option<&str>) = (None, None);
        for &v in &candidates {
            if v.ends_with("+incompatible") != incompatible {
                continue;
            }
            let best = if semver::prerelease(v).is_some() {
                &mut pre
            } else {
                &mut release
            };
            if best.is_none_or(|b| semver::compare(v, b).is_gt()) {
                *best = Some(v);
            }
        }
        release.or(pre)
    };
    highest(false).or_else(|| highest(true)).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_in_list_prefers_releases_of_the_right_major() {
        let m = ModulePath::new("example.com/m").unwrap();
        let list = b"v1.2.0\nv1.10.0\nv1.11.0-rc.1\nv2.0.0+incompatible\nv2.0.0\n";
        assert_eq!(latest_in_list(&m, list).as_deref(), Some("v1.10.0"));
        let pre = b"v1.0.0-alpha\nv1.0.0-beta\n";
        assert_eq!(latest_in_list(&m, pre).as_deref(), Some("v1.0.0-beta"));
        assert_eq!(latest_in_list(&m, b""), None);
        let v2 = ModulePath::new("example.com/m/v2").unwrap();
        assert_eq!(latest_in_list(&v2, list).as_deref(), Some("v2.0.0"));
        let only_incompatible = b"v2.0.0+incompatible\nv3.0.0+incompatible\n";
        assert_eq!(
            latest_in_list(&m, only_incompatible).as_deref(),
            Some("v3.0.0+incompatible")
        );
    }
}
