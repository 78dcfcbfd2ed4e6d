//! Connection threads: plain HTTP connections, each kept by one thread
//! for its whole life (a single-threaded runtime per core; connections are
//! dealt out in turn), as nginx keeps each connection in one worker.
//!
//! On the shared work-stealing runtime a connection's task ran on whichever
//! worker its readiness woke, so every `sendfile` of one file could come
//! from another CPU than the last, and the kernel's per-page work for it
//! (the page cache's and the socket's cache lines) moved between CPUs with
//! it. Kept on one thread, the server's CPU per byte of a cached 20 MiB zip
//! fell from 1.26× nginx's to 1.00×, and the 1.5 MiB zip's throughput rose
//! by about 5 % (BENCHMARKS.md).
//!
//! Only the connection's own work runs there: its socket, hyper's parsing
//! and writing, `sendfile`. The handler and the body's reads run inside the
//! main runtime's context ([`InMain`]), so whatever they spawn (fetches,
//! store writes, blocking reads) goes to the main runtime and its bounded
//! blocking pool, never onto a connection thread.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::runtime::Handle;
use tokio::sync::watch;

/// One single-threaded runtime per core, each on a thread of its own; they
/// end (dropping what still runs on them) when this is dropped.
pub struct ConnThreads {
    runtimes: Vec<Handle>,
    next: AtomicUsize,
    _stop: watch::Sender<()>,
}

impl ConnThreads {
    /// As many threads as cores.
    pub fn start() -> io::Result<ConnThreads> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let (stop, stopped) = watch::channel(());
        let runtimes = (0..cores)
            .map(|i| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                let handle = runtime.handle().clone();
                let mut stopped = stopped.clone();
                std::thread::Builder::new()
                    .name(format!("modproxy-conn-{i}"))
                    .spawn(move || runtime.block_on(stopped.changed()))?;
                Ok(handle)
            })
            .collect::<io::Result<_>>()?;
        Ok(ConnThreads {
            runtimes,
            next: AtomicUsize::new(0),
            _stop: stop,
        })
    }

    /// Runs `connection` on the next thread in turn.
    pub fn spawn(&self, connection: impl Future<Output = ()> + Send + 'static) {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.runtimes.len();
        self.runtimes[i].spawn(connection);
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
    }
}
