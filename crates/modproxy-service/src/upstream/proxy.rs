//! One upstream module proxy, spoken to over HTTP with the shared client.
//!
//! Every step is bounded: connect (client setting), response headers,
//! body stalls, and the whole fetch. Connection errors, 429 and 5xx are
//! retried with jittered exponential backoff; a body that breaks or stalls
//! is resumed where it stopped (`Range`), so waiters never see the hiccup.
//! Each upstream has a circuit breaker.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{CONTENT_RANGE, RANGE};
use reqwest::StatusCode;
use tokio::time::{timeout, Instant};

use super::address::{AddressPolicy, Refused};
use super::breaker::{Admission, Breaker};
use super::error::network_error;
use super::UpstreamError;
use crate::error::{chain, Step};
use crate::metrics::UpstreamStats;
use crate::settings::UpstreamPolicy;

/// How much of an error body is kept for the message shown to the user.
const ERROR_BODY_LIMIT: usize = 1024;

/// The shared client and the rules it is used with.
#[derive(Debug, Clone)]
pub struct Http {
    pub client: reqwest::Client,
    pub policy: UpstreamPolicy,
    /// Set for URLs a public module path names: `client` then reaches
    /// only public addresses, URLs are checked before they are asked, and
    /// error bodies are logged rather than relayed.
    pub guard: Option<Arc<AddressPolicy>>,
}

impl Http {
    /// A GET of `url`, checked by the address policy where it applies.
    pub fn get(&self, url: &str) -> Result<reqwest::RequestBuilder, Refused> {
        if let Some(guard) = &self.guard {
            guard.check_url(url)?;
        }
        Ok(self.client.get(url))
    }
}

/// An upstream GOPROXY server (or any HTTP base URL, e.g. a checksum DB).
#[derive(Debug, Clone)]
pub struct ProxyUpstream {
    base: String,
    name: String,
    breaker: Arc<Breaker>,
    stats: Arc<UpstreamStats>,
}

impl ProxyUpstream {
    /// `base` is an `http(s)://` URL; a trailing slash is ignored.
    pub fn new(base: &str, policy: &UpstreamPolicy) -> ProxyUpstream {
        let base = base.trim_end_matches('/').to_string();
        // Credentials in the URL (`https://user:token@host`) never reach a
        // message, log line or metric label.
        let redacted = super::redact(&base);
        let name = redacted
            .split_once("://")
            .map_or_else(|| redacted.clone(), |(_, rest)| rest.to_string());
        ProxyUpstream {
            base,
            name,
            breaker: Arc::new(Breaker::new(
                policy.breaker_threshold,
                policy.breaker_cooldown,
            )),
            stats: Arc::default(),
        }
    }

    /// The same upstream with `suffix` appended to its base URL, sharing
    /// its circuit breaker (e.g. its `/sumdb/NAME` endpoint).
    pub fn sub(&self, suffix: &str) -> ProxyUpstream {
        ProxyUpstream {
            base: format!("{}/{suffix}", self.base),
            name: format!("{}/{suffix}", self.name),
            breaker: Arc::clone(&self.breaker),
            stats: Arc::clone(&self.stats),
        }
    }

    /// Whether its circuit breaker currently skips it.
    pub fn is_skipped(&self) -> bool {
        self.breaker.is_open()
    }

    /// Whether its breaker is open or waiting for a probe (its recent
    /// fetches failed, none succeeded since).
    pub fn is_failing(&self) -> bool {
        self.breaker.is_failing()
    }

    /// The name used in messages: host, port and path, without the scheme
    /// and with any credentials hidden.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// What it has done, for `/metrics`.
    pub fn stats(&self) -> &UpstreamStats {
        &self.stats
    }

    /// GETs `$base/$path` and returns the response once its headers are in.
    /// 404 and 410 become [`UpstreamError::NotFound`]; any other status but
    /// 200 is an error. Skipped at once while the circuit breaker is open.
    pub async fn get(&self, http: &Http, path: &str) -> Result<Fetched, UpstreamError> {
        if let Admission::Open {
            retry_in,
            last_error,
            timed_out,
        } = self.breaker.admit()
        {
            return Err(UpstreamError::Skipped {
                upstream: self.name.clone(),
                retry_in,
                last_error,
                timed_out,
            });
        }
        let started = Instant::now();
        let result = self.get_with_retries(http, path).await;
        let failed = result.as_ref().is_err_and(|e| !e.kind().is_not_found());
        self.stats.observe(started.elapsed(), failed);
        match &result {
            Ok(_) => self.breaker.success(),
            Err(e) if e.kind().is_not_found() => self.breaker.success(),
            Err(e) => self.breaker.failure(e),
        }
        result
    }

