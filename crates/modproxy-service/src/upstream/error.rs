//! What can go wrong talking to an upstream, classified so the server can
//! answer 404 only for "does not exist" and name the upstream and the step
//! otherwise. Decisions go by [`UpstreamError::kind`], never by the text.

use std::time::Duration;

use super::address::refused_in;
use crate::error::{chain, ErrorKind, Step};
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
    #[error("upstream {upstream}: {} after {}", step.timed_out(), fmt_duration(*after))]
    Timeout {
        upstream: String,
        step: Step,
        after: Duration,
    },
    /// The connection could not be made or broke (the cause is the
    /// client's error, without the URL).
    #[error("upstream {upstream}: {} failed after {}", step.name(), fmt_duration(*after))]
    Network {
        upstream: String,
        step: Step,
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
    /// The connection closed before the announced end of the body.
    #[error("upstream {upstream}: the connection closed before the end of the body ({received} of {expected} bytes)")]
    ConnectionClosed {
        upstream: String,
        received: u64,
        expected: u64,
    },
    /// The upstream answered, but with something that is not a valid answer.
    #[error("upstream {upstream}: invalid response for {what}: {reason}")]
    Invalid {
        upstream: String,
        what: String,
        reason: String,
    },
}

impl UpstreamError {
    /// What failed: decides retries, the circuit breaker, the `,`
    /// fall-through and the HTTP status (see [`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            UpstreamError::NotFound { .. } | UpstreamError::Off | UpstreamError::NoneHas(_) => {
                ErrorKind::NotFound
            }
            UpstreamError::Vcs { timed_out, .. } => ErrorKind::Vcs {
                timed_out: *timed_out,
            },
            UpstreamError::Timeout { step, .. } => ErrorKind::Timeout(*step),
            UpstreamError::Network { step, .. } => ErrorKind::Network(*step),
            UpstreamError::Skipped { timed_out, .. } => ErrorKind::Skipped {
                timed_out: *timed_out,
            },
            UpstreamError::Status { status, .. } => ErrorKind::Status(*status),
            UpstreamError::Refused { .. } => ErrorKind::Refused,
            UpstreamError::ConnectionClosed { .. } => ErrorKind::ConnectionClosed,
            UpstreamError::Invalid { .. } => ErrorKind::InvalidAnswer,
        }
    }
}

/// Names the step a request failed at: DNS lookup, TCP connect, TLS
/// handshake, or the request itself.
pub(crate) fn network_error(
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
            step: Step::Connect,
            after: policy.connect,
        };
    }
    let step = match connector_step(&e) {
        Some(step) => step,
        None if e.is_connect() && tls => Step::TlsHandshake,
        None if e.is_connect() => Step::Connect,
        None => Step::Headers,
    };
    UpstreamError::Network {
        upstream: upstream.to_string(),
        step,
        after,
        // The upstream is named already; its URL may hold credentials.
        source: e.without_url(),
    }
}

/// The step the HTTP connector says failed, from its error in `e`'s
/// causes. hyper-util does not export that error's type: its fixed
/// messages (`dns error`, `tcp connect error`) are all it says, so they
/// are read here, once, into a [`Step`]. Only the step's name in the
/// message depends on it; every [`ErrorKind::Network`] is retried alike.
fn connector_step(e: &reqwest::Error) -> Option<Step> {
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        match c.to_string().as_str() {
            "dns error" => return Some(Step::Dns),
            "tcp connect error" => return Some(Step::TcpConnect),
            _ => cause = c.source(),
        }
    }
    None
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
    let parts: Vec<String> = errors.iter().map(|e| chain(e).to_string()).collect();
    parts.join("; ")
}
