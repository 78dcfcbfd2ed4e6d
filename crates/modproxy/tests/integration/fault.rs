//! The tests' own HTTP server between modproxy and the upstream: it counts
//! every request by path, forwards to the real upstream, and on demand
//! injects faults (an error status, silence) or serves large synthetic files
//! at a chosen pace. Listens on loopback only.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::mpsc;

/// What the server does with the next requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward to the upstream (or serve a synthetic file).
    Forward,
    /// Answer every request with this status.
    Status(u16),
    /// Accept and never answer (bounded at two minutes).
    Hang,
    /// Answer the next `count` requests with `status`, then forward.
    Burst { status: u16, count: u32 },
    /// Wait this long before answering, then forward.
    Delay(Duration),
    /// Forward, but flip one byte in the middle of every `.zip` body.
    Tamper,
}

/// A generated file: `size` pseudo-random bytes from `seed`, sent in
/// `chunk`-sized pieces `delay` apart. The first `stalls` requests for it
/// stall (for two minutes at most) after `stall_after` bytes. `Range:
/// bytes=N-` requests are answered with 206. An `unannounced` one is sent
/// without its length (chunked).
#[derive(Debug, Clone, Copy)]
pub struct Synthetic {
    pub size: u64,
    pub seed: u64,
    pub chunk: usize,
    pub delay: Duration,
    pub stall_after: Option<u64>,
    pub stalls: u32,
    pub unannounced: bool,
}

impl Synthetic {
    /// `size` bytes sent as fast as possible, never stalling.
    pub fn fast(size: u64, seed: u64) -> Synthetic {
        Synthetic {
            size,
            seed,
            chunk: 256 << 10,
            delay: Duration::ZERO,
            stall_after: None,
            stalls: 0,
            unannounced: false,
        }
    }
}

struct State {
    upstream: String,
    mode: Mutex<Mode>,
    counts: Mutex<HashMap<String, usize>>,
    synthetic: Mutex<HashMap<String, Synthetic>>,
    statics: Mutex<HashMap<String, Bytes>>,
    /// Path prefixes answered 404 instead of forwarded.
    blocked: Mutex<Vec<String>>,
    /// Synthetic bodies whose receiver went away before the end.
    aborted: std::sync::atomic::AtomicUsize,
    client: reqwest::Client,
}

