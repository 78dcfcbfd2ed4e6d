//! Never hang: a silent, stalling, failing or vanished upstream, and a
//! shutdown each turn into a fast answer, never a hang. Every wait
//! here is bounded; timeouts are shortened by configuration so the suite
//! stays quick.

use std::time::{Duration, Instant};

use crate::fault::{synthetic_bytes, FaultServer, Mode, Synthetic};
use crate::util::{
    appears, files_under, hello_project, GoEnv, Modproxy, RefProxy, TempDir, REF_SUMDB, WRITES_LAND,
};

/// Answers with status, X-Cache-Status and body.
pub(crate) async fn get(url: &str) -> (u16, String, String) {
    let r = reqwest::get(url).await.unwrap();
    let status = r.status().as_u16();
    let cache = r
        .headers()
        .get("x-cache-status")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, cache, r.text().await.unwrap_or_default())
}

#[test]
fn a_silent_first_upstream_is_skipped_with_pipe_and_costs_one_timeout() {
    let upstream = RefProxy::start();
    let silent = FaultServer::start(&upstream.url);
    silent.set_mode(Mode::Hang);
    let data = TempDir::new("data");
    let chain = format!("{}|{}", silent.url, upstream.url);
    let proxy = Modproxy::start(
        data.path(),
        &[
            "--upstream",
            &chain,
            "--sumdb",
            REF_SUMDB,
            "--headers-timeout",
            "2s",
        ],
    );
    let project = hello_project();
    let go = GoEnv::new();

    let started = Instant::now();
    go.ok(
        project.path(),
        &proxy.url,
        &["mod", "download", "rsc.io/quote@v1.5.2"],
    );
    let first = started.elapsed();
    assert!(
        first < Duration::from_secs(8),
        "first download took {first:?}"
    );
    assert!(silent.total() >= 1, "the silent upstream was never tried");

    // Within the cool-down the silent upstream is skipped: no timeout paid.
    let tried = silent.total();
    let started = Instant::now();
    go.ok(
        project.path(),
        &proxy.url,
        &["mod", "download", "rsc.io/sampler@v1.3.0"],
    );
    let later = started.elapsed();
    assert_eq!(
        silent.total(),
        tried,
        "the open breaker still sent requests"
    );
    assert!(
        later < Duration::from_secs(2),
        "a later download took {later:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_first_upstream_with_comma_is_a_504_naming_it_not_a_hang() {
    let upstream = RefProxy::start();
    let silent = FaultServer::start(&upstream.url);
    silent.set_mode(Mode::Hang);
    let data = TempDir::new("data");
    let chain = format!("{},{}", silent.url, upstream.url);
    let proxy = Modproxy::start(
        data.path(),
        &[
            "--upstream",
            &chain,
            "--sumdb",
            "off",
            "--headers-timeout",
            "1s",
        ],
    );
    let started = Instant::now();
    let (status, _, body) = get(&format!("{}/rsc.io/quote/@v/list", proxy.url)).await;
    assert!(started.elapsed() < Duration::from_secs(6));
    assert_eq!(status, 504, "{body}");
    let name = silent.url.trim_start_matches("http://");
    assert!(
        body.contains(name) && body.contains("no response headers after 1s"),
        "{body}"
    );

    // The next request is skipped at once, still 504, still naming it.
    let started = Instant::now();
    let (status, _, body) = get(&format!("{}/rsc.io/sampler/@v/list", proxy.url)).await;
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(status, 504, "{body}");
    assert!(body.contains(name) && body.contains("skipped"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_stalling_half_way_is_resumed_and_completed() {
    let upstream = RefProxy::start();
    let server = FaultServer::start(&upstream.url);
    let path = "/example.com/stall/@v/v1.0.0.zip";
    let file = Synthetic {
        stall_after: Some(3 << 20),
        stalls: 1,
        ..Synthetic::fast(6 << 20, 21)
    };
    server.add_synthetic(path, file);
    let data = TempDir::new("data");
    let proxy = Modproxy::behind(&server.url, data.path(), &["--stall-timeout", "1s"]);
    let started = Instant::now();
    let body = reqwest::get(format!("{}{path}", proxy.url))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        body[..] == synthetic_bytes(file.seed, file.size)[..],
        "resumed body differs"
    );
    assert_eq!(
        server.count(path),
        2,
        "expected one stalled and one resumed request"
    );
    let stored = data.path().join("example.com/stall/@v/v1.0.0.zip");
    assert!(appears(&stored, Duration::from_secs(15)).await);
    let stored = std::fs::read(stored).unwrap();
    assert_eq!(stored.len() as u64, file.size);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_that_keeps_stalling_fails_clearly_and_stores_nothing() {
    let upstream = RefProxy::start();
    let server = FaultServer::start(&upstream.url);
    let path = "/example.com/dead/@v/v1.0.0.zip";
    server.add_synthetic(
        path,
        Synthetic {
            stall_after: Some(1 << 20),
            stalls: u32::MAX,
            ..Synthetic::fast(4 << 20, 5)
        },
    );
    let data = TempDir::new("data");
    let proxy = Modproxy::behind(
        &server.url,
        data.path(),
        &["--stall-timeout", "1s", "--retries", "1"],
    );
    let started = Instant::now();
    let response = reqwest::get(format!("{}{path}", proxy.url)).await.unwrap();
    // Headers came at once (the body streams); the body then breaks off.
    assert_eq!(response.status(), 200);
    assert!(
        response.bytes().await.is_err(),
        "a truncated body must not end cleanly"
    );
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(server.count(path), 2);
    tokio::time::sleep(WRITES_LAND).await;
    let stored = files_under(data.path());
    assert!(
        stored.iter().all(|f| !f.ends_with(".zip")),
        "partial zip stored: {stored:?}"
    );
    // A later request for the same zip is a fresh attempt (no poisoned state).
    let (status, _, _) = get(&format!("{}/rsc.io/quote/@v/v1.5.2.mod", proxy.url)).await;
    assert_eq!(status, 200);
}

#[test]
fn a_5xx_burst_shorter_than_the_retry_budget_is_invisible_to_the_client() {
    let upstream = RefProxy::start();
    let flaky = FaultServer::start(&upstream.url);
    let data = TempDir::new("data");
    let proxy = Modproxy::verifying(&flaky.url, data.path(), &["--retries", "2"]);
    let project = hello_project();
    let go = GoEnv::new();
    flaky.set_mode(Mode::Burst {
        status: 503,
        count: 2,
    });
    go.ok(
        project.path(),
        &proxy.url,
        &["mod", "download", "rsc.io/quote@v1.5.2"],
    );
    assert_eq!(
        flaky.count("/rsc.io/quote/@v/v1.5.2.info"),
        3,
        "two 503s, then success"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_upstream_down_after_warm_up_serves_stale_lists_and_hits() {
    let mut upstream = RefProxy::start();
    let data = TempDir::new("data");
    let conf = TempDir::new("conf");
    let config = conf.path().join("modproxy.toml");
    std::fs::write(&config, "[cache]\nfresh_for = \"1s\"\n").unwrap();
    let proxy = Modproxy::verifying(
        &upstream.url,
        data.path(),
        &["--config", config.to_str().unwrap()],
    );
    let project = hello_project();
    let go = GoEnv::new();
    go.ok(project.path(), &proxy.url, &["mod", "tidy"]);
    for file in ["@v/list", "@latest"] {
        assert_eq!(
            get(&format!("{}/rsc.io/quote/{file}", proxy.url)).await.0,
            200
        );
    }

    upstream.stop();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    for file in ["@v/list", "@latest"] {
        let url = format!("{}/rsc.io/quote/{file}", proxy.url);
        let (status, _, _) = get(&url).await; // starts the (failing) refresh
        assert_eq!(status, 200);
        let mut cache = String::new();
        for _ in 0..50 {
            let (status, c, _) = get(&url).await;
            assert_eq!(status, 200);
            cache = c;
            if cache == "STALE" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(cache, "STALE", "{file}");
    }
    for file in ["@v/v1.5.2.info", "@v/v1.5.2.mod", "@v/v1.5.2.zip"] {
        let (status, cache, _) = get(&format!("{}/rsc.io/quote/{file}", proxy.url)).await;
        assert_eq!((status, cache.as_str()), (200, "HIT"), "{file}");
    }
    let offline = GoEnv::new();
    let out = tokio::task::spawn_blocking(move || {
        let dir = project.path().to_path_buf();
        let text = offline.ok(&dir, &proxy.url, &["build", "-o", "hello", "."]);
        drop(project);
        text
    })
    .await
    .unwrap();
    assert!(!out.contains("error"), "{out}");
}

#[test]
fn sigterm_during_twenty_downloads_lets_them_finish_and_exits_zero() {
    let upstream = RefProxy::start();
    let server = FaultServer::start(&upstream.url);
    let mut paths = Vec::new();
    for i in 0..20u64 {
        let path = format!("/example.com/slow{i}/@v/v1.0.0.zip");
        let file = Synthetic {
            chunk: 64 << 10,
            delay: Duration::from_millis(40),
            ..Synthetic::fast(1 << 20, 100 + i)
        };
        server.add_synthetic(&path, file);
        paths.push((path, file));
    }
    let data = TempDir::new("data");
    let mut proxy = Modproxy::behind(&server.url, data.path(), &[]);
    let url = proxy.url.clone();
    let downloads: Vec<_> = paths
        .into_iter()
        .map(|(path, file)| {
            let url = format!("{url}{path}");
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    let body = reqwest::get(&url).await?.bytes().await?;
                    Ok::<_, reqwest::Error>(body[..] == synthetic_bytes(file.seed, file.size)[..])
                })
            })
        })
        .collect();
    // Let every download start, then ask the proxy to stop.
    let started = Instant::now();
    while (0..20).any(|i| server.count(&format!("/example.com/slow{i}/@v/v1.0.0.zip")) == 0) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "downloads did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    proxy.terminate();
    for d in downloads {
        assert_eq!(
            d.join().unwrap().ok(),
            Some(true),
            "a download did not complete intact"
        );
    }
    let status = proxy
        .wait(Duration::from_secs(30))
        .expect("modproxy did not exit");
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_first_upstream_is_hedged_with_pipe() {
    let upstream = RefProxy::start();
    let slow = FaultServer::start(&upstream.url);
    slow.set_mode(Mode::Delay(Duration::from_secs(5)));
    let data = TempDir::new("data");
    let chain = format!("{}|{}", slow.url, upstream.url);
    let proxy = Modproxy::start(
        data.path(),
        &[
            "--upstream",
            &chain,
            "--sumdb",
            "off",
            "--hedge-after",
            "200ms",
        ],
    );
    let started = Instant::now();
    let (status, _, body) = get(&format!("{}/rsc.io/quote/@v/v1.5.2.mod", proxy.url)).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(slow.total(), 1, "the slow upstream was asked first");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_leaving_does_not_cancel_the_fetch_the_store_needs() {
    let upstream = RefProxy::start();
    let server = FaultServer::start(&upstream.url);
    let path = "/example.com/leave/@v/v1.0.0.zip";
    let file = Synthetic {
        chunk: 64 << 10,
        delay: Duration::from_millis(30),
        ..Synthetic::fast(2 << 20, 33)
    };
    server.add_synthetic(path, file);
    let data = TempDir::new("data");
    let proxy = Modproxy::behind(&server.url, data.path(), &[]);
    let mut response = reqwest::get(format!("{}{path}", proxy.url)).await.unwrap();
    assert!(response.chunk().await.unwrap().is_some());
    drop(response);

    let stored = data.path().join("example.com/leave/@v/v1.0.0.zip");
    assert!(
        appears(&stored, Duration::from_secs(15)).await,
        "the fetch was not finished"
    );
    assert!(std::fs::read(&stored).unwrap() == synthetic_bytes(file.seed, file.size));
    assert_eq!((server.count(path), server.aborted()), (1, 0));
    let (status, cache, _) = get(&format!("{}{path}", proxy.url)).await;
    assert_eq!((status, cache.as_str()), (200, "HIT"));
}

#[tokio::test(flavor = "multi_thread")]
async fn network_errors_name_the_step_and_the_wait() {
    let upstream = RefProxy::start();
    let plain_http = FaultServer::start(&upstream.url);
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let data = TempDir::new("data");
    let refused = format!("http://127.0.0.1:{closed}");
    let proxy = Modproxy::start(
        data.path(),
        &["--upstream", &refused, "--sumdb", "off", "--retries", "0"],
    );
    let (status, _, body) = get(&format!("{}/rsc.io/quote/@v/list", proxy.url)).await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body.contains(&format!("127.0.0.1:{closed}")) && body.contains("TCP connect failed after"),
        "{body}"
    );
    drop(proxy);

    // https to a server that speaks plain HTTP: the handshake fails.
    let tls = plain_http.url.replace("http://", "https://");
    let data = TempDir::new("data");
    let proxy = Modproxy::start(
        data.path(),
        &["--upstream", &tls, "--sumdb", "off", "--retries", "0"],
    );
    let (status, _, body) = get(&format!("{}/rsc.io/quote/@v/list", proxy.url)).await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("TLS handshake failed after"), "{body}");
}
