//! Response bodies: whole bytes, a flight's spool read as the connection
//! asks for more, or a stored file (or object) read one piece at a time,
//! also as the connection asks: never more than one piece per answer is
//! read ahead, and every piece counts against one budget shared by all
//! answers ([`Pieces`]), so memory is bounded by the budget, not by the
//! number of clients.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::cache::{AnswerBody, SpoolReader};

/// Size of one piece of a stored file or object on its way to a client.
const PIECE: usize = 128 * 1024;
/// The budget counts in these units (a semaphore holds at most `u32`
/// permits).
const UNIT: usize = 1024;

/// The memory all answers' file pieces may take at once: a piece is
/// counted from its read until the connection has written it (and dropped
/// it); an answer whose next piece does not fit waits its turn.
#[derive(Clone)]
pub struct Pieces {
    budget: Arc<Semaphore>,
}

impl Pieces {
    /// A budget of `bytes` (at least one piece).
    pub fn new(bytes: u64) -> Pieces {
        let units = (bytes as usize / UNIT).max(PIECE / UNIT);
        let units = units.min(Semaphore::MAX_PERMITS).min(u32::MAX as usize);
        Pieces {
            budget: Arc::new(Semaphore::new(units)),
        }
    }

    /// Room for one piece of `len` bytes, waited for.
    async fn room(&self, len: usize) -> OwnedSemaphorePermit {
        let units = len.div_ceil(UNIT).max(1) as u32;
        Arc::clone(&self.budget)
            .acquire_many_owned(units)
            .await
            .expect("the budget is never closed")
    }
}

/// A piece's memory and its share of the budget, released together when
/// the connection drops the piece.
struct Held {
    buf: Vec<u8>,
    _permit: OwnedSemaphorePermit,
}

impl AsRef<[u8]> for Held {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

/// The body of every response this server sends.
pub enum ResponseBody {
    Full(Option<Bytes>),
    /// A stored file or object, read piece by piece as the connection asks.
    Stored {
        state: Reading<Source>,
        length: Option<u64>,
    },
    /// Read straight from a flight's spool as the connection asks for
    /// more: no queue, so a waiter holds one piece at a time.
    Spool {
        state: Reading<SpoolReader>,
        length: Option<u64>,
    },
}

type NextPiece<S> = Pin<Box<dyn Future<Output = (S, Option<io::Result<Bytes>>)> + Send>>;

/// Where a read-as-asked body is: idle with its source, reading, or done.
pub enum Reading<S> {
    Idle(S),
    Busy(NextPiece<S>),
    Done,
}

/// Where a stored body's pieces come from.
pub struct Source {
    from: Origin,
    pieces: Pieces,
}

enum Origin {
    /// A local file and the offset of the next piece.
    File(Arc<std::fs::File>, u64),
    /// An object store's stream.
    Reader(Pin<Box<dyn AsyncRead + Send>>),
}

impl Source {
    /// The next piece (`None` at the end), read once the budget has room.
    async fn next(mut self) -> (Source, Option<io::Result<Bytes>>) {
        let permit = self.pieces.room(PIECE).await;
        let read = match &mut self.from {
            Origin::File(file, offset) => {
                let (file, at) = (Arc::clone(file), *offset);
                tokio::task::spawn_blocking(move || read_at(&file, at))
                    .await
                    .unwrap_or_else(|e| Err(io::Error::other(e)))
            }
            Origin::Reader(reader) => {
                let mut buf = Vec::with_capacity(PIECE);
                reader
                    .take(PIECE as u64)
                    .read_to_end(&mut buf)
                    .await
                    .map(|_| buf)
            }
        };
        let piece = match read {
            Ok(buf) if buf.is_empty() => None,
            Ok(buf) => {
                if let Origin::File(_, offset) = &mut self.from {
                    *offset += buf.len() as u64;
                }
                Some(Ok(Bytes::from_owner(Held {
                    buf,
                    _permit: permit,
                })))
            }
            Err(e) => Some(Err(e)),
        };
        (self, piece)
    }
}

/// Up to [`PIECE`] bytes of `file` from `offset` (fewer only at its end).
fn read_at(file: &std::fs::File, offset: u64) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0; PIECE];
    let mut filled = 0;
    while filled < PIECE {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

impl ResponseBody {
    pub fn empty() -> ResponseBody {
        ResponseBody::Full(None)
    }

    pub fn text(s: impl Into<String>) -> ResponseBody {
        ResponseBody::Full(Some(Bytes::from(s.into())))
    }

    /// A body for a cache answer; stored files and objects are read within
    /// the shared `pieces` budget.
    pub fn from_answer(body: AnswerBody, length: Option<u64>, pieces: &Pieces) -> ResponseBody {
        let stored = |from| ResponseBody::Stored {
            state: Reading::Idle(Source {
                from,
                pieces: pieces.clone(),
            }),
            length,
        };
        match body {
            AnswerBody::Bytes(b) => ResponseBody::Full(Some(b)),
            AnswerBody::File(file) => stored(Origin::File(Arc::new(file), 0)),
            AnswerBody::Reader(reader) => stored(Origin::Reader(reader)),
            AnswerBody::Spool(spool) => ResponseBody::Spool {
                state: Reading::Idle(spool),
                length,
            },
        }
    }
}

/// Polls a read-as-asked body: starts the next piece's read when the
/// connection asks, and hands it over when it is there.
fn poll_reading<S: Send + 'static, F>(
    state: &mut Reading<S>,
    cx: &mut Context<'_>,
    next: F,
) -> Poll<Option<Result<Frame<Bytes>, io::Error>>>
where
    F: Fn(S) -> NextPiece<S>,
{
    loop {
        match std::mem::replace(state, Reading::Done) {
            Reading::Done => return Poll::Ready(None),
            Reading::Idle(source) => *state = Reading::Busy(next(source)),
            Reading::Busy(mut reading) => match reading.as_mut().poll(cx) {
                Poll::Pending => {
                    *state = Reading::Busy(reading);
                    return Poll::Pending;
                }
                Poll::Ready((source, piece)) => {
                    if matches!(piece, Some(Ok(_))) {
                        *state = Reading::Idle(source);
                    }
                    return Poll::Ready(piece.map(|r| r.map(Frame::data)));
                }
            },
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.get_mut() {
            ResponseBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            ResponseBody::Stored { state, .. } => {
                poll_reading(state, cx, |source| Box::pin(source.next()))
            }
            ResponseBody::Spool { state, .. } => poll_reading(state, cx, |mut reader| {
                Box::pin(async move {
                    let piece = reader.next().await;
                    (reader, piece)
                })
            }),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(
            self,
            ResponseBody::Full(None)
                | ResponseBody::Stored {
                    state: Reading::Done,
                    ..
                }
                | ResponseBody::Spool {
                    state: Reading::Done,
                    ..
                }
        )
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            ResponseBody::Full(None) => SizeHint::with_exact(0),
            ResponseBody::Stored {
                length: Some(n), ..
            }
            | ResponseBody::Spool {
                length: Some(n), ..
            } => SizeHint::with_exact(*n),
            ResponseBody::Stored { .. } | ResponseBody::Spool { .. } => SizeHint::default(),
        }
    }
}
