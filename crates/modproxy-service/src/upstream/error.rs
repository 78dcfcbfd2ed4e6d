//! What can go wrong talking to an upstream, classified so the server can
//! answer 404 only for "does not exist" and name the upstream and the step
//! otherwise.

use std::time::Duration;

/// Why an upstream did not deliver a file.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The upstream answered 404 or 410: the module or version does not exist there.
    #[error("upstream {upstream}: not found: {message}")]
    NotFound { upstream: String, message: String },
    /// The upstream list ends in `off` (or is `off`): lookups are disabled.
    #[error("module lookup disabled: the upstream list ends in \"off\"")]
    Off,
    /// `direct` (version control) is in the list but not implemented yet.
    #[error("direct: fetching from version control is not supported yet")]
    DirectUnsupported,
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
    #[error("upstream {upstream}: {step}: {source}")]
    Network {
        upstream: String,
        step: &'static str,
        #[source]
        source: reqwest::Error,
    },
    /// Any other HTTP status.
    #[error("upstream {upstream}: HTTP {status}: {message}")]
    Status {
        upstream: String,
        status: u16,
        message: String,
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
    /// "Does not exist": decides the 404 answer and the `,` fall-through.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            UpstreamError::NotFound { .. }
                | UpstreamError::Off
                | UpstreamError::DirectUnsupported
                | UpstreamError::NoneHas(_)
        )
    }

    /// A timeout (answered 504) rather than a failure (502).
    pub fn is_timeout(&self) -> bool {
        matches!(self, UpstreamError::Timeout { .. })
    }
}

fn fmt_duration(d: Duration) -> String {
    if d.as_millis() % 1000 == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

fn join(errors: &[UpstreamError]) -> String {
    let parts: Vec<String> = errors.iter().map(ToString::to_string).collect();
    parts.join("; ")
}
