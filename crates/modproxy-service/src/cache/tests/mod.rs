//! Unit tests of the cache core (coalescing, UPDATING/STALE, negative
//! caching, zip streaming and the relay) against an in-process fake
//! upstream, a disk store in a temporary directory and no checksum
//! database: no network, no Go toolchain, milliseconds each.

mod coalescing;
mod mutable;
mod relay;
mod zips;

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use modproxy_module::path::ModulePath;
use tokio::sync::mpsc;

use super::{Answer, AnswerBody, Cache, CacheConfig, CacheStatus};
use crate::error::ServeError;
use crate::metrics::Metrics;
use crate::request::{Endpoint, ModuleRequest};
use crate::settings::{CachePolicy, PrefetchMode, UpstreamPolicy};
use crate::store::whole::WholeReads;
use crate::store::{evict, DiskStore, Store, StoreError, StoredObject};
use crate::sync::Locked;
use crate::upstream::{Fetched, Http, Upstream, UpstreamError};

pub(super) const MODULE: &str = "example.com/m";
pub(super) const VERSION: &str = "v1.0.0";

/// What the fake upstream answers for one protocol path.
#[derive(Clone)]
pub(super) enum Reply {
    /// 404.
    NotFound,
    /// A 503.
    Fail,
    Body(Body),
}

/// A 200 answer, sent piece by piece.
#[derive(Clone)]
pub(super) struct Body {
    pub data: Bytes,
    /// Size of the pieces handed over.
    pub piece: usize,
    /// Wait before each piece.
    pub delay: Duration,
    /// Wait before the headers (so that concurrent requests all join).
    pub headers_after: Duration,
    /// The body breaks (an error instead of the next piece) here.
    pub break_at: Option<usize>,
}

impl Body {
    pub fn new(data: impl Into<Bytes>) -> Body {
        Body {
            data: data.into(),
            piece: 64 * 1024,
            delay: Duration::ZERO,
            headers_after: Duration::from_millis(20),
            break_at: None,
        }
    }
}

/// An upstream in the test process: answers from a table, counts fetches.
pub(super) struct Fake {
    replies: Mutex<HashMap<String, Reply>>,
    fetches: Mutex<HashMap<String, usize>>,
    /// Bodies whose reader went away before their end.
    abandoned: Arc<AtomicUsize>,
    stall: Duration,
}

impl Fake {
    pub fn new(stall: Duration) -> Arc<Fake> {
        Arc::new(Fake {
            replies: Mutex::default(),
            fetches: Mutex::default(),
            abandoned: Arc::default(),
            stall,
        })
    }

    pub fn reply(&self, key: &str, reply: Reply) {
        self.replies.locked().insert(key.to_string(), reply);
    }

    /// Upstream fetches of `key` so far.
    pub fn fetches(&self, key: &str) -> usize {
        self.fetches.locked().get(key).copied().unwrap_or(0)
    }

    pub fn abandoned(&self) -> usize {
        self.abandoned.load(Ordering::SeqCst)
    }
}

/// A client for [`Fetched::pieces`] (never used to connect), made once.
fn http() -> &'static Http {
    static HTTP: OnceLock<Http> = OnceLock::new();
    HTTP.get_or_init(|| {
        let second = Duration::from_secs(1);
        Http {
            client: reqwest::Client::new(),
            policy: UpstreamPolicy {
                connect: second,
                headers: second,
                stall: second,
                deadline: 60 * second,
                retries: 0,
                retry_base: second,
                breaker_threshold: 1,
                breaker_cooldown: second,
                hedge_after: None,
            },
            guard: None,
        }
    })
}