pub struct FaultServer {
    /// Base URL to give modproxy as its upstream.
    pub url: String,
    state: Arc<State>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl FaultServer {
    /// Starts a server forwarding to `upstream` (a proxy base URL).
    pub fn start(upstream: &str) -> FaultServer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_string(),
            mode: Mutex::new(Mode::Forward),
            counts: Mutex::default(),
            synthetic: Mutex::default(),
            statics: Mutex::default(),
            blocked: Mutex::default(),
            aborted: Default::default(),
            client: reqwest::Client::new(),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let accept_state = Arc::clone(&state);
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = Arc::clone(&accept_state);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let state = Arc::clone(&state);
                        async move { Ok::<_, Infallible>(handle(state, req).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FaultServer {
            url,
            state,
            runtime: Some(runtime),
        }
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    /// Serves `file` at `path` (e.g. `/example.com/big/@v/v1.0.0.zip`).
    pub fn add_synthetic(&self, path: &str, file: Synthetic) {
        self.state
            .synthetic
            .lock()
            .unwrap()
            .insert(path.to_string(), file);
    }

    /// Serves `body` at `path`, instead of forwarding.
    pub fn add_static(&self, path: &str, body: &str) {
        self.state
            .statics
            .lock()
            .unwrap()
            .insert(path.to_string(), Bytes::from(body.to_string()));
    }

    /// Serves `body` (binary) at `path`, instead of forwarding.
    pub fn add_static_bytes(&self, path: &str, body: Vec<u8>) {
        self.state
            .statics
            .lock()
            .unwrap()
            .insert(path.to_string(), Bytes::from(body));
    }

    /// How many requests arrived for `path`.
    pub fn count(&self, path: &str) -> usize {
        self.state
            .counts
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// Answers 404 for every path starting with `prefix`.
    pub fn block(&self, prefix: &str) {
        self.state.blocked.lock().unwrap().push(prefix.to_string());
    }

    /// Every path requested so far.
    pub fn paths(&self) -> Vec<String> {
        self.state.counts.lock().unwrap().keys().cloned().collect()
    }

    /// Synthetic bodies cut off because the client (modproxy) went away.
    pub fn aborted(&self) -> usize {
        self.state.aborted.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// All requests so far.
    pub fn total(&self) -> usize {
        self.state.counts.lock().unwrap().values().sum()
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

async fn handle(state: Arc<State>, req: Request<hyper::body::Incoming>) -> Response<ChannelBody> {
    let path = req.uri().path().to_string();
    *state
        .counts
        .lock()
        .unwrap()
        .entry(path.clone())
        .or_default() += 1;
    let mode = {
        let mut mode = state.mode.lock().unwrap();
        let now = *mode;
        if let Mode::Burst { status, count } = now {
            *mode = if count > 1 {
                Mode::Burst {
                    status,
                    count: count - 1,
                }
            } else {
                Mode::Forward
            };
            Mode::Status(status)
        } else {
            now
        }
    };
    match mode {
        Mode::Burst { .. } => unreachable!("turned into Status above"),
        Mode::Status(code) => return respond(code, Bytes::from("injected failure\n")),
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(120)).await;
            return respond(504, Bytes::new());
        }
        Mode::Delay(wait) => tokio::time::sleep(wait).await,
        Mode::Forward | Mode::Tamper => {}
    }
    let blocked = state.blocked.lock().unwrap().clone();
    if blocked
        .iter()
        .any(|prefix| path.starts_with(prefix.as_str()))
    {
        return respond(404, Bytes::from("blocked by the test\n"));
    }
    let synthetic = {
        let mut files = state.synthetic.lock().unwrap();
        files.get_mut(&path).map(|f| {
            let this = *f;
            f.stalls = f.stalls.saturating_sub(1);
            this
        })
    };
    if let Some(file) = synthetic {
        let from = req
            .headers()
            .get("range")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("bytes="))
            .and_then(|v| v.strip_suffix('-'))
            .and_then(|v| v.parse::<u64>().ok());
        return serve_synthetic(Arc::clone(&state), file, from);
    }
    let fixed = state.statics.lock().unwrap().get(&path).cloned();
    if let Some(body) = fixed {
        return respond(200, body);
    }
    match state
        .client
        .get(format!("{}{path}", state.upstream))
        .send()
        .await
    {
        Ok(r) => {
            let status = r.status().as_u16();
            let mut body = r.bytes().await.unwrap_or_default();
            if mode == Mode::Tamper && path.ends_with(".zip") && status == 200 {
                let mut bytes = body.to_vec();
                let middle = bytes.len() / 2;
                bytes[middle] ^= 0x01;
                body = Bytes::from(bytes);
            }
            respond(status, body)
        }
        Err(e) => respond(502, Bytes::from(format!("fault server: {e}\n"))),
    }
}

fn respond(status: u16, body: Bytes) -> Response<ChannelBody> {
    let (tx, rx) = mpsc::channel(1);
    let _ = tx.try_send(body);
    Response::builder()
        .status(status)
        .body(ChannelBody { rx })
        .unwrap()
}

fn serve_synthetic(state: Arc<State>, file: Synthetic, from: Option<u64>) -> Response<ChannelBody> {
    let start = from.unwrap_or(0).min(file.size);
    let stall_after = file.stall_after.filter(|_| file.stalls > 0);
    let (tx, rx) = mpsc::channel(2);
    tokio::spawn(async move {
        let mut gen = Generator::new(file.seed);
        let _ = gen.take(start as usize);
        let mut sent = start;
        while sent < file.size {
            if stall_after.is_some_and(|n| sent >= n) {
                tokio::time::sleep(Duration::from_secs(120)).await;
                return;
            }
            let n = (file.size - sent).min(file.chunk as u64) as usize;
            let mut piece = gen.take(n);
            zip_tail(&mut piece, sent, file.size);
            if tx.send(Bytes::from(piece)).await.is_err() {
                state
                    .aborted
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                return;
            }
            sent += n as u64;
            if !file.delay.is_zero() {
                tokio::time::sleep(file.delay).await;
            }
        }
    });
    let mut response = Response::builder();
    if !file.unannounced {
        response = response.header("content-length", file.size - start);
    }
    if from.is_some() {
        response = response.status(206).header(
            "content-range",
            format!(
                "bytes {start}-{}/{}",
                file.size.saturating_sub(1),
                file.size
            ),
        );
    }
    response.body(ChannelBody { rx }).unwrap()
}

/// The bytes of a synthetic file, for comparing with what was served.
pub fn synthetic_bytes(seed: u64, size: u64) -> Vec<u8> {
    let mut bytes = Generator::new(seed).take(size as usize);
    zip_tail(&mut bytes, 0, size);
    bytes
}

/// Ends every synthetic file with an empty zip's "end of central directory"
/// record, so it passes modproxy's check that a zip looks like one.
/// `piece` holds the bytes at `offset` of a file of `size` bytes.
fn zip_tail(piece: &mut [u8], offset: u64, size: u64) {
    const EOCD: [u8; 22] = [
        b'P', b'K', 5, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let tail_start = size.saturating_sub(EOCD.len() as u64);
    for (i, b) in piece.iter_mut().enumerate() {
        let at = offset + i as u64;
        if at >= tail_start {
            *b = EOCD[(at - tail_start) as usize];
        }
    }
}

/// xorshift64: cheap, deterministic, incompressible enough.
struct Generator {
    state: u64,
    pending: Vec<u8>,
}

impl Generator {
    fn new(seed: u64) -> Generator {
        Generator {
            state: seed | 1,
            pending: Vec::new(),
        }
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.pending);
        while out.len() < n {
            let mut x = self.state;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.state = x;
            out.extend_from_slice(&x.to_le_bytes());
        }
        self.pending = out.split_off(n);
        out
    }
}

pub struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}
