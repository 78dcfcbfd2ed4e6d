//! What kind of failure an error is: the one thing the decisions look at
//! (retry, resume, circuit breaker, `,` fall-through, HTTP status, what
//! is remembered as "not found"). Every error type of the service says
//! its kind through a `kind()` method; its message is for people only, so
//! rewording a message changes no decision.
//!
//! Modelled on pingora-error's `ErrorType` (what failed, where) with its
//! retry decision, but only as fine as the decisions here need.

/// Which step of talking to an upstream failed or ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Resolving the host name.
    Dns,
    /// Opening the TCP connection.
    TcpConnect,
    /// The TLS handshake.
    TlsHandshake,
    /// Connecting, when which part of it failed is not known.
    Connect,
    /// Sending the request and waiting for the response headers.
    Headers,
    /// Receiving the body.
    Body,
    /// The whole fetch, held against its deadline.
    Fetch,
}

impl Step {
    /// The step as in "upstream X: TCP connect failed after 3ms".
    pub fn name(self) -> &'static str {
        match self {
            Step::Dns => "DNS lookup",
            Step::TcpConnect => "TCP connect",
            Step::TlsHandshake => "TLS handshake",
            Step::Connect => "connect",
            Step::Headers => "request",
            Step::Body => "reading the body",
            Step::Fetch => "fetch",
        }
    }

    /// What running out of time in this step is called, as in "upstream
    /// X: no response headers after 10s".
    pub fn timed_out(self) -> &'static str {
        match self {
            Step::Dns => "DNS lookup timed out",
            Step::TcpConnect | Step::TlsHandshake | Step::Connect => "connect timed out",
            Step::Headers => "no response headers",
            Step::Body => "body stalled, no bytes",
            Step::Fetch => "fetch deadline exceeded",
        }
    }
}

/// Why the checksum database could not vouch for a module, other than
/// an upstream failure on the way to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SumDbFailure {
    /// No upstream leads to it.
    NoRoute,
    /// Its answer is not a valid answer (or does not verify).
    Invalid,
    /// Its tree proofs do not check out.
    Proof,
    /// Its tree does not contain a tree it signed before.
    Fork,
    /// What it verified before could not be read from (or kept in) the store.
    Store,
}

/// Which verification downloaded bytes failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Integrity {
    /// The `h1:` hash is not the checksum database's.
    Checksum,
    /// The zip breaks the module zip rules.
    ZipRules,
    /// The checksum database does not know the module version.
    NotInSumDb,
    /// It could not be checked (no spool file to check it in).
    Unverifiable,
}

/// Which store operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    Read,
    Write,
    /// Opening the store (directories, locks, the bucket client).
    Prepare,
    List,
    Remove,
}

impl std::fmt::Display for StoreOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StoreOp::Read => "read",
            StoreOp::Write => "write",
            StoreOp::Prepare => "prepare",
            StoreOp::List => "list",
            StoreOp::Remove => "remove",
        })
    }
}

/// What failed, and where: the upstream chain, the checksum database, the
/// verification, the store, or this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The path is not a valid protocol request.
    BadRequest,
    /// A method other than GET and HEAD.
    MethodNotAllowed,
    /// Does not exist: an upstream's 404 or 410, `off`, a remembered
    /// "not found", a miss in cached-only mode.
    NotFound,
    /// A step of talking to an upstream did not finish in time.
    Timeout(Step),
    /// The connection to an upstream could not be made, or broke.
    Network(Step),
    /// An upstream answered with this HTTP status (not 200, 404 or 410).
    Status(u16),
    /// An upstream closed the connection before the end of the body.
    ConnectionClosed,
    /// An upstream answered, with something that is not a valid answer.
    InvalidAnswer,
    /// The address policy does not allow the connection.
    Refused,
    /// Skipped while the upstream's circuit breaker is open (opened by a
    /// timeout or not).
    Skipped { timed_out: bool },
    /// Version control (`direct`) failed, or was killed at its time limit.
    Vcs { timed_out: bool },
    /// The checksum database could not vouch for a module.
    SumDb(SumDbFailure),
    /// Downloaded bytes failed verification; nothing was stored.
    Integrity(Integrity),
    /// Our own store failed.
    Storage(StoreOp),
    /// A failure here that is no upstream's doing.
    Internal,
}

