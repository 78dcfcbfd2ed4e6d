//! The errors a request can end in, their kinds (what every decision looks
//! at, see [`kind`]), and how an error is shown to people.
//!
//! Each error shows its cause once: in its own message, or as its
//! `source()`, never both. [`chain`] shows an error with all its causes;
//! it is what HTTP answers, logs and the command line print.

mod kind;

use std::fmt;
use std::sync::Arc;

pub use kind::{ErrorKind, Integrity, Step, StoreOp, SumDbFailure};

use crate::request::BadPath;
use crate::store::StoreError;
use crate::sumdb::SumDbError;
use crate::upstream::UpstreamError;

/// Why a request got no file. Cloneable: one failed fetch answers every waiter.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ServeError {
    /// The path is not a valid protocol request.
    #[error(transparent)]
    BadPath(#[from] BadPath),
    /// Known not to exist: a remembered not-found or a cached-only miss
    /// (the text says which).
    #[error("{0}")]
    NotFound(String),
    /// The upstream chain did not deliver.
    #[error(transparent)]
    Upstream(Arc<UpstreamError>),
    /// The checksum database could not vouch for it.
    #[error(transparent)]
    SumDb(Arc<SumDbError>),
    /// The upstream's bytes failed verification. Nothing was stored.
    #[error(transparent)]
    Integrity(Arc<IntegrityError>),
    /// Our own store failed.
    #[error(transparent)]
    Store(Arc<StoreError>),
    /// Something failed here that is no upstream's doing.
    #[error(transparent)]
    Internal(Internal),
    /// Only GET and HEAD are served.
    #[error("method not allowed: the module proxy protocol uses GET and HEAD only")]
    MethodNotAllowed,
}

impl From<UpstreamError> for ServeError {
    fn from(e: UpstreamError) -> Self {
        ServeError::Upstream(Arc::new(e))
    }
}

impl From<StoreError> for ServeError {
    fn from(e: StoreError) -> Self {
        ServeError::Store(Arc::new(e))
    }
}

impl From<SumDbError> for ServeError {
    fn from(e: SumDbError) -> Self {
        ServeError::SumDb(Arc::new(e))
    }
}

impl From<IntegrityError> for ServeError {
    fn from(e: IntegrityError) -> Self {
        ServeError::Integrity(Arc::new(e))
    }
}

impl From<Internal> for ServeError {
    fn from(e: Internal) -> Self {
        ServeError::Internal(e)
    }
}

impl ServeError {
    /// What failed; decides the HTTP status ([`ErrorKind::status`]) and
    /// whether "not found" is remembered.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ServeError::BadPath(_) => ErrorKind::BadRequest,
            ServeError::NotFound(_) => ErrorKind::NotFound,
            ServeError::Upstream(e) => e.kind(),
            ServeError::SumDb(e) => e.kind(),
            ServeError::Integrity(e) => ErrorKind::Integrity(e.check()),
            ServeError::Store(e) => ErrorKind::Storage(e.op),
            ServeError::Internal(_) => ErrorKind::Internal,
            ServeError::MethodNotAllowed => ErrorKind::MethodNotAllowed,
        }
    }
}

/// Downloaded bytes that failed verification (see `cache::verify`).
#[derive(Debug, thiserror::Error)]
pub enum IntegrityError {
    /// The `h1:` of the `file` (`go.mod` or `zip`) is not the database's.
    #[error(
        "SECURITY ERROR: {module}@{version}: {file} checksum mismatch\n\tdownloaded:   {got}\n\tchecksum db:  {}\nThe upstream served different bytes than the checksum database records; nothing was stored.",
        want.as_deref().unwrap_or("(no hash in the checksum database record)")
    )]
    Mismatch {
        module: String,
        version: String,
        file: &'static str,
        got: String,
        want: Option<String>,
    },
    /// The zip breaks the module zip rules.
    #[error("{module}@{version}: invalid module zip")]
    InvalidZip {
        module: String,
        version: String,
        #[source]
        source: modproxy_module::modzip::ZipError,
    },
    /// The module exists upstream, but the checksum database does not know
    /// it, so it cannot be vouched for.
    #[error("{module}@{version}: not found in checksum database {db}: cannot verify it, so it is not served (if it is private, list it in --private or --nosumdb)")]
    NotInSumDb {
        module: String,
        version: String,
        db: String,
        #[source]
        source: SumDbError,
    },
    /// A zip the database covers that cannot be spooled to be checked.
    #[error("{what}: cannot be verified against the checksum database: the store cannot be written (disk full?), so it is not served")]
    Unverifiable { what: String },
}

impl IntegrityError {
    /// Which verification failed.
    pub fn check(&self) -> Integrity {
        match self {
            IntegrityError::Mismatch { .. } => Integrity::Checksum,
            IntegrityError::InvalidZip { .. } => Integrity::ZipRules,
            IntegrityError::NotInSumDb { .. } => Integrity::NotInSumDb,
            IntegrityError::Unverifiable { .. } => Integrity::Unverifiable,
        }
    }
}

/// A failure of this process rather than of an upstream or the store.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Internal {
    /// The fetch task ended without reporting a result.
    #[error("internal error: fetch ended without an answer")]
    Abandoned,
    /// A blocking task panicked (`panic` says how).
    #[error("internal error: {task} failed: {panic}")]
    Panicked { task: &'static str, panic: String },
    /// A fetch reported the file stored, but the store does not have it.
    #[error("{what}: vanished from the store")]
    Vanished { what: String },
    /// A relayed (uncacheable) download that every client left.
    #[error("{what}: cancelled: not cacheable (store write failed) and every client left")]
    Cancelled { what: String },
}

/// An error and its causes on one line, `what: why: root cause`.
pub struct Chain<'a>(&'a (dyn std::error::Error + 'static));

/// Shows `e` with its causes (each error's `source()`), joined by `: `.
pub fn chain<'a>(e: &'a (dyn std::error::Error + 'static)) -> Chain<'a> {
    Chain(e)
}

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(c) = cause {
            write!(f, ": {c}")?;
            cause = c.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