#[async_trait]
impl Upstream for Fake {
    async fn fetch(&self, _module: &ModulePath, path: &str) -> Result<Fetched, UpstreamError> {
        *self.fetches.locked().entry(path.to_string()).or_default() += 1;
        let reply = self.replies.locked().get(path).cloned();
        let body = match reply {
            None | Some(Reply::NotFound) => {
                return Err(UpstreamError::NotFound {
                    upstream: "fake".into(),
                    message: format!("{path}: no such file"),
                })
            }
            Some(Reply::Fail) => {
                return Err(UpstreamError::Status {
                    upstream: "fake".into(),
                    status: 503,
                    message: "unavailable".into(),
                })
            }
            Some(Reply::Body(body)) => body,
        };
        tokio::time::sleep(body.headers_after).await;
        // One piece at a time: a reader that stops stops the sender.
        let (tx, rx) = mpsc::channel(1);
        let length = Some(body.data.len() as u64);
        let fetched = Fetched::pieces(http(), "fake", length, rx);
        let abandoned = Arc::clone(&self.abandoned);
        tokio::spawn(async move {
            let mut at = 0;
            while at < body.data.len() {
                if !body.delay.is_zero() {
                    tokio::time::sleep(body.delay).await;
                }
                let piece = if body.break_at.is_some_and(|b| at >= b) {
                    Err(UpstreamError::Timeout {
                        upstream: "fake".into(),
                        step: crate::error::Step::Body,
                        after: Duration::from_secs(1),
                    })
                } else {
                    let end = (at + body.piece).min(body.data.len());
                    let piece = body.data.slice(at..end);
                    at = end;
                    Ok(piece)
                };
                let failed = piece.is_err();
                if tx.send(piece).await.is_err() {
                    abandoned.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                if failed {
                    return;
                }
            }
        });
        Ok(fetched)
    }

    fn stall(&self) -> Duration {
        self.stall
    }

    fn proxy_health(&self, _module: &ModulePath) -> Option<bool> {
        Some(true)
    }
}

/// A directory of its own under the system's temporary directory,
/// removed when dropped.
pub(super) struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let name = format!("modproxy-cache-test-{}-{n}", std::process::id());
        let path = std::env::temp_dir().join(name);
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A cache on a disk store in a temporary directory, fed by a [`Fake`].
pub(super) struct Setup {
    pub cache: Arc<Cache>,
    pub fake: Arc<Fake>,
    pub store: Arc<dyn Store>,
    pub disk: Arc<DiskStore>,
    _dir: TempDir,
}

/// A policy that keeps mutable entries fresh for a minute.
pub(super) fn policy() -> CachePolicy {
    CachePolicy {
        fresh_for: Duration::from_secs(60),
        max_stale: Duration::from_secs(3600),
        negative_ttl: Duration::from_secs(60),
    }
}

impl Setup {
    pub fn new(policy: CachePolicy) -> Setup {
        Setup::with(policy, Duration::from_secs(30), true)
    }

    /// `stall`: the upstream's stall timeout (the relay's patience);
    /// without `spool`, no spool file can be made.
    pub fn with(policy: CachePolicy, stall: Duration, spool: bool) -> Setup {
        Setup::reading_whole(policy, stall, spool, WholeReads::default())
    }

    /// As [`Setup::with`], with the store's budget of copies read whole.
    pub fn reading_whole(
        policy: CachePolicy,
        stall: Duration,
        spool: bool,
        whole: WholeReads,
    ) -> Setup {
        let dir = TempDir::new();
        let disk = DiskStore::open(&dir.path().join("store")).unwrap();
        let disk = Arc::new(disk.reading_whole(whole));
        let store: Arc<dyn Store> = if spool {
            Arc::clone(&disk) as Arc<dyn Store>
        } else {
            Arc::new(NoSpool {
                disk: Arc::clone(&disk),
                spool: dir.path().join("no-such-directory"),
            })
        };
        let fake = Fake::new(stall);
        let config = CacheConfig {
            policy,
            cached_only: false,
            prefetch: PrefetchMode::Off,
            locks: None,
        };
        let metrics = Arc::new(Metrics::default());
        let upstream = Arc::clone(&fake) as Arc<dyn Upstream>;
        let cache = Cache::new(Arc::clone(&store), upstream, None, metrics, config);
        Setup {
            cache,
            fake,
            store,
            disk,
            _dir: dir,
        }
    }

    /// Asks the cache for `request`.
    pub async fn get(&self, request: &ModuleRequest) -> Result<Answer, (CacheStatus, ServeError)> {
        let key = request.protocol_path();
        self.cache.get(request, key, false).await
    }

    /// Waits for every fetch and store write started so far.
    pub async fn settled(&self) {
        self.cache.settled().await;
    }

    /// The stored bytes at `key`, if any.
    pub async fn stored(&self, key: &str) -> Option<Bytes> {
        let object = self.store.get(key).await.unwrap()?;
        Some(object.into_bytes(key).await.unwrap())
    }

    /// Makes the stored file at `key` look `age` old.
    pub fn age(&self, key: &str, age: Duration) {
        let file = std::fs::File::options()
            .write(true)
            .open(self.disk.root().join(key))
            .unwrap();
        file.set_modified(std::time::SystemTime::now() - age)
            .unwrap();
    }

