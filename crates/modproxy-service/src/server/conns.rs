//! Client connections, bounded: a cap on how many are open at once (past
//! it new ones wait in the listen backlog, so the process keeps file
//! descriptors for the store, upstreams and git), a client that stops
//! reading its answer is dropped after the send timeout ([`SendTimeout`]),
//! and accept errors are logged at most once per interval, never fatal.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// Connections allowed when the open-files limit cannot be read.
const FALLBACK_MAX: u32 = 512;
/// At most one accept-error line (and one "limit reached" line) per this.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The default connection cap: half the soft open-files limit (the other
/// half is for store files, upstream connections and git).
pub fn default_max() -> u32 {
    open_files_limit().map_or(FALLBACK_MAX, |n| (n / 2).clamp(16, 1 << 20))
}

/// The soft `RLIMIT_NOFILE`, from `/proc/self/limits` (Linux).
fn open_files_limit() -> Option<u32> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..].split_whitespace().next()?;
    match soft {
        "unlimited" => Some(u32::MAX),
        n => n.parse().ok(),
    }
}

/// A log line that is written at most once per [`LOG_EVERY`], saying how
/// many were left out in between.
#[derive(Default)]
pub struct Throttled {
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttled {
    /// `Some(suppressed since the last line)` when a line is due now.
    pub fn due(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self.last.is_some_and(|t| now.duration_since(t) < LOG_EVERY) {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// A connection whose writes fail once they have made no progress for
/// `limit` (nginx's `send_timeout`): a client that stops reading would
/// otherwise hold its connection, and the piece of a file waiting for it
/// (a share of the body budget), forever.
pub struct SendTimeout<IO> {
    io: IO,
    limit: Duration,
    /// Armed while writes wait.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<IO> SendTimeout<IO> {
    pub fn new(io: IO, limit: Duration) -> SendTimeout<IO> {
        SendTimeout {
            io,
            limit,
            stalled: None,
        }
    }

    /// Passes a write's result on; a write that waits arms the timer, and
    /// one that waited longer than the limit fails.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.stalled = None;
            return polled;
        }
        let limit = self.limit;
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the client read nothing for {}s (--send-timeout)",
                    limit.as_secs()
                ),
            )));
        }
        Poll::Pending
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for SendTimeout<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for SendTimeout<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        self.watch(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.watch(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.io).poll_flush(cx);
        self.watch(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_cap_follows_the_open_files_limit() {
        let max = default_max();
        assert!((16..=1 << 20).contains(&max), "{max}");
        if let Some(limit) = open_files_limit() {
            assert!(max <= limit, "{max} > {limit}");
        }
    }

    #[test]
    fn a_flood_of_errors_is_one_line_per_interval() {
        let mut log = Throttled::default();
        assert_eq!(log.due(), Some(0));
        for _ in 0..1000 {
            assert_eq!(log.due(), None);
        }
        log.last = Some(Instant::now() - LOG_EVERY);
        assert_eq!(log.due(), Some(1000));
    }
}
