//! Response bodies: whole bytes, a flight's spool read as the connection
//! asks for more, or a stored file (or object) read one piece at a time,
//! also as the connection asks: never more than one piece per answer is
//! read ahead, and every piece counts against one budget shared by all
//! answers ([`Pieces`]). On a plain HTTP/1 connection a stored file is
//! not read here at all: the connection sends it ([`FileBody`]).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::AsyncRead;

use super::pieces::Pieces;
use super::sendfile::{FileBody, FileQueue};
use crate::cache::{AnswerBody, SpoolReader};

/// The body of every response this server sends.
pub enum ResponseBody {
    Full(Option<Bytes>),
    /// A stored file or object, read piece by piece as the connection asks.
    Stored {
        state: Reading<Source>,
        length: Option<u64>,
    },
    /// A stored file the connection sends from the file itself.
    File(FileBody),
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
        let piece = match &mut self.from {
            Origin::File(file, offset) => {
                let piece = self.pieces.read_file(file, *offset).await;
                if let Ok(Some(p)) = &piece {
                    *offset += p.len() as u64;
                }
                piece
            }
            Origin::Reader(reader) => self.pieces.read_stream(reader).await,
        };
        (self, piece.transpose())
    }
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

impl ResponseBody {
    /// This body for a connection that sends files itself (`queue`): a
    /// stored file becomes a [`FileBody`]; anything else is unchanged.
    pub fn sent_through(self, queue: &FileQueue) -> ResponseBody {
        match self {
            ResponseBody::Stored {
                state:
                    Reading::Idle(Source {
                        from: Origin::File(file, 0),
                        pieces,
                    }),
                length: Some(length),
            } => ResponseBody::File(FileBody::new(file, length, queue.clone(), pieces)),
            other => other,
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
            ResponseBody::File(body) => body
                .poll_piece(cx)
                .map(|piece| piece.map(|r| r.map(Frame::data))),
            ResponseBody::Spool { state, .. } => poll_reading(state, cx, |mut reader| {
                Box::pin(async move {
                    let piece = reader.next().await;
                    (reader, piece)
                })
            }),
        }
    }

    fn is_end_stream(&self) -> bool {
        if let ResponseBody::File(body) = self {
            return body.remaining() == 0;
        }
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
            ResponseBody::File(body) => SizeHint::with_exact(body.remaining()),
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
