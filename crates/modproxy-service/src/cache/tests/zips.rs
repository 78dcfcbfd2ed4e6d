//! Large zips: spooled, streamed to every waiter as they arrive, verified
//! and published; a broken download reaches nobody whole and leaves
//! nothing behind.

use std::sync::Arc;
use std::time::Duration;

use super::{policy, two_waiters, zip_case, Setup};

#[tokio::test]
async fn a_large_zip_reaches_two_waiters_whole_and_is_stored() {
    let setup = Arc::new(Setup::new(policy()));
    let (zip_file, key, zip) = zip_case(&setup, |body| {
        body.piece = 32 * 1024;
        body.delay = Duration::from_millis(1);
    });

    let [first, second] = two_waiters(&setup, &zip_file, Duration::from_millis(10)).await;

    for got in [first.unwrap(), second.unwrap()] {
        assert!(got[..] == zip[..], "a waiter got {} bytes", got.len());
    }
    assert_eq!(setup.fake.fetches(&key), 1);
    setup.settled().await;
    assert!(setup.stored(&key).await.is_some_and(|b| b == zip));
    let hash_key = key.replace(".zip", ".ziphash");
    let h1 = setup.stored(&hash_key).await.expect("its h1: next to it");
    assert!(h1.starts_with(b"h1:"));
    assert_eq!(setup.spool_files(), 0, "the spool file was published");
}

#[tokio::test]
async fn a_zip_whose_body_breaks_midway_fails_its_waiters_and_publishes_nothing() {
    let setup = Arc::new(Setup::new(policy()));
    let (zip_file, key, _) = zip_case(&setup, |body| {
        body.break_at = Some(160 << 10);
    });

    let [first, second] = two_waiters(&setup, &zip_file, Duration::from_millis(10)).await;

    for got in [first, second] {
        let error = got.expect_err("a broken download served whole");
        assert!(error.to_string().contains("stalled"), "{error}");
    }
    setup.settled().await;
    assert_eq!(setup.stored(&key).await, None);
    assert_eq!(setup.stored(&key.replace(".zip", ".ziphash")).await, None);
    assert_eq!(setup.spool_files(), 0, "the spool file was removed");
    assert_eq!(setup.fake.abandoned(), 0);
}