impl ErrorKind {
    /// The HTTP status answered. 404 means "does not exist" and nothing
    /// else: it makes the go command try its next proxy. A timeout is 504,
    /// any other upstream or verification failure 502, our own 500.
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::BadRequest => 400,
            ErrorKind::MethodNotAllowed => 405,
            ErrorKind::NotFound => 404,
            ErrorKind::Storage(_) | ErrorKind::Internal => 500,
            kind if kind.is_timeout() => 504,
            _ => 502,
        }
    }

    /// "Does not exist": answered 404, remembered for a while, the cue for
    /// `,` to try the next upstream, and a success for the circuit breaker
    /// (the upstream answered).
    pub fn is_not_found(self) -> bool {
        self == ErrorKind::NotFound
    }

    /// Ran out of time (answered 504; opens a circuit breaker at once).
    pub fn is_timeout(self) -> bool {
        matches!(
            self,
            ErrorKind::Timeout(_)
                | ErrorKind::Skipped { timed_out: true }
                | ErrorKind::Vcs { timed_out: true }
        )
    }

    /// Worth another attempt of the same request: connection errors, a
    /// body cut short, 429 and 5xx. Not 404/410, and not a timeout waiting
    /// for headers (that would multiply the wait; the circuit breaker
    /// handles a silent upstream).
    pub fn retryable(self) -> bool {
        match self {
            ErrorKind::Network(_) | ErrorKind::ConnectionClosed => true,
            ErrorKind::Status(status) => status == 429 || status >= 500,
            _ => false,
        }
    }

    /// Worth re-requesting the rest of a body that broke this way (for
    /// files that cannot change): what is retryable, and a body that
    /// stalled (the fetch deadline still bounds it).
    pub fn resumable(self) -> bool {
        self.retryable() || matches!(self, ErrorKind::Timeout(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind, once (the match makes adding a kind without a row here
    /// a compile error).
    fn all() -> Vec<ErrorKind> {
        let steps = [
            Step::Dns,
            Step::TcpConnect,
            Step::TlsHandshake,
            Step::Connect,
            Step::Headers,
            Step::Body,
            Step::Fetch,
        ];
        let mut kinds = vec![
            ErrorKind::BadRequest,
            ErrorKind::MethodNotAllowed,
            ErrorKind::NotFound,
            ErrorKind::ConnectionClosed,
            ErrorKind::InvalidAnswer,
            ErrorKind::Refused,
            ErrorKind::Internal,
        ];
        kinds.extend(steps.iter().map(|s| ErrorKind::Timeout(*s)));
        kinds.extend(steps.iter().map(|s| ErrorKind::Network(*s)));
        kinds.extend([200, 301, 400, 403, 429, 499, 500, 502, 503, 599].map(ErrorKind::Status));
        for timed_out in [false, true] {
            kinds.push(ErrorKind::Skipped { timed_out });
            kinds.push(ErrorKind::Vcs { timed_out });
        }
        kinds.extend(
            [
                SumDbFailure::NoRoute,
                SumDbFailure::Invalid,
                SumDbFailure::Proof,
                SumDbFailure::Fork,
                SumDbFailure::Store,
            ]
            .map(ErrorKind::SumDb),
        );
        kinds.extend(
            [
                Integrity::Checksum,
                Integrity::ZipRules,
                Integrity::NotInSumDb,
                Integrity::Unverifiable,
            ]
            .map(ErrorKind::Integrity),
        );
        kinds.extend(
            [
                StoreOp::Read,
                StoreOp::Write,
                StoreOp::Prepare,
                StoreOp::List,
                StoreOp::Remove,
            ]
            .map(ErrorKind::Storage),
        );
        for kind in &kinds {
            match kind {
                ErrorKind::BadRequest
                | ErrorKind::MethodNotAllowed
                | ErrorKind::NotFound
                | ErrorKind::Timeout(_)
                | ErrorKind::Network(_)
                | ErrorKind::Status(_)
                | ErrorKind::ConnectionClosed
                | ErrorKind::InvalidAnswer
                | ErrorKind::Refused
                | ErrorKind::Skipped { .. }
                | ErrorKind::Vcs { .. }
                | ErrorKind::SumDb(_)
                | ErrorKind::Integrity(_)
                | ErrorKind::Storage(_)
                | ErrorKind::Internal => {}
            }
        }
        kinds
    }

    /// (status, retryable, resumable, not found, timeout) of each kind.
    fn expected(kind: ErrorKind) -> (u16, bool, bool, bool, bool) {
        match kind {
            ErrorKind::BadRequest => (400, false, false, false, false),
            ErrorKind::MethodNotAllowed => (405, false, false, false, false),
            ErrorKind::NotFound => (404, false, false, true, false),
            ErrorKind::Timeout(_) => (504, false, true, false, true),
            ErrorKind::Network(_) | ErrorKind::ConnectionClosed => (502, true, true, false, false),
            ErrorKind::Status(s) if s == 429 || s >= 500 => (502, true, true, false, false),
            ErrorKind::Status(_) => (502, false, false, false, false),
            ErrorKind::Skipped { timed_out } | ErrorKind::Vcs { timed_out } if timed_out => {
                (504, false, false, false, true)
            }
            ErrorKind::Skipped { .. } | ErrorKind::Vcs { .. } => (502, false, false, false, false),
            ErrorKind::InvalidAnswer
            | ErrorKind::Refused
            | ErrorKind::SumDb(_)
            | ErrorKind::Integrity(_) => (502, false, false, false, false),
            ErrorKind::Storage(_) | ErrorKind::Internal => (500, false, false, false, false),
        }
    }

    #[test]
    fn every_kind_has_its_status_and_retry_decision() {
        for kind in all() {
            let got = (
                kind.status(),
                kind.retryable(),
                kind.resumable(),
                kind.is_not_found(),
                kind.is_timeout(),
            );
            assert_eq!(got, expected(kind), "{kind:?}");
        }
    }

    #[test]
    fn only_not_found_is_404_and_timeouts_are_504() {
        for kind in all() {
            assert_eq!(kind.status() == 404, kind.is_not_found(), "{kind:?}");
            assert_eq!(kind.status() == 504, kind.is_timeout(), "{kind:?}");
        }
    }
}
