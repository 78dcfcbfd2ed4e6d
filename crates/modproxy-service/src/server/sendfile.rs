//! Stored files sent on plain HTTP/1 connections with `sendfile(2)`: the
//! kernel moves the bytes from the page cache to the socket, so a file
//! the page cache holds is never copied into this process (nginx's
//! `sendfile on`). Files the store did not read whole come here: those
//! over 64 KiB, and smaller ones when the budget of copies read whole is
//! spent ([`crate::store::whole`]).
//!
//! hyper writes every body itself, so a file goes through it as
//! *stand-ins*: views of [`STAND_IN`], a run of zeros nobody reads,
//! one per queued piece of the file. The body queues the real piece
//! (file, offset, length) on the connection's [`FileQueue`] as it hands
//! hyper the stand-in; the connection ([`SendfileStream`]) writes hyper's
//! other bytes (the head, other answers) as usual and, where a write
//! starts on a stand-in, sends the queued piece from the file instead.
//! hyper writes a connection's bytes in the order it took them, so the
//! queue's front is always the piece being written. Consecutive pieces
//! use different lanes of the stand-in, so a write is matched to its
//! piece by where it starts; one that does not match the front fails the
//! connection rather than send a wrong byte.
//!
//! This needs hyper to queue body buffers as they are (its `Queue` write
//! strategy, chosen when the connection says it writes vectored): never
//! set the HTTP/1 builder's `writev(false)` or `pipeline_flush(true)`,
//! which copy bodies into hyper's own buffer. Should a stand-in be copied
//! anyway, its pieces pile up unsent and the body fails once [`LANES`]
//! are waiting.
//!
//! Used only where the bytes go to the socket as they are: plain TCP and
//! HTTP/1 (TLS encrypts in this process, HTTP/2 frames them). The
//! stand-in's zeros are never read, so they cost no memory (a zeroed
//! allocation this large is mapped pages the kernel fills only when
//! touched).
//!
//! `sendfile` runs on a runtime thread, so a piece is queued only once
//! the page cache seems to hold it (its first and last bytes, probed by
//! reads that never wait); one that does not is read in first, on the
//! blocking pool and within the body budget ([`Pieces::read_in`]). That is
//! a probe, not a guarantee: pages dropped in between, or later, are read
//! by `sendfile` itself, as nginx does.

use std::collections::VecDeque;
use std::fs::File;
use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, LazyLock, Mutex};
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

use super::pieces::Pieces;
use crate::nowait;
use crate::sync::Locked;

/// The largest piece one stand-in covers: one `sendfile` call at most
/// (nginx's `sendfile_max_chunk`), so a zip of up to 2 MiB, most of
/// them, goes out in one call.
const MAX_PIECE: usize = 2 << 20;

/// Stand-ins of consecutive pieces on a connection start this many
/// pieces apart; as many pieces may wait at once (hyper holds at most
/// two: the one being written and the next).
const LANES: usize = 4;

/// What hyper writes in place of a file's piece (views of it).
static STAND_IN: LazyLock<Bytes> = LazyLock::new(|| Bytes::from(vec![0; LANES * MAX_PIECE]));

/// How far into [`STAND_IN`] `bytes` starts, if it is a stand-in.
fn stand_in_offset(bytes: &[u8]) -> Option<usize> {
    let at = (bytes.as_ptr() as usize).checked_sub(STAND_IN.as_ptr() as usize)?;
    (!bytes.is_empty() && at < LANES * MAX_PIECE).then_some(at)
}

/// A piece of a file waiting on a connection.
struct Queued {
    file: Arc<File>,
    offset: u64,
    len: usize,
    /// Where its stand-in starts in [`STAND_IN`].
    lane: usize,
    /// How much of it the socket has taken.
    sent: usize,
}

/// The file pieces of one connection's answers, in the order hyper took
/// their stand-ins.
#[derive(Clone, Default)]
pub struct FileQueue(Arc<Mutex<Waiting>>);

#[derive(Default)]
struct Waiting {
    pieces: VecDeque<Queued>,
    /// Pieces queued so far (which lane is next).
    queued: usize,
}

/// A stored file sent by the connection rather than read here.
pub struct FileBody {
    file: Arc<File>,
    /// The next piece's offset, and the end.
    offset: u64,
    end: u64,
    queue: FileQueue,
    /// For reading a piece into the page cache.
    pieces: Pieces,
    /// The next piece being read into the page cache.
    reading_in: Option<Pin<Box<dyn Future<Output = io::Result<()>> + Send>>>,
}

