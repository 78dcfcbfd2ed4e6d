//! Large zips: spooled, streamed to every waiter as they arrive, verified
//! and published; a broken download reaches nobody whole and leaves
//! nothing behind.

use std::sync::Arc;
use std::time::Duration;

use super::{policy, two_waiters, zip_case, zip_case_of, Setup};

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

#[tokio::test]
async fn a_large_zip_takes_the_spool_file_made_ahead_and_the_next_is_made() {
    let setup = Arc::new(Setup::new(policy()));
    assert_eq!(setup.cache.spools.spare(), None, "none before a download");
    let (first, _, _) = zip_case_of(&setup, "v1.0.0", |_| {});
    let [got, _] = two_waiters(&setup, &first, Duration::ZERO).await;
    got.unwrap();
    setup.settled().await;
    let spare = setup.cache.spools.spare().expect("a spool file made ahead");
    assert!(spare.is_file());

    let (second, key, zip) = zip_case_of(&setup, "v1.1.0", |_| {});
    let [got, _] = two_waiters(&setup, &second, Duration::ZERO).await;
    assert!(got.unwrap() == zip[..]);
    setup.settled().await;
    // It was published under the zip's name, and another one waits.
    assert!(!spare.exists());
    assert!(setup.stored(&key).await.is_some_and(|b| b == zip));
    let next = setup.cache.spools.spare().expect("the next one");
    assert_ne!(next, spare);
    assert!(next.is_file());
    assert_eq!(setup.spool_files(), 0);
}
