//! The HTTP server: accepts connections (HTTP/1.1 and HTTP/2), runs each
//! request through the [`handler`] pipeline, and shuts down gracefully.

mod auth;
mod body;
mod conns;
mod dashboard;
mod handler;
mod pieces;
pub(crate) mod sendfile;
mod sumdb;
mod threads;
mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::service::{service_fn, Service};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub use body::ResponseBody;
pub use handler::Handler;
pub use tls::TlsError;

use crate::settings::Settings;
use crate::store::StoreError;
use conns::Throttled;
use sendfile::{FileQueue, SendfileStream};
use threads::{ConnThreads, InMain};

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
    #[error("fetch locks: {0}")]
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
    /// How long a write to a client may wait (see [`conns::SendTimeout`]).
    send_timeout: Duration,
    max_connections: u32,
}

/// HTTP/2 keep-alive pings, and how long an answer to one may take.
const H2_PING_EVERY: Duration = Duration::from_secs(30);
const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);

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
            send_timeout: settings.send_timeout,
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
        // Plain connections (the ones that `sendfile`) get threads of their own.
        let threads = match (self.tls.is_none() && sendfile::AVAILABLE)
            .then(ConnThreads::start)
            .transpose()
        {
            Ok(threads) => threads,
            Err(e) => {
                tracing::warn!(error = %e, "cannot start connection threads: connections share the runtime");
                None
            }
        };
        let main = tokio::runtime::Handle::current();
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
            // A plain connection sends stored files itself (`sendfile`).
            let files = (self.tls.is_none() && sendfile::AVAILABLE).then(FileQueue::default);
            let queue = files.clone().unwrap_or_default();
            let handler = Arc::clone(&self.handler);
            // Set by the first request: until then the connection is
            // bounded by `header_timeout` here (the protocol sniffing
            // before hyper's own header timer waits without one).
            let asked = Arc::new(AtomicBool::new(false));
            let first_request = Arc::clone(&asked);
            let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                first_request.store(true, Ordering::Relaxed);
                let handler = Arc::clone(&handler);
                // HTTP/2 frames a body's bytes: only HTTP/1 goes as is.
                let files = (req.version() < hyper::Version::HTTP_2)
                    .then(|| files.clone())
                    .flatten();
                async move {
                    let response = handler.handle(req).await;
                    Ok::<_, Infallible>(match files {
                        Some(files) => response.map(|body| body.sent_through(&files)),
                        None => response,
                    })
                }
            });
            let header_timeout = self.header_timeout;
            let send_timeout = self.send_timeout;
            let Some(acceptor) = &self.tls else {
                // Handed to a connection thread: its socket moves to that
                // thread's runtime; the handler and the body stay in this one.
                let stream = match stream.into_std() {
                    Ok(stream) => stream,
                    Err(e) => {
                        tracing::debug!(error = %e, "cannot hand the connection over");
                        continue;
                    }
                };
                let main = main.clone();
                let service = service_fn(move |req| {
                    let answer = service.call(req);
                    let for_body = main.clone();
                    InMain::new(
                        &main,
                        Box::pin(async move {
                            let response = answer.await?;
                            Ok::<_, Infallible>(response.map(|body| InMain::new(&for_body, body)))
                        }),
                    )
                });
                let (builder, watcher) = (builder.clone(), graceful.watcher());
                let connection = async move {
                    let _slot = slot;
                    let stream = match tokio::net::TcpStream::from_std(stream) {
                        Ok(stream) => stream,
                        Err(e) => {
                            return tracing::debug!(error = %e, "cannot take the connection over")
                        }
                    };
                    let stream = SendfileStream::new(stream, queue);
                    let stream = conns::SendTimeout::new(stream, send_timeout);
                    let conn =
                        builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    until_first_request(watcher.watch(conn.into_owned()), &asked, header_timeout)
                        .await;
                };
                match &threads {
                    Some(threads) => threads.spawn(connection),
                    None => drop(tokio::spawn(connection)),
                }
                continue;
            };
            // TLS: the handshake runs in the connection's task, bounded,
            // so a client that stalls in it holds nothing else up.
            let (acceptor, builder, watcher) =
                (acceptor.clone(), builder.clone(), graceful.watcher());
            tokio::spawn(async move {
                let _slot = slot;
                let tls = match tokio::time::timeout(
                    TLS_HANDSHAKE,
                    acceptor.accept(conns::SendTimeout::new(stream, send_timeout)),
                )
                .await
                {
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
        if let Some(threads) = threads {
            threads.stop().await;
        }
        Ok(())
    }
}
