//! What can go wrong talking to an upstream, classified so the server can
//! answer 404 only for "does not exist" and name the upstream and the step
//! otherwise.

use std::time::Duration;

use super::address::refused_in;
use crate::settings::UpstreamPolicy;

/// Why an upstream did not deliver a file.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The upstream answered 404 or 410: the module or version does not exist there.
    #[error("upstream {upstream}: not found: {message}")]
    NotFound { upstream: String, message: String },
    /// The upstream list ends in `off` (or is `off`): lookups are disabled.
    #[error("module lookup disabled: the upstream list ends in \"off\"")]
    Off,
    /// `direct`: version control failed (git's message, repository
    /// named, credentials hidden).
    #[error("direct: {message}")]
    Vcs { message: String, timed_out: bool },
    /// Every entry of the list answered "not found".
    #[error("{}", join(.0))]
    NoneHas(Vec<UpstreamError>),
    /// A network step did not finish in time.
    #[error("upstream {upstream}: {step} after {}", fmt_duration(*after))]
    Timeout {
        upstream: String,
        step: &'static str,
        after: Duration,
    },
    /// The connection could not be made or broke.
    #[error("upstream {upstream}: {step} failed after {}: {}", fmt_duration(*after), error_chain(source))]
    Network {
        upstream: String,
        step: String,
        after: Duration,
        #[source]
        source: reqwest::Error,
    },
    /// Skipped: its circuit breaker is open after recent failures.
    #[error("upstream {upstream}: skipped for another {}s after repeated failures (last: {last_error})", retry_in.as_secs() + 1)]
    Skipped {
        upstream: String,
        retry_in: Duration,
        last_error: String,
        timed_out: bool,
    },
    /// Any other HTTP status.
    #[error("upstream {upstream}: HTTP {status}: {message}")]
    Status {
        upstream: String,
        status: u16,
        message: String,
    },
    /// The address policy does not allow the connection (a public module
    /// path naming an internal address, a redirect to plain http).
    #[error("upstream {upstream}: {message}")]
    Refused { upstream: String, message: String },
    /// The upstream answered, but with something that is not a valid answer.
    #[error("upstream {upstream}: invalid response for {what}: {reason}")]
    Invalid {
        upstream: String,
        what: String,
        reason: String,
    },
}

impl UpstreamError {
    /// "Does not exist": decides the 404 answer and the `,` fall-through.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            UpstreamError::NotFound { .. } | UpstreamError::Off | UpstreamError::NoneHas(_)
        )
    }

    /// A timeout (answered 504) rather than a failure (502).
    pub fn is_timeout(&self) -> bool {
        match self {
            UpstreamError::Timeout { .. } => true,
            UpstreamError::Skipped { timed_out, .. } | UpstreamError::Vcs { timed_out, .. } => {
                *timed_out
            }
            _ => false,
        }
    }

    /// Worth another attempt: connection errors, 429 and 5xx. Not 404/410,
    /// and not a timeout waiting for headers (that would multiply the wait;
    /// the circuit breaker handles a silent upstream).
    pub fn is_retryable(&self) -> bool {
        match self {
            UpstreamError::Network { .. } => true,
            UpstreamError::Status { status, .. } => *status == 429 || *status >= 500,
            UpstreamError::Invalid { reason, .. } => reason.starts_with("connection closed"),
            _ => false,
        }
    }
}

/// Names the step a request failed at: DNS lookup, TCP connect, TLS
/// handshake, or the request itself. The connector says "dns error" and
/// "tcp connect error"; any other connect failure on https is the handshake.
pub(super) fn network_error(
    upstream: &str,
    e: reqwest::Error,
    after: Duration,
    tls: bool,
    policy: &UpstreamPolicy,
) -> UpstreamError {
    if let Some(refused) = refused_in(&e) {
        return UpstreamError::Refused {
            upstream: upstream.to_string(),
            message: refused.to_string(),
        };
    }
    if e.is_connect() && e.is_timeout() {
        return UpstreamError::Timeout {
            upstream: upstream.to_string(),
            step: "connect timed out",
            after: policy.connect,
        };
    }
    let mut chain = String::new();
    let mut cause: Option<&dyn std::error::Error> = Some(&e);
    while let Some(c) = cause {
        chain.push_str(&c.to_string().to_ascii_lowercase());
        chain.push(' ');
        cause = c.source();
    }
    let step = if chain.contains("dns error") {
        "DNS lookup"
    } else if chain.contains("tcp connect error") {
        "TCP connect"
    } else if e.is_connect() && tls {
        "TLS handshake"
    } else if e.is_connect() {
        "connect"
    } else {
        "request"
    };
    UpstreamError::Network {
        upstream: upstream.to_string(),
        step: step.into(),
        after,
        // The upstream is named already; its URL may hold credentials.
        source: e.without_url(),
    }
}

fn fmt_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

fn join(errors: &[UpstreamError]) -> String {
    let parts: Vec<String> = errors.iter().map(ToString::to_string).collect();
    parts.join("; ")
}

/// An error and its causes on one line (reqwest's own message is terse).
pub(crate) fn error_chain(e: &reqwest::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let text = c.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cause = c.source();
    }
    parts.join(": ")
}
