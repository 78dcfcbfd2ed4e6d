//! Concurrent misses for one object make exactly one upstream request, and
//! every waiter is streamed the same bytes while they arrive.

use std::time::Duration;

use crate::fault::{synthetic_bytes, FaultServer, Synthetic};
use crate::util::{appears, peak_rss, Modproxy, RefProxy, TempDir, REF_SUMDB};

async fn get_all(url: &str, n: usize) -> Vec<(u16, String, bytes::Bytes)> {
    let client = reqwest::Client::new();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let client = client.clone();
            let url = url.to_string();
            tokio::spawn(async move {
                let r = client.get(&url).send().await.unwrap();
                let status = r.status().as_u16();
                let cache = r.headers()["x-cache-status"].to_str().unwrap().to_string();
                (status, cache, r.bytes().await.unwrap())
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(
            tokio::time::timeout(Duration::from_secs(60), t)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_concurrent_requests_for_an_uncached_zip_make_one_upstream_request() {
    let upstream = RefProxy::start();
    let recorder = FaultServer::start(&upstream.url);
    let data = TempDir::new("data");
    let proxy = Modproxy::start(
        data.path(),
        &["--upstream", &recorder.url, "--sumdb", REF_SUMDB],
    );

    let path = "/rsc.io/quote/@v/v1.5.2.zip";
    let results = get_all(&format!("{}{path}", proxy.url), 100).await;
    let reference = reqwest::get(format!("{}{path}", upstream.url))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(!reference.is_empty());
    for (status, _, body) in &results {
        assert_eq!(*status, 200);
        assert_eq!(body, &reference, "a body differs from the upstream's");
    }
    assert_eq!(
        recorder.count(path),
        1,
        "upstream saw the zip requested more than once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn waiters_of_a_slow_zip_share_one_streamed_fetch() {
    let upstream = RefProxy::start();
    let server = FaultServer::start(&upstream.url);
    let path = "/example.com/slow/@v/v1.0.0.zip";
    let file = Synthetic {
        size: 4 << 20,
        seed: 7,
        chunk: 64 << 10,
        delay: Duration::from_millis(15),
        stall_after: None,
        stalls: 0,
        unannounced: false,
    };
    server.add_synthetic(path, file);
    let data = TempDir::new("data");
    let proxy = Modproxy::behind(&server.url, data.path(), &[]);

    let results = get_all(&format!("{}{path}", proxy.url), 100).await;
    let expected = synthetic_bytes(file.seed, file.size);
    let misses = results.iter().filter(|(_, c, _)| c == "MISS").count();
    for (status, _, body) in &results {
        assert_eq!(*status, 200);
        assert!(body[..] == expected[..], "a waiter got different bytes");
    }
    assert_eq!(server.count(path), 1);
    // The fetch takes about a second, so the waiters joined it (MISS), they
    // did not wait for it to finish and then read the store (HIT).
    assert!(misses > 50, "only {misses} of 100 joined the fetch");
    let stored = data.path().join("example.com/slow/@v/v1.0.0.zip");
    assert!(appears(&stored, Duration::from_secs(15)).await);
    let stored = std::fs::read(stored).unwrap();
    assert!(stored == expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_200mb_zip_streams_through_without_being_held_in_memory() {
    let upstream = RefProxy::start();
    let server = FaultServer::start(&upstream.url);
    let path = "/example.com/huge/@v/v1.0.0.zip";
    let file = Synthetic {
        size: 200 << 20,
        seed: 11,
        chunk: 256 << 10,
        delay: Duration::ZERO,
        stall_after: None,
        stalls: 0,
        unannounced: false,
    };
    server.add_synthetic(path, file);
    let data = TempDir::new("data");
    let proxy = Modproxy::behind(&server.url, data.path(), &[]);

    let client = reqwest::Client::new();
    let mut lengths = Vec::new();
    for _ in 0..2 {
        // Read as a stream, so the test itself does not hold 200 MB twice.
        let mut r = client
            .get(format!("{}{path}", proxy.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let mut n = 0u64;
        while let Some(chunk) = r.chunk().await.unwrap() {
            n += chunk.len() as u64;
        }
        lengths.push(n);
    }
    assert_eq!(lengths, vec![file.size, file.size]);
    assert_eq!(server.count(path), 1);
    let rss = peak_rss(proxy.pid());
    assert!(
        rss < 100 << 20,
        "peak RSS {} MiB while serving a 200 MiB zip",
        rss >> 20
    );
}
