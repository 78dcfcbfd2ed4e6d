//! The GOPROXY protocol as served: status codes, headers, fall-through of
//! the upstream list, malformed paths, mutable entries and negative caching.

use std::time::Duration;

use crate::fault::{FaultServer, Mode};
use crate::util::{files_under, Modproxy, RefProxy, TempDir, REF_SUMDB};

struct Got {
    status: u16,
    cache: String,
    body: String,
    headers: reqwest::header::HeaderMap,
}

async fn get(url: &str) -> Got {
    let r = reqwest::get(url).await.unwrap();
    let headers = r.headers().clone();
    Got {
        status: r.status().as_u16(),
        cache: headers
            .get("x-cache-status")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default(),
        body: r.text().await.unwrap(),
        headers,
    }
}

fn config_file(dir: &TempDir, text: &str) -> String {
    let path = dir.path().join("modproxy.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn files_headers_and_head() {
    let upstream = RefProxy::start();
    let data = TempDir::new("data");
    let proxy = Modproxy::start(
        data.path(),
        &["--upstream", &upstream.url, "--sumdb", REF_SUMDB],
    );

    let list = get(&format!("{}/rsc.io/quote/@v/list", proxy.url)).await;
    assert_eq!((list.status, list.cache.as_str()), (200, "MISS"));
    assert!(list.body.lines().any(|l| l == "v1.5.2"), "{}", list.body);
    assert!(list.headers.contains_key("x-request-id"));

    let info = get(&format!("{}/rsc.io/quote/@v/v1.5.2.info", proxy.url)).await;
    assert_eq!(info.status, 200);
    assert!(info.body.contains("\"Version\":\"v1.5.2\""));
    let again = get(&format!("{}/rsc.io/quote/@v/v1.5.2.info", proxy.url)).await;
    assert_eq!((again.cache.as_str(), again.body), ("HIT", info.body));
    assert_ne!(again.headers["x-request-id"], info.headers["x-request-id"]);

    let latest = get(&format!("{}/rsc.io/quote/@latest", proxy.url)).await;
    assert_eq!(latest.status, 200);
    assert!(latest.body.contains("\"Version\""));

    let module = get(&format!("{}/rsc.io/quote/@v/v1.5.2.mod", proxy.url)).await;
    assert_eq!(module.body.lines().next(), Some("module \"rsc.io/quote\""));

    // Case encoding: rsc.io/QUOTE is asked for, stored and served escaped.
    let escaped = get(&format!("{}/rsc.io/!q!u!o!t!e/@v/list", proxy.url)).await;
    assert_eq!(escaped.status, 200, "{}", escaped.body);

    let head = reqwest::Client::new()
        .head(format!("{}/rsc.io/quote/@v/v1.5.2.zip", proxy.url))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert!(
        head.content_length().unwrap_or(0) > 0 || head.headers().contains_key("content-length")
    );
    assert!(head.bytes().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn comma_falls_through_on_not_found_only_and_pipe_on_any_error() {
    let upstream = RefProxy::start();
    let broken = FaultServer::start(&upstream.url);
    let data = TempDir::new("data");
    let path = "/rsc.io/quote/@v/v1.5.2.mod";

    // A failing first upstream stops a `,` list with 502 naming it.
    broken.set_mode(Mode::Status(500));
    let comma = Modproxy::start(
        data.path(),
        &[
            "--upstream",
            &format!("{},{}", broken.url, upstream.url),
            "--sumdb",
            "off",
        ],
    );
    let got = get(&format!("{}{path}", comma.url)).await;
    assert_eq!(got.status, 502, "{}", got.body);
    let name = broken.url.trim_start_matches("http://");
    assert!(
        got.body.contains(name) && got.body.contains("500"),
        "{}",
        got.body
    );
    drop(comma);

    // `|` goes on to the next upstream.
    let pipe_data = TempDir::new("data");
    let pipe = Modproxy::start(
        pipe_data.path(),
        &[
            "--upstream",
            &format!("{}|{}", broken.url, upstream.url),
            "--sumdb",
            "off",
        ],
    );
    assert_eq!(get(&format!("{}{path}", pipe.url)).await.status, 200);

    // A 404 from the first upstream falls through a `,` list.
    broken.set_mode(Mode::Status(404));
    let nf_data = TempDir::new("data");
    let not_found_first = Modproxy::start(
        nf_data.path(),
        &[
            "--upstream",
            &format!("{},{}", broken.url, upstream.url),
            "--sumdb",
            "off",
        ],
    );
    assert_eq!(
        get(&format!("{}{path}", not_found_first.url)).await.status,
        200
    );

    // A module that exists nowhere is a 404 whose text says so.
    let missing = get(&format!(
        "{}/example.com/no/such/module/@v/list",
        not_found_first.url
    ))
    .await;
    assert_eq!(missing.status, 404, "{}", missing.body);
    assert!(missing.body.contains("not found"), "{}", missing.body);

    // `off`: nothing is looked up.
    let off_data = TempDir::new("data");
    let off = Modproxy::start(off_data.path(), &["--upstream", "off", "--sumdb", "off"]);
    let got = get(&format!("{}{path}", off.url)).await;
    assert_eq!(got.status, 404);
    assert!(got.body.contains("off"), "{}", got.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_upstream_is_a_504_naming_the_step() {
    let upstream = RefProxy::start();
    let silent = FaultServer::start(&upstream.url);
    silent.set_mode(Mode::Hang);
    let dir = TempDir::new("conf");
    let config = config_file(&dir, "[upstream]\nheaders_timeout = \"1s\"\n");
    let data = TempDir::new("data");
    let proxy = Modproxy::behind(&silent.url, data.path(), &["--config", &config]);
    let started = std::time::Instant::now();
    let got = get(&format!("{}/rsc.io/quote/@v/list", proxy.url)).await;
    assert_eq!(got.status, 504, "{}", got.body);
    assert!(
        got.body.contains("no response headers after 1s"),
        "{}",
        got.body
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_paths_are_400_and_touch_nothing() {
    let upstream = RefProxy::start();
    let recorder = FaultServer::start(&upstream.url);
    let data = TempDir::new("data");
    let proxy = Modproxy::start(
        data.path(),
        &["--upstream", &recorder.url, "--sumdb", "off"],
    );
    let base = proxy.addr;
    // Longer than a file system takes: one name, and a whole path.
    let long_element = format!("/example.com/{}/@v/list", "a".repeat(300));
    let long_path = format!("/example.com{}/@v/list", "/abcdefgh".repeat(500));
    for path in [
        long_element.as_str(),
        long_path.as_str(),
        "/rsc.io/../../../etc/passwd/@v/list",
        "/%2e%2e/%2e%2e/etc/@v/list",
        "/rsc.io/quote/@v/..%2f..%2f..%2fescape.info",
        "/github.com/BurntSushi/toml/@v/list",
        "/rsc.io/qu!Ote/@v/list",
        "/rsc.io/quote/@v/v1.0.0.tar",
        "/rsc.io/quote/@v/master.zip",
        "/rsc.io/quote/@v/bad%zzescape.info",
    ] {
        // reqwest would normalize `..`; send the raw request line.
        let (status, body) = raw_get(base, path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(
            body.len() > 10 && !body.contains('<'),
            "{path}: unhelpful body {body:?}"
        );
    }
    assert_eq!(recorder.total(), 0, "a malformed path reached the upstream");
    assert_eq!(files_under(data.path()), Vec::<String>::new());
}

/// A GET with the path exactly as given.
async fn raw_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn non_canonical_queries_resolve_through_the_upstream() {
    let upstream = RefProxy::start();
    let server = FaultServer::start(&upstream.url);
    let info = r#"{"Version":"v1.2.0","Time":"2024-01-01T00:00:00Z"}"#;
    server.add_static("/example.com/q/@v/master.info", info);
    let data = TempDir::new("data");
    let proxy = Modproxy::behind(&server.url, data.path(), &[]);
    let got = get(&format!("{}/example.com/q/@v/master.info", proxy.url)).await;
    assert_eq!((got.status, got.body.as_str()), (200, info));
    // The canonical .info was stored too, so asking for it is a hit.
    let canonical = get(&format!("{}/example.com/q/@v/v1.2.0.info", proxy.url)).await;
    assert_eq!((canonical.status, canonical.cache.as_str()), (200, "HIT"));
    assert_eq!(server.count("/example.com/q/@v/v1.2.0.info"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_are_refreshed_and_served_stale_when_upstreams_fail() {
    let upstream = RefProxy::start();
    let server = FaultServer::start(&upstream.url);
    let dir = TempDir::new("conf");
    let config = config_file(&dir, "[cache]\nfresh_for = \"1s\"\nnegative_ttl = \"1m\"\n");
    let data = TempDir::new("data");
    let proxy = Modproxy::behind(&server.url, data.path(), &["--config", &config]);
    let url = format!("{}/rsc.io/quote/@v/list", proxy.url);
    let first = get(&url).await;
    assert_eq!((first.status, first.cache.as_str()), (200, "MISS"));
    // Stored just after the answer; until then it is answered from memory.
    let stored = data.path().join("rsc.io/quote/@v/list");
    assert!(crate::util::appears(&stored, Duration::from_secs(15)).await);
    assert_eq!(get(&url).await.cache, "HIT");
    assert_eq!(server.count("/rsc.io/quote/@v/list"), 1);

    // Stale, upstream healthy: served at once while it refreshes.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let updating = get(&url).await;
    assert_eq!(
        (updating.cache.as_str(), updating.body.as_str()),
        ("UPDATING", first.body.as_str())
    );
    wait_for(|| server.count("/rsc.io/quote/@v/list") == 2).await;

    // Stale again, upstream down: the refresh fails (after its retries) and
    // the copy is served STALE from then on.
    server.set_mode(Mode::Status(503));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let mut stale = get(&url).await;
    for _ in 0..100 {
        if stale.cache == "STALE" {
            break;
        }
        assert_eq!((stale.status, stale.cache.as_str()), (200, "UPDATING"));
        tokio::time::sleep(Duration::from_millis(50)).await;
        stale = get(&url).await;
    }
    assert_eq!((stale.status, stale.cache.as_str()), (200, "STALE"));
    assert_eq!(stale.body, first.body);
    assert!(stale.headers.contains_key("warning"));
}

#[tokio::test(flavor = "multi_thread")]
async fn not_found_is_remembered_briefly() {
    let upstream = RefProxy::start();
    let server = FaultServer::start(&upstream.url);
    let data = TempDir::new("data");
    let proxy = Modproxy::behind(&server.url, data.path(), &[]);
    let url = format!("{}/example.com/missing/@v/list", proxy.url);
    let first = get(&url).await;
    let second = get(&url).await;
    assert_eq!((first.status, first.cache.as_str()), (404, "MISS"));
    assert_eq!((second.status, second.cache.as_str()), (404, "HIT"));
    assert_eq!(server.count("/example.com/missing/@v/list"), 1);
}

async fn wait_for(cond: impl Fn() -> bool) {
    for _ in 0..100 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition not met within 5s");
}
