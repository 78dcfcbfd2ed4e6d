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

use modproxy_module::gomod::requirements;
use modproxy_module::path::ModulePath;
use modproxy_module::semver;
use tokio::sync::{mpsc, Semaphore};

use super::{flight, Cache};
use crate::metrics::Metrics;
use crate::request::{Endpoint, ModuleRequest};
use crate::settings::PrefetchMode;

/// How far down the requirement graph a served go.mod reaches.
const MAX_DEPTH: u32 = 8;
/// Module versions waiting to be prefetched.
const QUEUE: usize = 4096;
/// Prefetches running at once.
const CONCURRENCY: usize = 8;
/// Past this many, the set of scheduled module versions starts over.
const SEEN_LIMIT: usize = 100_000;
/// A prefetched file nobody asked for within this long counts as wasted.
const USE_WINDOW: Duration = Duration::from_secs(600);

struct Job {
    module: ModulePath,
    version: String,
    depth: u32,
}

pub(super) struct Prefetcher {
    mode: PrefetchMode,
    tx: mpsc::Sender<Job>,
    rx: Mutex<Option<mpsc::Receiver<Job>>>,
    /// `module@version` already scheduled.
    seen: Mutex<HashSet<String>>,
    /// Files fetched by prefetch that no client has asked for yet.
    unused: Mutex<HashMap<String, Instant>>,
}

impl Prefetcher {
    pub(super) fn new(mode: PrefetchMode) -> Prefetcher {
        let (tx, rx) = mpsc::channel(QUEUE);
        Prefetcher {
            mode,
            tx,
            rx: Mutex::new(Some(rx)),
            seen: Mutex::default(),
            unused: Mutex::default(),
        }
    }

    pub(super) fn enabled(&self) -> bool {
        self.mode != PrefetchMode::Off
    }

    /// A client asked for `key`: if prefetch fetched it, it was used.
    pub(super) fn claim(&self, key: &str, metrics: &Metrics) {
        let mut unused = self.unused.lock().unwrap_or_else(|p| p.into_inner());
        if unused.remove(key).is_some() {
            Metrics::inc(&metrics.prefetch_used);
        }
    }

    fn mark_fetched(&self, key: &str, metrics: &Metrics) {
        let now = Instant::now();
        let mut unused = self.unused.lock().unwrap_or_else(|p| p.into_inner());
        let before = unused.len();
        unused.retain(|_, at| now.duration_since(*at) < USE_WINDOW);
        for _ in unused.len()..before {
            Metrics::inc(&metrics.prefetch_wasted);
        }
        unused.insert(key.to_string(), now);
    }

    fn forget_fetched(&self, key: &str) {
        let mut unused = self.unused.lock().unwrap_or_else(|p| p.into_inner());
        unused.remove(key);
    }

    /// Queues `module`@`version` unless already scheduled; drops it when
    /// the queue is full.
    fn schedule(&self, module: &str, version: &str, depth: u32, metrics: &Metrics) {
        let Ok(module) = ModulePath::new(module) else {
            return;
        };
        if !semver::is_canonical_module_version(version) || !module.matches_major(version) {
            return;
        }
        let id = format!("{module}@{version}");
        {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            if seen.len() >= SEEN_LIMIT {
                seen.clear();
            }
            if !seen.insert(id.clone()) {
                return;
            }
        }
        let job = Job {
            module,
            version: version.to_string(),
            depth,
        };
        if self.tx.try_send(job).is_err() {
            // Dropped: may be scheduled again later.
            self.unsee(&id);
            Metrics::inc(&metrics.prefetch_skipped);
        }
    }

    /// Forgets that `id` (module@version) was scheduled.
    fn unsee(&self, id: &str) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.remove(id);
    }
}

impl Cache {
    /// Starts the prefetch workers (once).
    pub(super) fn start_prefetch(self: &Arc<Self>) {
        let rx = self
            .prefetch
            .rx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let Some(mut rx) = rx.filter(|_| self.prefetch.enabled()) else {
            return;
        };
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
    /// a resolved version (`.info`, `@latest`, a query) means its `.mod`
    /// and then its requirements do.
    pub(super) fn after_answer(self: &Arc<Self>, request: &ModuleRequest) {
        if !self.prefetch.enabled() {
            return;
        }
        let module = &request.module;
        match &request.endpoint {
            Endpoint::Mod(version) | Endpoint::Info(version) => {
                self.prefetch
                    .schedule(module.as_str(), version, 0, &self.metrics);
            }
            Endpoint::Latest | Endpoint::Query(_) => {
                // The version is in the stored answer; read it off the hot path.
                let cache = Arc::clone(self);
                let request = request.clone();
                tokio::spawn(async move {
                    let key = request.protocol_path();
                    let Ok(Some(info)) = cache.read_small(&key).await else {
                        return;
                    };
                    #[derive(serde::Deserialize)]
                    struct Info {
                        #[serde(rename = "Version")]
                        version: String,
                    }
                    if let Ok(info) = serde_json::from_slice::<Info>(&info) {
                        let module = request.module.as_str();
                        cache
                            .prefetch
                            .schedule(module, &info.version, 0, &cache.metrics);
                    }
                });
            }
            Endpoint::List | Endpoint::Zip(_) => {}
        }
    }

    /// Makes sure the files of one module version are stored (fetching
    /// what is missing, coalesced with client requests), then schedules its
    /// requirements one level deeper.
    async fn prefetch_one(self: Arc<Self>, job: Job) {
        if !self.upstreams.healthy_for(&job.module) {
            self.prefetch
                .unsee(&format!("{}@{}", job.module, job.version));
            Metrics::inc(&self.metrics.prefetch_skipped);
            return;
        }
        let mut endpoints = vec![
            Endpoint::Mod(job.version.clone()),
            Endpoint::Info(job.version.clone()),
        ];
        if self.prefetch.mode == PrefetchMode::Zip {
            endpoints.push(Endpoint::Zip(job.version.clone()));
        }
        for endpoint in endpoints {
            let request = ModuleRequest {
                module: job.module.clone(),
                endpoint,
            };
            let key = request.protocol_path();
            if self.negative.get(&key).is_some()
                || matches!(self.store.get(&key).await, Ok(Some(_)))
            {
                continue;
            }
            self.prefetch.mark_fetched(&key, &self.metrics);
            Metrics::inc(&self.metrics.prefetch_started);
            let mut rx = self.start_fetch(&request, &key).rx;
            if let Err(e) = flight::finished(&mut rx).await {
                tracing::debug!(%request, error = %e, "prefetch failed");
                self.prefetch.forget_fetched(&key);
                if matches!(request.endpoint, Endpoint::Mod(_)) {
                    return;
                }
            }
        }
        if job.depth >= MAX_DEPTH {
            return;
        }
        let request = ModuleRequest {
            module: job.module.clone(),
            endpoint: Endpoint::Mod(job.version.clone()),
        };
        let Ok(Some(gomod)) = self.read_small(&request.protocol_path()).await else {
            return;
        };
        for (path, version) in requirements(&gomod) {
            self.prefetch
                .schedule(&path, &version, job.depth + 1, &self.metrics);
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