    async fn get_with_retries(&self, http: &Http, path: &str) -> Result<Fetched, UpstreamError> {
        let deadline = Instant::now() + http.policy.deadline;
        let mut fetched = Fetched {
            upstream: self.name.clone(),
            url: format!("{}/{}", self.base, escape_path(path)),
            http: http.clone(),
            content_length: None,
            response: None,
            received: 0,
            skip: 0,
            retries_left: http.policy.retries,
            attempt: 0,
            deadline,
            resumable: false,
            local: None,
        };
        fetched.open(false).await?;
        Ok(fetched)
    }
}

/// A 200 response whose body is still arriving, read under the stall
/// timeout and the fetch deadline, resumed after a break.
#[derive(Debug)]
pub struct Fetched {
    pub upstream: String,
    pub content_length: Option<u64>,
    url: String,
    http: Http,
    response: Option<reqwest::Response>,
    /// Body bytes handed out so far.
    received: u64,
    /// Bytes to drop from a resumed response that restarted from 0.
    skip: u64,
    retries_left: u32,
    attempt: u32,
    deadline: Instant,
    /// Whether a broken body may be re-requested from where it stopped:
    /// only for files that cannot change between the two requests.
    resumable: bool,
    /// A body made here rather than received (`direct`).
    local: Option<Local>,
}

/// A body produced locally: bytes, a file read in large pieces, or
/// (in unit tests) pieces handed over one by one by a fake upstream.
#[derive(Debug)]
enum Local {
    Bytes(Option<Bytes>),
    File(tokio::fs::File),
    #[cfg(test)]
    Pieces(tokio::sync::mpsc::Receiver<Result<Bytes, UpstreamError>>),
}

impl Fetched {
    fn made_here(http: &Http, upstream: &str, length: Option<u64>, local: Local) -> Fetched {
        Fetched {
            upstream: upstream.to_string(),
            content_length: length,
            url: String::new(),
            http: http.clone(),
            response: None,
            received: 0,
            skip: 0,
            retries_left: 0,
            attempt: 0,
            deadline: Instant::now() + http.policy.deadline,
            resumable: false,
            local: Some(local),
        }
    }

    /// A complete answer produced here (by `upstream`).
    pub fn local(http: &Http, upstream: &str, body: Bytes) -> Fetched {
        let n = body.len() as u64;
        Fetched::made_here(http, upstream, Some(n), Local::Bytes(Some(body)))
    }

    /// A complete answer in a local file (read from its start).
    pub fn local_file(
        http: &Http,
        upstream: &str,
        file: std::fs::File,
    ) -> std::io::Result<Fetched> {
        let n = file.metadata()?.len();
        let file = tokio::fs::File::from_std(file);
        Ok(Fetched::made_here(
            http,
            upstream,
            Some(n),
            Local::File(file),
        ))
    }

    /// An answer (of `length`, if announced) whose body is what `pieces`
    /// yields, as it yields it: it ends when the sender is dropped and
    /// fails where it yields an error (a fake upstream's, in unit tests).
    #[cfg(test)]
    pub fn pieces(
        http: &Http,
        upstream: &str,
        length: Option<u64>,
        pieces: tokio::sync::mpsc::Receiver<Result<Bytes, UpstreamError>>,
    ) -> Fetched {
        Fetched::made_here(http, upstream, length, Local::Pieces(pieces))
    }
}

impl Fetched {
    /// Allows resuming a broken body (for immutable files only).
    pub fn resumable(mut self, yes: bool) -> Fetched {
        self.resumable = yes;
        self
    }

