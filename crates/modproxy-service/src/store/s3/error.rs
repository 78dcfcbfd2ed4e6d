//! Failed requests to the bucket, classified: a missing object, refused
//! credentials, a bucket out of reach (which may come back), or other.

use std::io;
use std::time::Duration;

use crate::store::StoreFailure;

/// A request to the bucket that failed, and what kind of failure it was.
#[derive(Debug)]
pub struct S3Error {
    failure: StoreFailure,
    what: Failed,
}

#[derive(Debug)]
enum Failed {
    /// `object_store`'s error. Its message already includes its causes,
    /// so it is shown whole and not offered as a `source()` as well.
    Request(object_store::Error),
    /// No answer (or no bytes of a body) within the limit: what did not
    /// come, worded to be followed by the limit.
    TimedOut(&'static str, Duration),
}

impl S3Error {
    /// Why it failed: [`StoreFailure::Missing`] only for a missing object;
    /// [`StoreFailure::Unavailable`] when the bucket did not answer or the
    /// connection broke (after `object_store`'s own retries).
    pub fn failure(&self) -> StoreFailure {
        self.failure
    }

    pub(super) fn timed_out(what: &'static str, limit: Duration) -> S3Error {
        S3Error {
            failure: StoreFailure::Unavailable,
            what: Failed::TimedOut(what, limit),
        }
    }
}

impl From<object_store::Error> for S3Error {
    fn from(e: object_store::Error) -> Self {
        S3Error {
            failure: classify(&e),
            what: Failed::Request(e),
        }
    }
}

impl std::fmt::Display for S3Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.what {
            Failed::Request(e) => write!(f, "{e}"),
            Failed::TimedOut(what, limit) => write!(f, "{what} {}s", limit.as_secs()),
        }
    }
}

impl std::error::Error for S3Error {}

/// The kind of an `object_store` failure, from its variant and, for its
/// catch-all `Generic`, the HTTP client's error among its causes (a
/// server's error status after the retries is not exposed: `Other`).
fn classify(e: &object_store::Error) -> StoreFailure {
    match e {
        object_store::Error::NotFound { .. } => StoreFailure::Missing,
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => StoreFailure::Denied,
        object_store::Error::Generic { source, .. } => {
            let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(source.as_ref());
            while let Some(c) = cause {
                if let Some(failure) = network_failure(c) {
                    return failure;
                }
                cause = c.source();
            }
            StoreFailure::Other
        }
        _ => StoreFailure::Other,
    }
}

/// What `e` says about the connection to the bucket, if it is an error of
/// the HTTP client (`object_store`'s own, or reqwest's beneath it: the
/// former is skipped by `source()` where it is wrapped transparently).
fn network_failure(e: &(dyn std::error::Error + 'static)) -> Option<StoreFailure> {
    use object_store::client::{HttpError, HttpErrorKind};
    if let Some(http) = e.downcast_ref::<HttpError>() {
        return Some(match http.kind() {
            HttpErrorKind::Connect
            | HttpErrorKind::Request
            | HttpErrorKind::Timeout
            | HttpErrorKind::Interrupted => StoreFailure::Unavailable,
            _ => StoreFailure::Other,
        });
    }
    let client = e.downcast_ref::<reqwest::Error>()?;
    let broke =
        client.is_connect() || client.is_timeout() || client.is_request() || client.is_body();
    Some(if broke {
        StoreFailure::Unavailable
    } else {
        StoreFailure::Other
    })
}

/// `e` as the I/O error a streamed body fails with (kind kept).
pub(super) fn as_io(e: S3Error) -> io::Error {
    let kind = match e.failure() {
        StoreFailure::Missing => io::ErrorKind::NotFound,
        StoreFailure::Denied => io::ErrorKind::PermissionDenied,
        StoreFailure::Unavailable => io::ErrorKind::TimedOut,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_object_and_a_bucket_out_of_reach_are_told_apart() {
        use object_store::client::{HttpError, HttpErrorKind};
        let missing = object_store::Error::NotFound {
            path: "m/@v/list".into(),
            source: "404".into(),
        };
        assert_eq!(S3Error::from(missing).failure(), StoreFailure::Missing);
        let denied = object_store::Error::PermissionDenied {
            path: "m/@v/list".into(),
            source: "403".into(),
        };
        assert_eq!(S3Error::from(denied).failure(), StoreFailure::Denied);
        for (kind, want) in [
            (HttpErrorKind::Connect, StoreFailure::Unavailable),
            (HttpErrorKind::Timeout, StoreFailure::Unavailable),
            (HttpErrorKind::Interrupted, StoreFailure::Unavailable),
            (HttpErrorKind::Decode, StoreFailure::Other),
        ] {
            let e = object_store::Error::Generic {
                store: "S3",
                source: Box::new(HttpError::new(kind, io::Error::other("reset"))),
            };
            assert_eq!(S3Error::from(e).failure(), want, "{kind:?}");
        }
        let timed_out =
            S3Error::timed_out("no answer from the bucket within", Duration::from_secs(60));
        assert_eq!(timed_out.failure(), StoreFailure::Unavailable);
        assert_eq!(
            timed_out.to_string(),
            "no answer from the bucket within 60s"
        );
    }
}
