//! The HTTP server: accepts connections (HTTP/1.1 and HTTP/2), runs each
//! request through the [`handler`] pipeline, and shuts down gracefully.

mod auth;
mod body;
mod conns;
mod dashboard;
mod handler;
mod sumdb;
mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub use body::ResponseBody;
pub use handler::Handler;
pub use tls::TlsError;

use crate::cache::Cache;
use crate::error::chain;
use crate::metrics::Metrics;
use crate::settings::Settings;
use crate::store::{evict, Store, StoreError};
use crate::sumdb::SumDb;
use crate::upstream::Upstreams;
use conns::Throttled;
use handler::RequestIds;
use modproxy_module::sumdb_setting::SumDbSetting;
use sumdb::SumDbProxy;

/// Longest a client may take over its TLS handshake.
const TLS_HANDSHAKE: Duration = Duration::from_secs(10);

/// Bytes hyper may queue for writing on one HTTP/1 connection.
const HTTP1_WRITE_BUFFER: usize = 64 * 1024;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot build the HTTP client")]
    Client(#[from] reqwest::Error),
    #[error("TLS")]
    Tls(#[from] TlsError),
    #[error("clients file: {0}")]
    Auth(String),
    #[error("--lock: {0}")]
    Lock(String),
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
}

/// Runs a connection to its end, but drops it when no request has started
/// after `limit` (a client that connects and sends nothing).
async fn until_first_request<E: std::fmt::Display>(
    conn: impl Future<Output = Result<(), E>>,
    asked: &AtomicBool,
    limit: Duration,
) {
    let idle = async {
        tokio::time::sleep(limit).await;
        if asked.load(Ordering::Relaxed) {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        ended = conn => if let Err(e) = ended {
            tracing::debug!(error = %e, "connection ended with an error");
        },
        () = idle => tracing::debug!("connection closed: no request within the header timeout"),
    }
}

/// A bound, ready server.
pub struct Server {
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    handler: Arc<Handler>,
    shutdown_grace: Duration,
    header_timeout: Duration,
    max_connections: u32,
}

/// HTTP/2 keep-alive pings, and how long an answer to one may take.
const H2_PING_EVERY: Duration = Duration::from_secs(30);
const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);

/// How often the store's size is held against `--max-size`.
const BUDGET_CHECK: Duration = Duration::from_secs(5);
/// How often the git mirrors are measured for it.
const MIRRORS_MEASURED: Duration = Duration::from_secs(60);

/// Evicts least recently used module versions whenever the store is over
/// `max` bytes (checked every [`BUDGET_CHECK`], from the store's running
/// count, so an idle check costs nothing), down to 90% of `max` so the
/// next few fetches do not trigger another scan. Versions used in the last
/// minute go only if the store cannot get under `max` otherwise.
async fn keep_under_budget(store: Arc<dyn Store>, vcs: PathBuf, max: u64, metrics: Arc<Metrics>) {
    // The git mirrors' size, measured now and then (a walk of `.vcs`).
    let mut mirrors = 0u64;
    let mut measured: Option<std::time::Instant> = None;
    loop {
        if measured.is_none_or(|at| at.elapsed() >= MIRRORS_MEASURED) {
            let dir = vcs.clone();
            let found = tokio::task::spawn_blocking(move || evict::mirrors(&dir))
                .await
                .unwrap_or_default();
            mirrors = found.iter().map(|m| m.bytes).sum();
            measured = Some(std::time::Instant::now());
        }
        if store
            .usage()
            .is_some_and(|(bytes, _)| bytes + mirrors > max)
        {
            measured = None;
            let policy = evict::Policy {
                max_size: Some(max),
                low_water: Some(max / 10 * 9),
                spare_used_within: Some(Duration::from_secs(60)),
                ..evict::Policy::default()
            };
            let now = std::time::SystemTime::now();
            match evict::run(store.as_ref(), Some(&vcs), policy, now).await {
                Ok(report) => {
                    for failure in &report.failed {
                        tracing::warn!(%failure, "eviction could not remove a file");
                    }
                    metrics
                        .evictions
                        .fetch_add(report.evicted.len() as u64, Ordering::Relaxed);
                    metrics
                        .evicted_bytes
                        .fetch_add(report.bytes_evicted, Ordering::Relaxed);
                    tracing::info!(
                        versions = report.evicted.len(),
                        bytes = report.bytes_evicted,
                        max,
                        "evicted least recently used module versions"
                    );
                }
                Err(e) => tracing::warn!(error = %chain(&e), "eviction failed"),
            }
        }
        tokio::time::sleep(BUDGET_CHECK).await;
    }
}

/// Replaces the store's running count with a full listing every `every`
/// (a bucket shared by replicas grows by their writes too).
async fn remeasure(store: Arc<dyn Store>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        match store.entries().await {
            Ok(entries) => {
                let bytes = entries.iter().map(|e| e.size).sum();
                store.measured(bytes, entries.len() as u64);
            }
            Err(e) => tracing::warn!(error = %chain(&e), "cannot list the store to count it"),
        }
    }
}

