//! Connection threads: plain HTTP connections, each kept by one thread
//! for its whole life (a single-threaded runtime per core; connections are
//! dealt out in turn), as nginx keeps each connection in one worker.
//!
//! On the shared work-stealing runtime a connection's task ran on whichever
//! worker its readiness woke, so the `sendfile`s of one file could come
//! from either CPU, and the kernel's per-page work for them (the page
//! cache's and the socket's cache lines) moved between CPUs with it. Kept
//! on one thread, the server's CPU per byte of a cached 20 MiB zip fell
//! from 1.23–1.46× nginx's to 0.98–1.13× (BENCHMARKS.md).
//!
//! Everything of a connection is polled on its thread: the socket, hyper
//! (and, for HTTP/2, the streams it spawns), the handler and the body. The
//! handler and the body are polled inside the main runtime's context
//! ([`InMain`]), so whatever they spawn (fetches, store writes, blocking
//! reads) and the timers they set belong to the main runtime and its
//! bounded blocking pool, never to a connection thread. Like any work
//! polled inline, a handler step that takes long (a no-wait read of a
//! small file, a `sendfile` whose pages left the cache since the probe)
//! holds up the other connections of its thread meanwhile.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::runtime::Handle;
use tokio::sync::watch;

/// One single-threaded runtime per core, each on a thread of its own.
pub struct ConnThreads {
    runtimes: Vec<Handle>,
    next: AtomicUsize,
    stop: watch::Sender<()>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl ConnThreads {
    /// As many threads as cores.
    pub fn start() -> io::Result<ConnThreads> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let (stop, _) = watch::channel(());
        let mut started = ConnThreads {
            runtimes: Vec::with_capacity(cores),
            next: AtomicUsize::new(0),
            stop,
            threads: Vec::with_capacity(cores),
        };
        for i in 0..cores {
            // Built on its thread, so a failure drops it there, not in
            // the async context this is called from.
            let (handle, made) = std::sync::mpsc::channel();
            let mut stopped = started.stop.subscribe();
            let thread = std::thread::Builder::new()
                .name(format!("modproxy-conn-{i}"))
                .spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build();
                    match runtime {
                        Ok(runtime) => {
                            let _ = handle.send(Ok(runtime.handle().clone()));
                            let _ = runtime.block_on(stopped.changed());
                        }
                        Err(e) => drop(handle.send(Err(e))),
                    }
                })?;
            started.threads.push(thread);
            let runtime = made.recv().map_err(io::Error::other).flatten()?;
            started.runtimes.push(runtime);
        }
        Ok(started)
    }

    /// Runs `connection` on the next thread in turn.
    pub fn spawn(&self, connection: impl Future<Output = ()> + Send + 'static) {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.runtimes.len();
        self.runtimes[i].spawn(connection);
    }

    /// Ends the threads, dropping the connections still on them, and
    /// waits until they are gone (before the main runtime goes, whose
    /// timers their handlers may still use).
    pub async fn stop(mut self) {
        self.stop.send_replace(());
        let threads = std::mem::take(&mut self.threads);
        let joined = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        });
        let _ = joined.await;
    }
}

impl Drop for ConnThreads {
    /// A start that failed half-way, or a server dropped without `stop`:
    /// the threads end on their own.
    fn drop(&mut self) {
        self.stop.send_replace(());
    }
}

/// A future or a response body polled inside the main runtime's context
/// (see the module's documentation).
pub struct InMain<T> {
    main: Handle,
    inner: T,
}

impl<T> InMain<T> {
    pub fn new(main: &Handle, inner: T) -> InMain<T> {
        InMain {
            main: main.clone(),
            inner,
        }
    }
}

impl<F: Future + Unpin> Future for InMain<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        let _main = this.main.enter();
        Pin::new(&mut this.inner).poll(cx)
    }
}

impl<B: Body<Data = Bytes, Error = io::Error> + Unpin> Body for InMain<B> {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        let _main = this.main.enter();
        Pin::new(&mut this.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_run_on_their_threads_and_spawn_on_the_main_runtime() {
        let main = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("main-worker")
            .enable_all()
            .build()
            .unwrap();
        let threads = ConnThreads::start().unwrap();
        let name = || std::thread::current().name().unwrap_or("").to_string();
        let (tx, rx) = std::sync::mpsc::channel();
        for _ in 0..2 {
            let (tx, handle) = (tx.clone(), main.handle().clone());
            threads.spawn(async move {
                let on = name();
                let spawn = async { tokio::spawn(async move { name() }).await.unwrap() };
                let spawned = InMain::new(&handle, Box::pin(spawn)).await;
                tx.send((on, spawned)).unwrap();
            });
        }
        let mut seen: Vec<_> = (0..2).map(|_| rx.recv().unwrap()).collect();
        seen.sort();
        // Dealt out in turn: the second to the second thread, if any.
        let last = threads.runtimes.len().min(2) - 1;
        assert_eq!(seen[0].0, "modproxy-conn-0");
        assert_eq!(seen[1].0, format!("modproxy-conn-{last}"));
        assert!(
            seen.iter().all(|(_, spawned)| spawned == "main-worker"),
            "{seen:?}"
        );
        // Stopping ends the threads, a connection still on them too.
        threads.spawn(std::future::pending());
        main.block_on(threads.stop());
    }
}
