//! Decisions follow the kind, not the words; each cause is shown once.

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::store::{StoreCause, StoreError};
use crate::upstream::UpstreamError;

fn upstream(e: UpstreamError) -> ServeError {
    ServeError::Upstream(Arc::new(e))
}

fn status(e: &ServeError) -> u16 {
    e.kind().status()
}

/// No error in `e`'s chain ends its message with its source's.
fn assert_each_cause_once(e: &(dyn Error + 'static)) {
    let mut current: &(dyn Error + 'static) = e;
    while let Some(source) = current.source() {
        let (text, cause) = (current.to_string(), source.to_string());
        assert!(
            !text.ends_with(&cause),
            "{text:?} repeats its source {cause:?}"
        );
        current = source;
    }
}

#[test]
fn serve_errors_answer_with_their_kinds_status() {
    let not_found = || UpstreamError::NotFound {
        upstream: "a".into(),
        message: "gone".into(),
    };
    let io = || std::io::Error::new(std::io::ErrorKind::StorageFull, "No space left on device");
    let cases: Vec<(ServeError, u16)> = vec![
        (
            ServeError::BadPath(crate::request::BadPath::TooLong(9)),
            400,
        ),
        (ServeError::NotFound("remembered".into()), 404),
        (ServeError::MethodNotAllowed, 405),
        (upstream(not_found()), 404),
        (upstream(UpstreamError::Off), 404),
        (upstream(UpstreamError::NoneHas(vec![not_found()])), 404),
        (
            upstream(UpstreamError::Timeout {
                upstream: "a".into(),
                step: Step::Headers,
                after: Duration::from_secs(1),
            }),
            504,
        ),
        (
            upstream(UpstreamError::Skipped {
                upstream: "a".into(),
                retry_in: Duration::from_secs(3),
                last_error: "upstream a: no response headers after 1s".into(),
                timed_out: true,
            }),
            504,
        ),
        (
            upstream(UpstreamError::Skipped {
                upstream: "a".into(),
                retry_in: Duration::from_secs(3),
                last_error: "upstream a: HTTP 503: down".into(),
                timed_out: false,
            }),
            502,
        ),
        (
            upstream(UpstreamError::Vcs {
                message: "git ls-remote killed after 2s".into(),
                timed_out: true,
            }),
            504,
        ),
        (
            upstream(UpstreamError::Status {
                upstream: "a".into(),
                status: 503,
                message: "down".into(),
            }),
            502,
        ),
        (
            ServeError::SumDb(Arc::new(crate::sumdb::SumDbError::Upstream {
                db: "sum.golang.org".into(),
                source: not_found(),
            })),
            404,
        ),
        (
            ServeError::SumDb(Arc::new(crate::sumdb::SumDbError::Store(StoreError::new(
                StoreOp::Read,
                "sumdb/x/latest",
                io(),
            )))),
            502,
        ),
        (
            IntegrityError::Unverifiable {
                what: "m@v1.0.0.zip".into(),
            }
            .into(),
            502,
        ),
        (
            StoreError::new(StoreOp::Write, "m/@v/list", io()).into(),
            500,
        ),
        (Internal::Abandoned.into(), 500),
    ];
    for (e, want) in cases {
        assert_eq!(status(&e), want, "{}", chain(&e));
    }
}

#[test]
fn a_reworded_message_changes_no_decision() {
    // The text that once turned retries on: now only the kind does.
    let invalid = UpstreamError::Invalid {
        upstream: "a".into(),
        what: "body".into(),
        reason: "connection closed before the end of the body".into(),
    };
    assert_eq!(invalid.kind(), ErrorKind::InvalidAnswer);
    assert!(!invalid.kind().retryable());
    let closed = UpstreamError::ConnectionClosed {
        upstream: "a".into(),
        received: 10,
        expected: 20,
    };
    assert!(closed.kind().retryable() && closed.kind().resumable());

    // Whatever an upstream's answer says, its status decides.
    let says = |status, message: &str| UpstreamError::Status {
        upstream: "a".into(),
        status,
        message: message.into(),
    };
    for message in ["not found", "404 Not Found", "timeout", ""] {
        assert_eq!(status(&upstream(says(500, message))), 502);
        assert!(says(500, message).kind().retryable());
        assert!(!says(403, message).kind().retryable());
        let not_found = UpstreamError::NotFound {
            upstream: "a".into(),
            message: format!("HTTP 503: {message}"),
        };
        assert_eq!(status(&upstream(not_found)), 404);
    }
    let reworded = |message: &str| UpstreamError::Vcs {
        message: message.into(),
        timed_out: false,
    };
    assert_eq!(status(&upstream(reworded("killed after 2s"))), 502);
}

#[test]
fn each_cause_shows_once_in_the_chain() {
    let io = std::io::Error::new(std::io::ErrorKind::StorageFull, "No space left on device");
    let store = StoreError::new(StoreOp::Write, "rsc.io/quote/@v/list", io);
    assert_each_cause_once(&store);
    assert_eq!(
        chain(&store).to_string(),
        "store: cannot write rsc.io/quote/@v/list: No space left on device"
    );
    assert!(matches!(store.cause, StoreCause::Io(_)));

    let sumdb = crate::sumdb::SumDbError::Upstream {
        db: "sum.golang.org".into(),
        source: UpstreamError::NotFound {
            upstream: "proxy.example".into(),
            message: "no such version".into(),
        },
    };
    let integrity: ServeError = IntegrityError::NotInSumDb {
        module: "example.com/m".into(),
        version: "v1.0.0".into(),
        db: "sum.golang.org".into(),
        source: sumdb,
    }
    .into();
    assert_each_cause_once(&integrity);
    assert_eq!(
        chain(&integrity).to_string(),
        "example.com/m@v1.0.0: not found in checksum database sum.golang.org: cannot verify it, so it is not served (if it is private, list it in --private or --nosumdb): checksum database sum.golang.org: upstream proxy.example: not found: no such version"
    );
    assert_eq!(
        integrity.kind(),
        ErrorKind::Integrity(Integrity::NotInSumDb)
    );
}

#[tokio::test]
async fn a_refused_connection_names_its_step_and_cause_once() {
    // Nothing listens on port 1 of the loopback address.
    let sent = reqwest::Client::new()
        .get("http://127.0.0.1:1/m/@v/list")
        .send()
        .await;
    let Err(e) = sent else {
        return; // something does listen there: nothing to test
    };
    let policy = crate::settings::UpstreamPolicy::for_tests();
    let after = Duration::from_millis(1);
    let err = crate::upstream::network_error("127.0.0.1:1", e, after, false, &policy);
    assert_eq!(err.kind(), ErrorKind::Network(Step::TcpConnect));
    assert!(err.kind().retryable());
    assert_each_cause_once(&err);
    let text = chain(&err).to_string();
    assert!(
        text.starts_with("upstream 127.0.0.1:1: TCP connect failed after "),
        "{text}"
    );
    assert!(text.contains("tcp connect error: "), "{text}");
}