impl FileBody {
    /// `file` from its start to `length`, sent through `queue`'s
    /// connection.
    pub fn new(file: Arc<File>, length: u64, queue: FileQueue, pieces: Pieces) -> FileBody {
        FileBody {
            file,
            offset: 0,
            end: length,
            queue,
            pieces,
            reading_in: None,
        }
    }

    pub fn remaining(&self) -> u64 {
        self.end - self.offset
    }

    /// The stand-in for the next piece, queued on the connection once
    /// the page cache holds the piece; `None` at the end.
    pub fn poll_piece(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        let len = self.remaining().min(MAX_PIECE as u64) as usize;
        if len == 0 {
            return Poll::Ready(None);
        }
        if let Some(reading) = &mut self.reading_in {
            let read = ready!(reading.as_mut().poll(cx));
            self.reading_in = None;
            if let Err(e) = read {
                return Poll::Ready(Some(Err(e)));
            }
        } else if !nowait::holds(&self.file, self.offset, len) {
            let (pieces, file, offset) = (self.pieces.clone(), Arc::clone(&self.file), self.offset);
            self.reading_in = Some(Box::pin(
                async move { pieces.read_in(&file, offset, len).await },
            ));
            return self.poll_piece(cx);
        }
        let mut waiting = self.queue.0.locked();
        if waiting.pieces.len() >= LANES {
            return Poll::Ready(Some(Err(io::Error::other(
                "file pieces are not being sent as queued (hyper copied a stand-in?)",
            ))));
        }
        let lane = waiting.queued % LANES * MAX_PIECE;
        waiting.queued += 1;
        waiting.pieces.push_back(Queued {
            file: Arc::clone(&self.file),
            offset: self.offset,
            len,
            lane,
            sent: 0,
        });
        self.offset += len as u64;
        Poll::Ready(Some(Ok(STAND_IN.slice(lane..lane + len))))
    }
}

/// A plain TCP connection that sends queued file pieces with `sendfile`.
///
/// The bytes written just before a file piece (the answer's head) are
/// sent with `MSG_MORE`, so they wait for the file and go out with its
/// first bytes in full segments; a head sent alone, then the file, cost
/// about 10% of throughput on loopback. nginx gets the same by corking
/// the socket around the file (`tcp_nopush`, two `setsockopt`s per
/// answer); `MSG_MORE` needs neither call, and served a 1.5 MiB zip
/// 1.04-1.12x as fast as nginx where corking did 0.91-1.01x
/// (BENCHMARKS.md).
pub struct SendfileStream {
    tcp: TcpStream,
    queue: FileQueue,
}

/// Whether this system has `sendfile` (else no body is a [`FileBody`]).
pub const AVAILABLE: bool = cfg!(target_os = "linux");

impl SendfileStream {
    /// `tcp`, sending the pieces its answers' file bodies queue on `queue`.
    pub fn new(tcp: TcpStream, queue: FileQueue) -> SendfileStream {
        SendfileStream { tcp, queue }
    }