    /// Files left in the store's spool directory, besides the spare
    /// spool file made ahead of the next download.
    pub fn spool_files(&self) -> usize {
        let spare = self.cache.spools.spare();
        std::fs::read_dir(self.disk.spool_dir())
            .unwrap()
            .filter(|e| Some(e.as_ref().unwrap().path()) != spare)
            .count()
    }
}

/// The request for `endpoint` of [`MODULE`].
pub(super) fn request(endpoint: Endpoint) -> ModuleRequest {
    ModuleRequest {
        module: ModulePath::new(MODULE).unwrap(),
        endpoint,
    }
}

/// The whole body of an answer, or the error that broke it.
pub(super) async fn read(answer: Answer) -> io::Result<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    match answer.body {
        AnswerBody::Bytes(b) => out.extend_from_slice(&b),
        AnswerBody::File(file) => {
            tokio::fs::File::from_std(file)
                .read_to_end(&mut out)
                .await?;
        }
        AnswerBody::Reader(mut reader) => {
            reader.read_to_end(&mut out).await?;
        }
        AnswerBody::Spool(mut reader) => {
            while let Some(piece) = reader.next().await {
                out.extend_from_slice(&piece?);
            }
        }
    }
    Ok(out)
}

/// `size` bytes that do not repeat.
pub(super) fn noise(size: usize) -> Vec<u8> {
    let mut data = Vec::with_capacity(size + 8);
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    while data.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    data.truncate(size);
    data
}

/// The zip request of the test module, its store key, and a 256 KiB zip
/// the fake upstream will send for it (`tune` shapes the body: pieces,
/// delays, a break).
pub(super) fn zip_case(
    setup: &Setup,
    tune: impl FnOnce(&mut Body),
) -> (ModuleRequest, String, Bytes) {
    zip_case_of(setup, VERSION, tune)
}

/// [`zip_case`] for `version` of the test module.
pub(super) fn zip_case_of(
    setup: &Setup,
    version: &str,
    tune: impl FnOnce(&mut Body),
) -> (ModuleRequest, String, Bytes) {
    let zip_file = request(crate::request::Endpoint::Zip(version.into()));
    let key = zip_file.protocol_path();
    let zip = module_zip(version, 256 << 10);
    let mut body = Body::new(zip.clone());
    tune(&mut body);
    setup.fake.reply(&key, Reply::Body(body));
    (zip_file, key, zip)
}

/// A valid module zip of [`MODULE`]@`version`, a little over `size`
/// bytes.
pub(super) fn module_zip(version: &str, size: usize) -> Bytes {
    let prefix = format!("{MODULE}@{version}");
    let files = [
        (
            format!("{prefix}/go.mod"),
            format!("module {MODULE}\n").into_bytes(),
        ),
        (format!("{prefix}/data.bin"), noise(size)),
    ];
    Bytes::from(modproxy_module::modzip::stored_zip(&files))
}

/// Two waiters asking for `request` at once, each reading its answer at
/// its own pace: the first at once, the second after `second_waits`.
pub(super) async fn two_waiters(
    setup: &Arc<Setup>,
    request: &ModuleRequest,
    second_waits: Duration,
) -> [io::Result<Vec<u8>>; 2] {
    let waiter = |wait: Duration| {
        let (setup, request) = (Arc::clone(setup), request.clone());
        tokio::spawn(async move {
            let answer = setup
                .get(&request)
                .await
                .map_err(|(_, e)| io::Error::other(e))?;
            tokio::time::sleep(wait).await;
            read(answer).await
        })
    };
    let (first, second) = (waiter(Duration::ZERO), waiter(second_waits));
    [first.await.unwrap(), second.await.unwrap()]
}

/// A store that cannot make spool files (its spool directory does not
/// exist), and otherwise the disk store.
struct NoSpool {
    disk: Arc<DiskStore>,
    spool: PathBuf,
}

#[async_trait]
impl Store for NoSpool {
    async fn get(&self, key: &str) -> Result<Option<StoredObject>, StoreError> {
        self.disk.get(key).await
    }
    async fn put(&self, key: &str, data: Bytes) -> Result<(), StoreError> {
        self.disk.put(key, data).await
    }
    async fn put_file(&self, key: &str, spool: &Path) -> Result<(), StoreError> {
        self.disk.put_file(key, spool).await
    }
    fn spool_dir(&self) -> &Path {
        &self.spool
    }
    fn touch(&self, key: &str) {
        self.disk.touch(key)
    }
    fn usage(&self) -> Option<(u64, u64)> {
        self.disk.usage()
    }
    async fn check_writable(&self) -> Result<(), StoreError> {
        self.disk.check_writable().await
    }
    async fn entries(&self) -> Result<Vec<evict::Entry>, StoreError> {
        self.disk.entries().await
    }
    async fn remove(&self, key: &str) -> Result<(), StoreError> {
        self.disk.remove(key).await
    }
    fn measured(&self, bytes: u64, objects: u64) {
        self.disk.measured(bytes, objects)
    }
    fn describe(&self) -> String {
        self.disk.describe()
    }
}
