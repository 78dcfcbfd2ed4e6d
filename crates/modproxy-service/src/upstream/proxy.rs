//! One upstream module proxy, spoken to over HTTP with the shared client.

use std::time::Duration;

use bytes::Bytes;
use reqwest::StatusCode;
use tokio::time::{timeout, Instant};

use super::UpstreamError;
use crate::settings::UpstreamTimeouts;

/// How much of an error body is kept for the message shown to the user.
const ERROR_BODY_LIMIT: usize = 1024;

/// An upstream GOPROXY server.
#[derive(Debug, Clone)]
pub struct ProxyUpstream {
    base: String,
    name: String,
}

impl ProxyUpstream {
    /// `base` is an `http(s)://` URL without a trailing slash.
    pub fn new(base: &str) -> ProxyUpstream {
        let base = base.trim_end_matches('/').to_string();
        let name = base
            .split_once("://")
            .map(|(_, rest)| rest.to_string())
            .unwrap_or_else(|| base.clone());
        ProxyUpstream { base, name }
    }

    /// The name used in messages: host, port and path, without the scheme.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// GETs `$base/$path` and returns the response once its headers are in.
    /// 404 and 410 become [`UpstreamError::NotFound`]; any status but 200 is an error.
    pub async fn get(
        &self,
        client: &reqwest::Client,
        timeouts: &UpstreamTimeouts,
        path: &str,
    ) -> Result<Fetched, UpstreamError> {
        let url = format!("{}/{}", self.base, path);
        let deadline = Instant::now() + timeouts.deadline;
        let send = client.get(&url).send();
        let response = match timeout(timeouts.headers, send).await {
            Err(_) => {
                return Err(UpstreamError::Timeout {
                    upstream: self.name.clone(),
                    step: "no response headers",
                    after: timeouts.headers,
                })
            }
            Ok(Err(e)) => return Err(self.network_error(e, timeouts)),
            Ok(Ok(r)) => r,
        };
        let mut fetched = Fetched {
            upstream: self.name.clone(),
            content_length: response.content_length(),
            response,
            stall: timeouts.stall,
            deadline,
        };
        let status = fetched.response.status();
        if status == StatusCode::OK {
            return Ok(fetched);
        }
        let body = fetched.read_error_body().await;
        if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
            return Err(UpstreamError::NotFound {
                upstream: self.name.clone(),
                message: body,
            });
        }
        Err(UpstreamError::Status {
            upstream: self.name.clone(),
            status: status.as_u16(),
            message: body,
        })
    }

    fn network_error(&self, e: reqwest::Error, timeouts: &UpstreamTimeouts) -> UpstreamError {
        if e.is_connect() && e.is_timeout() {
            return UpstreamError::Timeout {
                upstream: self.name.clone(),
                step: "connect timed out",
                after: timeouts.connect,
            };
        }
        let step = if e.is_connect() { "connect" } else { "request" };
        UpstreamError::Network {
            upstream: self.name.clone(),
            step,
            source: e,
        }
    }
}

/// A 200 response whose body is still arriving, read under the stall timeout
/// and the fetch deadline.
#[derive(Debug)]
pub struct Fetched {
    pub upstream: String,
    pub content_length: Option<u64>,
    response: reqwest::Response,
    stall: Duration,
    deadline: Instant,
}

impl Fetched {
    /// The next piece of the body, `Ok(None)` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, UpstreamError> {
        let now = Instant::now();
        if now >= self.deadline {
            return Err(self.timeout("fetch deadline exceeded", self.stall));
        }
        let wait = self.stall.min(self.deadline - now);
        match timeout(wait, self.response.chunk()).await {
            Ok(Ok(chunk)) => Ok(chunk),
            Ok(Err(e)) => Err(UpstreamError::Network {
                upstream: self.upstream.clone(),
                step: "reading body",
                source: e,
            }),
            Err(_) if wait < self.stall => Err(self.timeout("fetch deadline exceeded", wait)),
            Err(_) => Err(self.timeout("body stalled, no bytes", self.stall)),
        }
    }

    /// The whole body, refused past `limit` bytes.
    pub async fn bytes(mut self, what: &str, limit: u64) -> Result<Bytes, UpstreamError> {
        if self.content_length.is_some_and(|n| n > limit) {
            return Err(self.too_large(what, limit));
        }
        let mut buf = Vec::with_capacity(self.content_length.unwrap_or(0) as usize);
        while let Some(chunk) = self.chunk().await? {
            if (buf.len() + chunk.len()) as u64 > limit {
                return Err(self.too_large(what, limit));
            }
            buf.extend_from_slice(&chunk);
        }
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

    fn timeout(&self, step: &'static str, after: Duration) -> UpstreamError {
        UpstreamError::Timeout {
            upstream: self.upstream.clone(),
            step,
            after,
        }
    }

    /// The first line(s) of an error body, for the message; never fails.
    async fn read_error_body(&mut self) -> String {
        let mut buf = Vec::new();
        while buf.len() < ERROR_BODY_LIMIT {
            match self.chunk().await {
                Ok(Some(c)) => buf.extend_from_slice(&c),
                _ => break,
            }
        }
        buf.truncate(ERROR_BODY_LIMIT);
        let text = String::from_utf8_lossy(&buf);
        let text = text.trim();
        if text.is_empty() {
            self.response
                .status()
                .canonical_reason()
                .unwrap_or("no reason given")
                .to_string()
        } else {
            text.lines().take(4).collect::<Vec<_>>().join("; ")
        }
    }
}