impl Handler {
    /// Builds the whole service from settings: store, upstreams, cache.
    pub fn new(settings: &Settings) -> Result<Handler, StartError> {
        let store = crate::store::open(settings)?;
        let upstreams = Arc::new(Upstreams::new(settings)?);
        let sumdb = match &settings.sumdb {
            SumDbSetting::Off => None,
            SumDbSetting::Db(config) => Some(Arc::new(SumDb::new(
                config,
                Arc::clone(&store),
                Arc::clone(&upstreams),
                settings.private.clone(),
                settings.nosumdb.clone(),
            ))),
        };
        let metrics = Arc::new(Metrics::default());
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        metrics
            .started
            .store(now.map_or(0, |d| d.as_secs()), Ordering::Relaxed);
        let cache = Cache::new(
            Arc::clone(&store),
            Arc::clone(&upstreams),
            sumdb.clone(),
            Arc::clone(&metrics),
            crate::cache::CacheConfig {
                policy: settings.cache,
                cached_only: settings.cached_only,
                prefetch: settings.prefetch,
                locks: settings
                    .lock
                    .as_deref()
                    .map(crate::cache::lock::FetchLocks::new)
                    .transpose()
                    .map(|l| l.map(Arc::new))
                    .map_err(StartError::Lock)?,
            },
        );
        if let Some(every) = store.remeasure_every() {
            tokio::spawn(remeasure(Arc::clone(&store), every));
        }
        if let Some(max) = settings.max_size {
            tokio::spawn(keep_under_budget(
                Arc::clone(&store),
                settings.data_dir.join(".vcs"),
                max,
                Arc::clone(&metrics),
            ));
        }
        Ok(Handler {
            cache,
            sumdb: SumDbProxy::new(sumdb),
            metrics,
            path_prefix: settings.path_prefix.clone(),
            request_ids: RequestIds::new(),
            upstreams,
            store,
            max_size: settings.max_size,
            activity: dashboard::Activity::default(),
            searches: tokio::sync::Semaphore::new(1),
            ready: tokio::sync::Mutex::new(None),
            auth: settings
                .auth_file
                .as_deref()
                .map(auth::Auth::load)
                .transpose()
                .map_err(StartError::Auth)?,
        })
    }
}

impl Server {
    pub async fn bind(settings: &Settings) -> Result<Server, StartError> {
        let tls = settings.tls.as_ref().map(tls::acceptor).transpose()?;
        let handler = Arc::new(Handler::new(settings)?);
        let listener =
            TcpListener::bind(settings.listen)
                .await
                .map_err(|source| StartError::Listen {
                    addr: settings.listen,
                    source,
                })?;
        Ok(Server {
            listener,
            tls,
            handler,
            shutdown_grace: settings.shutdown_grace,
            header_timeout: settings.header_timeout,
            max_connections: settings.max_connections.unwrap_or_else(conns::default_max),
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish
    /// (up to a grace period).
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        let graceful = GracefulShutdown::new();
        let mut builder = auto::Builder::new(TokioExecutor::new());
        // At most about one body piece queued per connection: hundreds of
        // clients on one download must not each buffer hundreds of KiB.
        // A client gets `header_timeout` to send its request headers, and
        // as long again, idle, to start the next one on the connection.
        builder
            .http1()
            .max_buf_size(HTTP1_WRITE_BUFFER)
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_timeout);
        // HTTP/2: a peer that stops answering pings is dropped.
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(Some(H2_PING_EVERY))
            .keep_alive_timeout(H2_PING_TIMEOUT);
        let slots = Arc::new(Semaphore::new(self.max_connections as usize));
        let (mut accept_errors, mut at_limit) = (Throttled::default(), Throttled::default());
        tokio::pin!(shutdown);
        loop {
            let slot = match Arc::clone(&slots).try_acquire_owned() {
                Ok(slot) => slot,
                Err(_) => {
                    if let Some(left_out) = at_limit.due() {
                        tracing::warn!(
                            limit = self.max_connections,
                            left_out,
                            "connection limit reached: new connections wait to be accepted (--max-connections)"
                        );
                    }
                    tokio::select! {
                        slot = Arc::clone(&slots).acquire_owned() => match slot {
                            Ok(slot) => slot,
                            Err(_) => break,
                        },
                        () = &mut shutdown => break,
                    }
                }
            };
            let (stream, _peer) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        // Out of file descriptors and the like: back off,
                        // keep serving, say so now and then.
                        if let Some(left_out) = accept_errors.due() {
                            tracing::warn!(error = %e, left_out, "accept failed");
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let handler = Arc::clone(&self.handler);
            // Set by the first request: until then the connection is
            // bounded by `header_timeout` here (the protocol sniffing
            // before hyper's own header timer waits without one).
            let asked = Arc::new(AtomicBool::new(false));
            let first_request = Arc::clone(&asked);
            let service = service_fn(move |req| {
                first_request.store(true, Ordering::Relaxed);
                let handler = Arc::clone(&handler);
                async move { Ok::<_, Infallible>(handler.handle(req).await) }
            });
            let header_timeout = self.header_timeout;
            let Some(acceptor) = &self.tls else {
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                let conn = graceful.watch(conn.into_owned());
                tokio::spawn(async move {
                    let _slot = slot;
                    until_first_request(conn, &asked, header_timeout).await;
                });
                continue;
            };
            // TLS: the handshake runs in the connection's task, bounded,
            // so a client that stalls in it holds nothing else up.
            let (acceptor, builder, watcher) =
                (acceptor.clone(), builder.clone(), graceful.watcher());
            tokio::spawn(async move {
                let _slot = slot;
                let tls = match tokio::time::timeout(TLS_HANDSHAKE, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!("TLS handshake timed out");
                        return;
                    }
                };
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
                until_first_request(watcher.watch(conn.into_owned()), &asked, header_timeout).await;
            });
        }
        drop(self.listener);
        tracing::info!("shutting down: finishing in-flight requests");
        // In-flight requests, then the fetches and store writes they
        // started (a fetch whose client left still lands in the store).
        let cache = Arc::clone(&self.handler.cache);
        let finished = async move {
            graceful.shutdown().await;
            cache.settled().await;
        };
        if tokio::time::timeout(self.shutdown_grace, finished)
            .await
            .is_err()
        {
            tracing::warn!("in-flight requests or fetches still running after the grace period");
        }
        Ok(())
    }
}
