//! A circuit breaker per upstream: after repeated failures (or one timeout)
//! the upstream is skipped for a cool-down, so the next request does not
//! wait on it again; after the cool-down one request probes it.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::UpstreamError;
use crate::error::chain;

use crate::sync::Locked;

/// Whether a request may go to the upstream.
#[derive(Debug)]
pub enum Admission {
    /// Healthy: go ahead.
    Closed,
    /// Cool-down over: this request probes; its result decides.
    Probe,
    /// Skip it.
    Open {
        retry_in: Duration,
        last_error: String,
        timed_out: bool,
    },
}

#[derive(Debug, Default)]
struct State {
    consecutive_failures: u32,
    open_until: Option<Instant>,
    /// When the current probe started; a probe that never reported back
    /// (its request was cancelled) expires after a cool-down.
    probing: Option<Instant>,
    last_error: String,
    timed_out: bool,
}

#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    cooldown: Duration,
    state: Mutex<State>,
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Breaker {
        Breaker {
            threshold: threshold.max(1),
            cooldown,
            state: Mutex::default(),
        }
    }

    pub fn admit(&self) -> Admission {
        let mut s = self.state.locked();
        let Some(until) = s.open_until else {
            return Admission::Closed;
        };
        let now = Instant::now();
        let probe_lost = s.probing.is_some_and(|t| now >= t + self.cooldown);
        if now >= until && (s.probing.is_none() || probe_lost) {
            s.probing = Some(now);
            return Admission::Probe;
        }
        Admission::Open {
            retry_in: until.saturating_duration_since(now),
            last_error: s.last_error.clone(),
            timed_out: s.timed_out,
        }
    }

    /// Whether the breaker is open now (without taking a probe).
    pub fn is_open(&self) -> bool {
        let s = self.state.locked();
        s.open_until.is_some_and(|until| Instant::now() < until)
    }

    /// Whether it opened and no fetch has succeeded since (open, or past
    /// its cool-down and waiting for the probe).
    pub fn is_failing(&self) -> bool {
        let s = self.state.locked();
        s.open_until.is_some()
    }

    /// The upstream answered (found or not found): close the breaker.
    pub fn success(&self) {
        let mut s = self.state.locked();
        if s.open_until.is_some() {
            tracing::info!("upstream answers again; circuit closed");
        }
        *s = State::default();
    }

    /// The upstream failed; open the breaker when that is one too many.
    pub fn failure(&self, err: &UpstreamError) {
        let mut s = self.state.locked();
        s.consecutive_failures += 1;
        s.probing = None;
        s.last_error = chain(err).to_string();
        s.timed_out = err.kind().is_timeout();
        if s.timed_out || s.consecutive_failures >= self.threshold {
            if s.open_until.is_none() {
                tracing::warn!(error = %chain(err), cooldown_s = self.cooldown.as_secs_f32(), "circuit opened: skipping the upstream");
            }
            s.open_until = Some(Instant::now() + self.cooldown);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure() -> UpstreamError {
        UpstreamError::Status {
            upstream: "a".into(),
            status: 503,
            message: "down".into(),
        }
    }

    #[test]
    fn opens_after_threshold_then_probes_once() {
        let b = Breaker::new(2, Duration::from_millis(20));
        b.failure(&failure());
        assert!(matches!(b.admit(), Admission::Closed));
        b.failure(&failure());
        assert!(matches!(b.admit(), Admission::Open { .. }));
        std::thread::sleep(Duration::from_millis(25));
        assert!(matches!(b.admit(), Admission::Probe));
        assert!(
            matches!(b.admit(), Admission::Open { .. }),
            "only one probe at a time"
        );
        b.success();
        assert!(matches!(b.admit(), Admission::Closed));
    }

    #[test]
    fn a_timeout_opens_at_once() {
        let b = Breaker::new(5, Duration::from_secs(30));
        b.failure(&UpstreamError::Timeout {
            upstream: "a".into(),
            step: crate::error::Step::Headers,
            after: Duration::from_secs(10),
        });
        assert!(matches!(
            b.admit(),
            Admission::Open {
                timed_out: true,
                ..
            }
        ));
    }
}
