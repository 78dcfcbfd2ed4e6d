//! Concurrent requests for a missing file share one upstream fetch.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::{policy, read, request, zip_case, Body, Reply, Setup, VERSION};
use crate::cache::CacheStatus;
use crate::request::{Endpoint, ModuleRequest};
use crate::store::whole::WholeReads;

/// Asks for `request` `n` times at once; every answer's status and body.
async fn at_once(
    setup: &Arc<Setup>,
    request: &ModuleRequest,
    n: usize,
) -> Vec<(CacheStatus, Vec<u8>)> {
    let asking: Vec<_> = (0..n)
        .map(|_| {
            let (setup, request) = (Arc::clone(setup), request.clone());
            tokio::spawn(async move {
                let answer = setup.get(&request).await.map_err(|(_, e)| e).unwrap();
                (answer.status, read(answer).await.unwrap())
            })
        })
        .collect();
    let mut answers = Vec::new();
    for asked in asking {
        answers.push(asked.await.unwrap());
    }
    answers
}

#[tokio::test]
async fn twenty_requests_for_a_missing_mod_make_one_upstream_fetch() {
    let setup = Arc::new(Setup::new(policy()));
    let mod_file = request(Endpoint::Mod(VERSION.into()));
    let key = mod_file.protocol_path();
    let body = b"module example.com/m\n\ngo 1.21\n";
    setup.fake.reply(&key, Reply::Body(Body::new(&body[..])));

    let answers = at_once(&setup, &mod_file, 20).await;

    assert_eq!(setup.fake.fetches(&key), 1);
    for (status, got) in &answers {
        assert_eq!(*status, CacheStatus::Miss);
        assert_eq!(got, body);
    }
    let coalesced = setup.cache.metrics.coalesced.load(Ordering::Relaxed);
    assert_eq!(coalesced, 19);
    setup.settled().await;
    assert_eq!(setup.stored(&key).await.as_deref(), Some(&body[..]));
    // And from now on it is a hit.
    let again = setup.get(&mod_file).await.map_err(|(_, e)| e).unwrap();
    assert_eq!(again.status, CacheStatus::Hit);
    assert_eq!(setup.fake.fetches(&key), 1);
}

#[tokio::test]
async fn a_fetched_mod_is_kept_in_memory_only_within_the_whole_read_budget() {
    let mod_file = request(Endpoint::Mod(VERSION.into()));
    let key = mod_file.protocol_path();
    let body = b"module example.com/m\n\ngo 1.21\n";
    for (budget, kept) in [(1 << 20, true), (body.len() as u64 - 1, false)] {
        let whole = WholeReads::new(budget);
        let setup = Setup::reading_whole(policy(), Duration::from_secs(30), true, whole);
        setup.fake.reply(&key, Reply::Body(Body::new(&body[..])));
        let answer = setup.get(&mod_file).await.map_err(|(_, e)| e).unwrap();
        assert_eq!(read(answer).await.unwrap(), body);
        setup.settled().await;
        assert_eq!(setup.cache.hot.get(&key).is_some(), kept, "budget {budget}");
    }
}

#[tokio::test]
async fn twenty_requests_for_a_missing_zip_make_one_upstream_fetch() {
    let setup = Arc::new(Setup::new(policy()));
    let (zip_file, key, zip) = zip_case(&setup, |body| body.piece = 32 * 1024);

    let answers = at_once(&setup, &zip_file, 20).await;

    assert_eq!(setup.fake.fetches(&key), 1);
    for (status, got) in &answers {
        assert_eq!(*status, CacheStatus::Miss);
        assert!(got[..] == zip[..], "a waiter got {} bytes", got.len());
    }
    setup.settled().await;
    assert!(setup.stored(&key).await.is_some_and(|b| b == zip));
}
