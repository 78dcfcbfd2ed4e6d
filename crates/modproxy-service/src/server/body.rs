//! Response bodies: whole bytes, or a stream fed by a task (store reads and
//! spool reads), so the server never holds a large file in memory.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

use crate::cache::{AnswerBody, SpoolReader};

/// Size of reads from the store for streamed answers.
const READ_CHUNK: usize = 256 * 1024;
/// Size of reads from a local file for streamed answers.
const FILE_CHUNK: usize = 1 << 20;

/// The body of every response this server sends.
pub enum ResponseBody {
    Full(Option<Bytes>),
    Stream {
        rx: mpsc::Receiver<io::Result<Bytes>>,
        length: Option<u64>,
    },
    /// Read straight from a flight's spool as the connection asks for
    /// more: no queue, so a waiter holds one piece at a time.
    Spool {
        state: SpoolState,
        length: Option<u64>,
    },
}

type NextPiece = Pin<Box<dyn Future<Output = (SpoolReader, Option<io::Result<Bytes>>)> + Send>>;

/// Where a spool body is: idle with its reader, reading, or done.
pub enum SpoolState {
    Idle(SpoolReader),
    Reading(NextPiece),
    Done,
}

impl ResponseBody {
    pub fn empty() -> ResponseBody {
        ResponseBody::Full(None)
    }

    pub fn text(s: impl Into<String>) -> ResponseBody {
        ResponseBody::Full(Some(Bytes::from(s.into())))
    }

    /// A body for a cache answer; streamed ones are read by a spawned task.
    pub fn from_answer(body: AnswerBody, length: Option<u64>) -> ResponseBody {
        match body {
            AnswerBody::Bytes(b) => ResponseBody::Full(Some(b)),
            AnswerBody::File(file) => stream(length, |tx| pump_file(file, tx)),
            AnswerBody::Reader(reader) => stream(length, |tx| pump_reader(reader, READ_CHUNK, tx)),
            AnswerBody::Spool(spool) => ResponseBody::Spool {
                state: SpoolState::Idle(spool),
                length,
            },
        }
    }
}

fn stream<F, Fut>(length: Option<u64>, pump: F) -> ResponseBody
where
    F: FnOnce(mpsc::Sender<io::Result<Bytes>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    // One piece queued per response: memory per waiter stays small even
    // with hundreds of waiters on one download.
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(pump(tx));
    ResponseBody::Stream { rx, length }
}

/// Sends a local file in [`FILE_CHUNK`] pieces: one trip to the blocking
/// pool per piece, none held while a slow client drains, and each piece
/// read straight into the buffer that goes to the socket (no copy through
/// an intermediate buffer, as `tokio::fs::File` would make).
async fn pump_file(file: std::fs::File, tx: mpsc::Sender<io::Result<Bytes>>) {
    use std::io::Read;
    let file = std::sync::Arc::new(file);
    loop {
        let file = std::sync::Arc::clone(&file);
        let piece = tokio::task::spawn_blocking(move || {
            let mut buf = Vec::with_capacity(FILE_CHUNK);
            (&*file)
                .take(FILE_CHUNK as u64)
                .read_to_end(&mut buf)
                .map(|_| buf)
        })
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e)));
        if !send_piece(&tx, piece).await {
            return;
        }
    }
}

async fn pump_reader(
    mut reader: Pin<Box<dyn AsyncRead + Send>>,
    chunk: usize,
    tx: mpsc::Sender<io::Result<Bytes>>,
) {
    loop {
        let mut buf = Vec::with_capacity(chunk);
        let piece = (&mut reader)
            .take(chunk as u64)
            .read_to_end(&mut buf)
            .await
            .map(|_| buf);
        if !send_piece(&tx, piece).await {
            return;
        }
    }
}

/// Passes one piece read for a streamed body on (an empty one is the
/// end); whether to read on.
async fn send_piece(tx: &mpsc::Sender<io::Result<Bytes>>, piece: io::Result<Vec<u8>>) -> bool {
    match piece {
        Ok(buf) if buf.is_empty() => false,
        Ok(buf) => tx.send(Ok(Bytes::from(buf))).await.is_ok(),
        Err(e) => {
            let _ = tx.send(Err(e)).await;
            false
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
            ResponseBody::Stream { rx, .. } => rx
                .poll_recv(cx)
                .map(|item| item.map(|r| r.map(Frame::data))),
            ResponseBody::Spool { state, .. } => loop {
                match std::mem::replace(state, SpoolState::Done) {
                    SpoolState::Done => return Poll::Ready(None),
                    SpoolState::Idle(mut reader) => {
                        *state = SpoolState::Reading(Box::pin(async move {
                            let piece = reader.next().await;
                            (reader, piece)
                        }));
                    }
                    SpoolState::Reading(mut next) => match next.as_mut().poll(cx) {
                        Poll::Pending => {
                            *state = SpoolState::Reading(next);
                            return Poll::Pending;
                        }
                        Poll::Ready((reader, piece)) => {
                            if matches!(piece, Some(Ok(_))) {
                                *state = SpoolState::Idle(reader);
                            }
                            return Poll::Ready(piece.map(|r| r.map(Frame::data)));
                        }
                    },
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(
            self,
            ResponseBody::Full(None)
                | ResponseBody::Spool {
                    state: SpoolState::Done,
                    ..
                }
        )
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            ResponseBody::Full(None) => SizeHint::with_exact(0),
            ResponseBody::Stream {
                length: Some(n), ..
            }
            | ResponseBody::Spool {
                length: Some(n), ..
            } => SizeHint::with_exact(*n),
            ResponseBody::Stream { .. } | ResponseBody::Spool { .. } => SizeHint::default(),
        }
    }
}