    /// Sends `bufs`, the bytes before a file piece, telling the socket
    /// more follows; how much it took.
    fn poll_send_before_file(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.tcp.poll_write_ready(cx))?;
            match self
                .tcp
                .try_io(Interest::WRITABLE, || send_more(&self.tcp, bufs))
            {
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                sent => return Poll::Ready(sent),
            }
        }
    }

    /// Sends what is left of the queue's front piece, `len` bytes from
    /// stand-in offset `at`; how much the socket took.
    fn poll_send_file(
        &mut self,
        cx: &mut Context<'_>,
        at: usize,
        len: usize,
    ) -> Poll<io::Result<usize>> {
        let mut waiting = self.queue.0.locked();
        let queue = &mut waiting.pieces;
        let front = match queue.front_mut() {
            Some(q) if q.lane + q.sent == at && q.len - q.sent == len => q,
            _ => {
                return Poll::Ready(Err(io::Error::other(
                    "a file piece's stand-in does not match the queued piece",
                )))
            }
        };
        loop {
            ready!(self.tcp.poll_write_ready(cx))?;
            let mut offset = front.offset + front.sent as u64;
            // A send the socket took only part of means its buffer is
            // full: readiness is cleared as for `EAGAIN` (as nginx does),
            // which saves the call that would only say so.
            let mut partly = None;
            let sent = self.tcp.try_io(Interest::WRITABLE, || {
                let n = send(&self.tcp, &front.file, &mut offset, len)?;
                if n > 0 && n < len {
                    partly = Some(n);
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(n)
            });
            let sent = partly.map_or(sent, Ok);
            match sent {
                Ok(0) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "a stored file ended before its length",
                    )))
                }
                Ok(n) => {
                    front.sent += n;
                    if front.sent == front.len {
                        queue.pop_front();
                    }
                    return Poll::Ready(Ok(n));
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

#[cfg(target_os = "linux")]
fn send(socket: &TcpStream, file: &File, offset: &mut u64, len: usize) -> io::Result<usize> {
    Ok(rustix::fs::sendfile(socket, file, Some(offset), len)?)
}

/// `sendmsg` with `MSG_MORE`: the socket holds a last segment that is
/// not full until more is written.
#[cfg(target_os = "linux")]
fn send_more(socket: &TcpStream, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    use rustix::net::{sendmsg, SendAncillaryBuffer, SendFlags};
    let flags = SendFlags::MORE | SendFlags::NOSIGNAL;
    Ok(sendmsg(
        socket,
        bufs,
        &mut SendAncillaryBuffer::default(),
        flags,
    )?)
}

#[cfg(not(target_os = "linux"))]
fn send_more(_: &TcpStream, _: &[IoSlice<'_>]) -> io::Result<usize> {
    Err(io::ErrorKind::Unsupported.into())
}

#[cfg(not(target_os = "linux"))]
fn send(_: &TcpStream, _: &File, _: &mut u64, _: usize) -> io::Result<usize> {
    Err(io::ErrorKind::Unsupported.into())
}

impl AsyncRead for SendfileStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for SendfileStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match stand_in_offset(buf) {
            Some(at) => self.poll_send_file(cx, at, buf.len()),
            None => Pin::new(&mut self.tcp).poll_write(cx, buf),
        }
    }

    /// The bytes before the first stand-in go out in one `sendmsg` with
    /// `MSG_MORE`; a write that starts on a stand-in is a `sendfile`.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match bufs.iter().position(|b| stand_in_offset(b).is_some()) {
            None => Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs),
            Some(0) => {
                let at = stand_in_offset(&bufs[0]).unwrap_or_default();
                self.poll_send_file(cx, at, bufs[0].len())
            }
            Some(first) => self.poll_send_before_file(cx, &bufs[..first]),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_views_of_the_static_are_stand_ins() {
        let stand_in = STAND_IN.slice(..10);
        assert_eq!(stand_in_offset(&stand_in), Some(0));
        assert_eq!(stand_in_offset(&stand_in[3..]), Some(3));
        assert_eq!(
            stand_in_offset(&STAND_IN[MAX_PIECE - 1..]),
            Some(MAX_PIECE - 1)
        );
        assert_eq!(stand_in_offset(&[0u8; 10]), None);
        assert_eq!(stand_in_offset(&STAND_IN[..0]), None);
        assert_eq!(stand_in_offset(b"HTTP/1.1 200 OK\r\n"), None);
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_piece_not_in_the_page_cache_is_read_in_before_it_is_queued() {
        use rustix::fs::{fadvise, Advice};
        let path = std::env::temp_dir().join(format!("modproxy-sendfile-{}", std::process::id()));
        std::fs::write(&path, vec![5u8; MAX_PIECE + 10]).unwrap();
        let file = File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        // Written back, then dropped from the page cache.
        file.sync_all().unwrap();
        fadvise(&file, 0, None, Advice::DontNeed).unwrap();
        assert!(
            !nowait::holds(&file, 0, MAX_PIECE),
            "the page cache kept the file (a temporary directory on tmpfs?)"
        );
        let queue = FileQueue::default();
        let pieces = Pieces::new(1 << 20);
        let length = file.metadata().unwrap().len();
        let mut body = FileBody::new(Arc::new(file), length, queue.clone(), pieces);
        let mut polls = 0;
        let first = std::future::poll_fn(|cx| {
            polls += 1;
            let polled = body.poll_piece(cx);
            if polled.is_pending() {
                assert!(
                    queue.0.locked().pieces.is_empty(),
                    "queued before it was read in"
                );
            }
            polled
        });
        let piece = first.await.unwrap().unwrap();
        assert!(polls > 1, "queued at once, not read in");
        assert_eq!(piece.len(), MAX_PIECE);
        assert!(nowait::holds(&body.file, 0, MAX_PIECE), "not read in");
        assert_eq!(queue.0.locked().pieces.len(), 1);
        // The next piece's stand-in starts in the next lane.
        let last = std::future::poll_fn(|cx| body.poll_piece(cx)).await;
        let last = last.unwrap().unwrap();
        assert_eq!(last.len(), 10);
        assert_eq!(stand_in_offset(&last), Some(MAX_PIECE));
        assert!(std::future::poll_fn(|cx| body.poll_piece(cx))
            .await
            .is_none());
    }
}
