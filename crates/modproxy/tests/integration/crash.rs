//! A crash (SIGKILL) in the middle of a download leaves nothing partial
//! visible, and the next start cleans up and fetches again.

use std::time::{Duration, Instant};

use crate::fault::{synthetic_bytes, FaultServer, Synthetic};
use crate::util::{appears, files_under, Modproxy, RefProxy, TempDir};

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_download_leaves_no_partial_object() {
    let upstream = RefProxy::start();
    let server = FaultServer::start(&upstream.url);
    let path = "/example.com/big/@v/v1.0.0.zip";
    let stalling = Synthetic {
        size: 64 << 20,
        seed: 3,
        chunk: 256 << 10,
        delay: Duration::ZERO,
        stall_after: Some(16 << 20),
        stalls: u32::MAX,
        unannounced: false,
    };
    server.add_synthetic(path, stalling);
    let data = TempDir::new("data");
    let mut proxy = Modproxy::behind(&server.url, data.path(), &[]);

    // A client starts the download and receives part of it.
    let mut response = reqwest::get(format!("{}{path}", proxy.url)).await.unwrap();
    assert_eq!(response.status(), 200);
    let mut received = 0usize;
    let started = Instant::now();
    while received < 8 << 20 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "download did not start"
        );
        received += response
            .chunk()
            .await
            .unwrap()
            .expect("body continues")
            .len();
    }
    proxy.kill();
    drop(response);

    let stored = files_under(data.path());
    assert!(
        !stored.iter().any(|f| f == "example.com/big/@v/v1.0.0.zip"),
        "partial zip visible after the crash: {stored:?}"
    );

    // The next start removes the leftovers and fetches the whole zip again.
    server.add_synthetic(
        path,
        Synthetic {
            stall_after: None,
            stalls: 0,
            ..stalling
        },
    );
    let proxy = Modproxy::behind(&server.url, data.path(), &[]);
    assert_eq!(
        files_under(data.path()),
        Vec::<String>::new(),
        "leftovers after restart"
    );
    let body = reqwest::get(format!("{}{path}", proxy.url))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(body[..] == synthetic_bytes(stalling.seed, stalling.size)[..]);
    assert_eq!(server.count(path), 2);
    let published = data.path().join("example.com/big/@v/v1.0.0.zip");
    assert!(appears(&published, Duration::from_secs(15)).await);
    let published = std::fs::read(published).unwrap();
    assert_eq!(published.len() as u64, stalling.size);
}
