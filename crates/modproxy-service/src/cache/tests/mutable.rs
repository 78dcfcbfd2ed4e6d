//! Mutable entries (a version list) past their freshness: UPDATING while
//! a refresh runs, STALE after it failed; "not found" remembered.

use std::time::{Duration, Instant};

use super::{policy, read, request, Body, Reply, Setup, VERSION};
use crate::cache::CacheStatus;
use crate::request::{Endpoint, ModuleRequest};
use crate::sync::Locked;

const OLD: Duration = Duration::from_secs(120);

/// A stored list, older than it may be served without a refresh.
async fn stale_list(setup: &Setup) -> (ModuleRequest, String) {
    let list = request(Endpoint::List);
    let key = list.protocol_path();
    setup.fake.reply(&key, Reply::Body(Body::new("v1.0.0\n")));
    let first = setup.get(&list).await.map_err(|(_, e)| e).unwrap();
    assert_eq!(first.status, CacheStatus::Miss);
    assert_eq!(read(first).await.unwrap(), b"v1.0.0\n");
    setup.settled().await;
    setup.age(&key, OLD);
    (list, key)
}

async fn answer(setup: &Setup, list: &ModuleRequest) -> (CacheStatus, Vec<u8>) {
    let answer = setup.get(list).await.map_err(|(_, e)| e).unwrap();
    (answer.status, read(answer).await.unwrap())
}

#[tokio::test]
async fn a_list_past_its_freshness_is_served_updating_while_it_is_refreshed() {
    let setup = Setup::new(policy());
    let (list, key) = stale_list(&setup).await;
    setup
        .fake
        .reply(&key, Reply::Body(Body::new("v1.0.0\nv1.1.0\n")));

    let (status, body) = answer(&setup, &list).await;
    assert_eq!(status, CacheStatus::Updating);
    assert_eq!(body, b"v1.0.0\n", "the stored copy, while refreshing");

    setup.settled().await;
    assert_eq!(setup.fake.fetches(&key), 2);
    let (status, body) = answer(&setup, &list).await;
    assert_eq!(status, CacheStatus::Hit);
    assert_eq!(body, b"v1.0.0\nv1.1.0\n", "the refreshed copy");
}

#[tokio::test]
async fn a_list_whose_refresh_failed_is_served_stale_without_asking_again() {
    let setup = Setup::new(policy());
    let (list, key) = stale_list(&setup).await;
    setup.fake.reply(&key, Reply::Fail);

    let (status, body) = answer(&setup, &list).await;
    assert_eq!(status, CacheStatus::Updating);
    assert_eq!(body, b"v1.0.0\n");
    setup.settled().await;
    // The refresh's end is noted by a task of its own.
    let noted = Instant::now();
    while !setup.cache.refresh_failed.locked().contains_key(&key) {
        assert!(noted.elapsed() < Duration::from_secs(5), "never noted");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }

    let (status, body) = answer(&setup, &list).await;
    assert_eq!(status, CacheStatus::Stale);
    assert_eq!(body, b"v1.0.0\n");
    setup.settled().await;
    assert_eq!(
        setup.fake.fetches(&key),
        2,
        "no refresh right after a failed one"
    );
}

#[tokio::test]
async fn not_found_is_remembered_for_the_negative_ttl() {
    let mut policy = policy();
    policy.negative_ttl = Duration::from_millis(50);
    let setup = Setup::new(policy);
    let info = request(Endpoint::Info(VERSION.into()));
    let key = info.protocol_path();
    setup.fake.reply(&key, Reply::NotFound);

    let (status, error) = setup.get(&info).await.err().unwrap();
    assert_eq!(status, CacheStatus::Miss);
    assert!(error.kind().is_not_found(), "{error}");
    let remembered = Instant::now();
    let (status, error) = setup.get(&info).await.err().unwrap();
    assert_eq!(status, CacheStatus::Hit);
    assert!(error.kind().is_not_found(), "{error}");
    assert_eq!(setup.fake.fetches(&key), 1);
    assert!(remembered.elapsed() < Duration::from_millis(50));

    tokio::time::sleep(Duration::from_millis(60)).await;
    let (status, _) = setup.get(&info).await.err().unwrap();
    assert_eq!(status, CacheStatus::Miss, "asked again once expired");
    assert_eq!(setup.fake.fetches(&key), 2);
}
