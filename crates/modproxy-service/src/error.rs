//! The errors a request can end in, and the HTTP status each one means.

use std::sync::Arc;

use crate::request::BadPath;
use crate::store::StoreError;
use crate::upstream::UpstreamError;

/// Why a request got no file. Cloneable: one failed fetch answers every waiter.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ServeError {
    /// The path is not a valid protocol request (400).
    #[error(transparent)]
    BadPath(#[from] BadPath),
    /// Known not to exist (404): a remembered not-found or a cached-only miss.
    #[error("{0}")]
    NotFound(String),
    /// The upstream chain did not deliver (404, 502 or 504).
    #[error(transparent)]
    Upstream(Arc<UpstreamError>),
    /// The checksum database could not vouch for it (404 when the database
    /// has no such module version, else 502/504).
    #[error(transparent)]
    SumDb(Arc<crate::sumdb::SumDbError>),
    /// The upstream's bytes failed verification (502): a checksum mismatch
    /// or an invalid zip. Nothing was stored.
    #[error("{0}")]
    Integrity(String),
    /// Our own store failed (500).
    #[error(transparent)]
    Store(Arc<StoreError>),
    /// A local I/O failure outside the store (500), e.g. the spool file.
    #[error("{0}")]
    Internal(String),
    /// Only GET and HEAD are served (405).
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

impl From<crate::sumdb::SumDbError> for ServeError {
    fn from(e: crate::sumdb::SumDbError) -> Self {
        ServeError::SumDb(Arc::new(e))
    }
}

impl ServeError {
    /// The HTTP status this error is answered with. 404 means "does not
    /// exist" and nothing else: it makes the go command try its next proxy.
    pub fn status(&self) -> u16 {
        match self {
            ServeError::BadPath(_) => 400,
            ServeError::NotFound(_) => 404,
            ServeError::Upstream(e) if e.is_not_found() => 404,
            ServeError::Upstream(e) if e.is_timeout() => 504,
            ServeError::Upstream(_) => 502,
            ServeError::SumDb(e) if e.is_not_found() => 404,
            ServeError::SumDb(e) if e.is_timeout() => 504,
            ServeError::SumDb(_) | ServeError::Integrity(_) => 502,
            ServeError::Store(_) | ServeError::Internal(_) => 500,
            ServeError::MethodNotAllowed => 405,
        }
    }

    /// True when this is a "does not exist" answer worth remembering.
    pub fn is_not_found(&self) -> bool {
        self.status() == 404
    }
}