    /// Sends the request (from `received` when resuming), retrying what is
    /// worth retrying, until a usable response or a final error.
    async fn open(&mut self, resuming: bool) -> Result<(), UpstreamError> {
        loop {
            match self.attempt_once(resuming).await {
                Ok(()) => return Ok(()),
                Err(e) if e.kind().retryable() && self.retries_left > 0 => {
                    self.backoff(&e).await?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits before the next attempt; fails if that would pass the deadline.
    async fn backoff(&mut self, cause: &UpstreamError) -> Result<(), UpstreamError> {
        self.retries_left -= 1;
        let base = self.http.policy.retry_base.as_secs_f64() * 2f64.powi(self.attempt as i32);
        self.attempt += 1;
        let wait = Duration::from_secs_f64(base * (0.5 + jitter()));
        if Instant::now() + wait >= self.deadline {
            return Err(self.timeout(Step::Fetch, self.http.policy.deadline));
        }
        tracing::info!(upstream = %self.upstream, error = %chain(cause), wait_ms = wait.as_millis() as u64, "retrying");
        tokio::time::sleep(wait).await;
        Ok(())
    }

    async fn attempt_once(&mut self, resuming: bool) -> Result<(), UpstreamError> {
        let started = Instant::now();
        let mut request = self
            .http
            .get(&self.url)
            .map_err(|refused| UpstreamError::Refused {
                upstream: self.upstream.clone(),
                message: refused.to_string(),
            })?;
        if resuming && self.received > 0 {
            request = request.header(RANGE, format!("bytes={}-", self.received));
        }
        let wait = self
            .http
            .policy
            .headers
            .min(self.deadline.saturating_duration_since(started));
        let response = match timeout(wait, request.send()).await {
            Err(_) => return Err(self.timeout(Step::Headers, wait)),
            Ok(Err(e)) => {
                let tls = self.url.starts_with("https:");
                let after = started.elapsed();
                return Err(network_error(
                    &self.upstream,
                    e,
                    after,
                    tls,
                    &self.http.policy,
                ));
            }
            Ok(Ok(r)) => r,
        };
        let status = response.status();
        match status {
            StatusCode::OK => {
                if !resuming {
                    self.content_length = response.content_length();
                } else if response.content_length() != self.content_length {
                    return Err(self.invalid("body", "changed size between attempts"));
                }
                self.skip = if resuming { self.received } else { 0 };
                self.response = Some(response);
                Ok(())
            }
            StatusCode::PARTIAL_CONTENT if resuming => {
                let start = response
                    .headers()
                    .get(CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("bytes "))
                    .and_then(|v| v.split('-').next())
                    .and_then(|v| v.parse::<u64>().ok());
                if start != Some(self.received) {
                    return Err(self.invalid(&self.url.clone(), "resumed at the wrong offset"));
                }
                self.skip = 0;
                self.response = Some(response);
                Ok(())
            }
            _ => {
                self.response = Some(response);
                let mut message = self.read_error_body().await;
                self.response = None;
                if self.http.guard.is_some() {
                    // A server a module path named: what it says stays in
                    // the log (it may be an internal service's page).
                    tracing::info!(upstream = %self.upstream, %status, body = %message, "error answer");
                    message = format!("answered {status}");
                }
                if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
                    Err(UpstreamError::NotFound {
                        upstream: self.upstream.clone(),
                        message,
                    })
                } else {
                    Err(UpstreamError::Status {
                        upstream: self.upstream.clone(),
                        status: status.as_u16(),
                        message,
                    })
                }
            }
        }
    }

    /// The next piece of the body, `Ok(None)` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, UpstreamError> {
        match &mut self.local {
            Some(Local::Bytes(body)) => return Ok(body.take()),
            Some(Local::File(file)) => {
                use tokio::io::AsyncReadExt;
                let mut buf = bytes::BytesMut::with_capacity(256 << 10);
                let n = file
                    .read_buf(&mut buf)
                    .await
                    .map_err(|e| UpstreamError::Vcs {
                        message: format!("reading the zip built here: {e}"),
                        timed_out: false,
                    })?;
                return Ok((n > 0).then(|| buf.freeze()));
            }
            #[cfg(test)]
            Some(Local::Pieces(pieces)) => return pieces.recv().await.transpose(),
            None => {}
        }
        loop {
            match self.read_raw().await {
                Ok(Some(mut chunk)) => {
                    if self.skip > 0 {
                        let drop = (chunk.len() as u64).min(self.skip) as usize;
                        self.skip -= drop as u64;
                        chunk = chunk.slice(drop..);
                        if chunk.is_empty() {
                            continue;
                        }
                    }
                    self.received += chunk.len() as u64;
                    return Ok(Some(chunk));
                }
                Ok(None) => {
                    let expected = match self.content_length {
                        Some(n) if self.received < n => n,
                        _ => return Ok(None),
                    };
                    let err = UpstreamError::ConnectionClosed {
                        upstream: self.upstream.clone(),
                        received: self.received,
                        expected,
                    };
                    self.resume_after(err).await?;
                }
                Err(e) if e.kind().resumable() => self.resume_after(e).await?,
                Err(e) => return Err(e),
            }
        }
    }

    /// Re-requests the rest of the body after `cause`, or fails with it.
    async fn resume_after(&mut self, cause: UpstreamError) -> Result<(), UpstreamError> {
        self.response = None;
        if !self.resumable || self.retries_left == 0 || Instant::now() >= self.deadline {
            return Err(cause);
        }
        self.backoff(&cause).await?;
        self.open(true).await
    }

    async fn read_raw(&mut self) -> Result<Option<Bytes>, UpstreamError> {
        let now = Instant::now();
        if now >= self.deadline {
            return Err(self.timeout(Step::Fetch, self.http.policy.deadline));
        }
        let stall = self.http.policy.stall;
        let wait = stall.min(self.deadline - now);
        let Some(response) = self.response.as_mut() else {
            return Ok(None);
        };
        match timeout(wait, response.chunk()).await {
            Ok(Ok(chunk)) => Ok(chunk),
            Ok(Err(e)) => Err(UpstreamError::Network {
                upstream: self.upstream.clone(),
                step: Step::Body,
                after: now.elapsed(),
                source: e.without_url(),
            }),
            Err(_) if wait < stall => Err(self.timeout(Step::Fetch, self.http.policy.deadline)),
            Err(_) => Err(self.timeout(Step::Body, stall)),
        }
    }

    /// The whole body, refused past `limit` bytes.
    pub async fn bytes(mut self, what: &str, limit: u64) -> Result<Bytes, UpstreamError> {
        if self.content_length.is_some_and(|n| n > limit) {
            return Err(self.too_large(what, limit));
        }
        let mut buf = Vec::with_capacity(self.content_length.unwrap_or(0).min(limit) as usize);
        while let Some(chunk) = self.chunk().await? {
            if (buf.len() + chunk.len()) as u64 > limit {
                return Err(self.too_large(what, limit));
            }
            buf.extend_from_slice(&chunk);
        }
        // Kept in memory (the hot cache counts lengths): no spare capacity.
        buf.shrink_to_fit();
        Ok(Bytes::from(buf))
    }

    /// Fails as an invalid answer about `what`.
    pub fn invalid(&self, what: &str, reason: impl Into<String>) -> UpstreamError {
        UpstreamError::Invalid {
            upstream: self.upstream.clone(),
            what: what.to_string(),
            reason: reason.into(),
        }
    }

    fn too_large(&self, what: &str, limit: u64) -> UpstreamError {
        self.invalid(what, format!("larger than the limit of {limit} bytes"))
    }

    fn timeout(&self, step: Step, after: Duration) -> UpstreamError {
        UpstreamError::Timeout {
            upstream: self.upstream.clone(),
            step,
            after,
        }
    }

    /// The first line(s) of an error body, for the message; never fails.
    async fn read_error_body(&mut self) -> String {
        let mut buf = Vec::new();
        let reason = self
            .response
            .as_ref()
            .and_then(|r| r.status().canonical_reason())
            .unwrap_or("no reason given");
        while buf.len() < ERROR_BODY_LIMIT {
            match self.read_raw().await {
                Ok(Some(c)) => buf.extend_from_slice(&c),
                _ => break,
            }
        }
        buf.truncate(ERROR_BODY_LIMIT);
        let text = String::from_utf8_lossy(&buf);
        let text = text.trim();
        if text.is_empty() {
            reason.to_string()
        } else {
            text.lines().take(4).collect::<Vec<_>>().join("; ")
        }
    }
}

/// A number in [0, 1) that differs between calls, for backoff jitter.
fn jitter() -> f64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static STATE: AtomicU64 = AtomicU64::new(0);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    let mut x = STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed) ^ seed;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// Percent-escapes a protocol path for a URL, keeping `/` and the
/// characters module paths and versions use unescaped (like Go's
/// `url.PathEscape` per element).
fn escape_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{escape_path, ProxyUpstream};

    #[test]
    fn names_never_show_credentials() {
        let policy = crate::settings::UpstreamPolicy::for_tests();
        let p = ProxyUpstream::new("https://ci:s3cret@goproxy.example.com/mod/", &policy);
        assert_eq!(p.name(), "***@goproxy.example.com/mod");
        assert_eq!(
            p.sub("sumdb/x").name(),
            "***@goproxy.example.com/mod/sumdb/x"
        );
    }

    #[test]
    fn escapes_what_a_url_path_cannot_hold() {
        assert_eq!(
            escape_path("rsc.io/quote/@v/v1.5.2.zip"),
            "rsc.io/quote/@v/v1.5.2.zip"
        );
        assert_eq!(
            escape_path("m/@v/v2.0.0+incompatible.info"),
            "m/@v/v2.0.0+incompatible.info"
        );
        assert_eq!(escape_path("m/@v/a#b c%.info"), "m/@v/a%23b%20c%25.info");
    }
}
