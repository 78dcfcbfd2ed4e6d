//! The relay: when no spool file can be written, a zip the checksum
//! database does not cover still reaches its waiters whole, at the pace
//! of the slowest one (within the stall patience), and is not stored; a
//! relay every waiter left is cancelled.

use std::sync::Arc;
use std::time::Duration;

use super::{noise, policy, read, request, two_waiters, Body, Reply, Setup, VERSION};
use crate::request::{Endpoint, ModuleRequest};

/// A setup without spool files, with `patience` for slow waiters, and a
/// zip of `size` bytes (the relay does not verify it) upstream.
fn relaying(patience: Duration, size: usize) -> (Arc<Setup>, ModuleRequest, Vec<u8>) {
    let setup = Arc::new(Setup::with(policy(), patience, false));
    let zip_file = request(Endpoint::Zip(VERSION.into()));
    let data = noise(size);
    let key = zip_file.protocol_path();
    setup.fake.reply(&key, Reply::Body(Body::new(data.clone())));
    (setup, zip_file, data)
}

#[tokio::test]
async fn without_a_spool_file_a_zip_is_relayed_whole_and_not_stored() {
    let (setup, zip_file, data) = relaying(Duration::from_secs(30), 2 << 20);
    let key = zip_file.protocol_path();

    let [first, second] = two_waiters(&setup, &zip_file, Duration::from_millis(10)).await;

    for got in [first.unwrap(), second.unwrap()] {
        assert!(got == data, "a waiter got {} bytes", got.len());
    }
    assert_eq!(setup.fake.fetches(&key), 1);
    setup.settled().await;
    assert_eq!(setup.stored(&key).await, None);
    assert_eq!(setup.stored(&key.replace(".zip", ".ziphash")).await, None);
}

#[tokio::test]
async fn a_relay_waits_for_its_slowest_waiter() {
    // More pieces than the relay holds (pieces of 128 KiB).
    let (setup, zip_file, data) = relaying(Duration::from_secs(30), 9 << 20);

    let [first, second] = two_waiters(&setup, &zip_file, Duration::from_millis(100)).await;

    for got in [first.unwrap(), second.unwrap()] {
        assert!(got == data, "a waiter got {} bytes", got.len());
    }
    assert_eq!(setup.fake.fetches(&zip_file.protocol_path()), 1);
}

#[tokio::test]
async fn a_waiter_that_stops_reading_falls_behind_alone() {
    let (setup, zip_file, data) = relaying(Duration::from_millis(5), 9 << 20);

    let (stopped, reading) = tokio::join!(setup.get(&zip_file), setup.get(&zip_file));
    let (stopped, reading) = (stopped.ok().unwrap(), reading.ok().unwrap());
    let got = tokio::time::timeout(Duration::from_secs(10), read(reading))
        .await
        .expect("held up by the waiter that stopped")
        .unwrap();

    assert!(got == data, "the reading waiter got {} bytes", got.len());
    let error = read(stopped).await.expect_err("kept the whole zip for it");
    assert!(error.to_string().contains("overrun"), "{error}");
    assert_eq!(setup.fake.fetches(&zip_file.protocol_path()), 1);
}

#[tokio::test]
async fn a_relay_every_waiter_left_is_cancelled() {
    let (setup, zip_file, _) = relaying(Duration::from_secs(30), 8 << 20);
    let key = zip_file.protocol_path();
    let mut body = Body::new(noise(8 << 20));
    body.delay = Duration::from_millis(2);
    setup.fake.reply(&key, Reply::Body(body));

    let answer = setup.get(&zip_file).await.map_err(|(_, e)| e).unwrap();
    let super::super::AnswerBody::Spool(mut reader) = answer.body else {
        panic!("not streamed");
    };
    assert!(reader.next().await.unwrap().is_ok());
    drop(reader);

    // The whole download takes a quarter of a second at least.
    let stopped = async {
        setup.settled().await;
        while setup.fake.abandoned() == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(2), stopped)
        .await
        .expect("the download was not stopped");
    assert_eq!(setup.stored(&key).await, None);
}
