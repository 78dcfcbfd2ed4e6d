//! Running it for a team: TLS from certificate files, client tokens.

use std::sync::OnceLock;

use crate::util::{goroot, hello_project, sample, GoEnv, Modproxy, RefProxy, TempDir};

/// A self-signed certificate for 127.0.0.1 made by Go's own generator
/// (once per test run: it compiles), written to a fresh directory:
/// (directory, cert.pem, key.pem).
pub fn self_signed() -> (TempDir, String, String) {
    static PEMS: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    let (cert_pem, key_pem) = PEMS.get_or_init(|| {
        let dir = TempDir::new("tls-gen");
        let generator = goroot().join("src/crypto/tls/generate_cert.go");
        GoEnv::new().ok(
            dir.path(),
            "off",
            &["run", generator.to_str().unwrap(), "--host", "127.0.0.1"],
        );
        let read = |f: &str| std::fs::read(dir.path().join(f)).unwrap();
        (read("cert.pem"), read("key.pem"))
    });
    let dir = TempDir::new("tls");
    let write = |f: &str, pem: &[u8]| {
        let path = dir.path().join(f);
        std::fs::write(&path, pem).unwrap();
        path.to_str().unwrap().to_string()
    };
    let (cert, key) = (write("cert.pem", cert_pem), write("key.pem", key_pem));
    (dir, cert, key)
}

#[test]
fn the_go_command_downloads_over_tls_when_it_trusts_the_certificate() {
    let upstream = RefProxy::start();
    let (_certs, cert, key) = self_signed();
    let data = TempDir::new("data");
    let proxy = Modproxy::verifying(
        &upstream.url,
        data.path(),
        &["--tls-cert", &cert, "--tls-key", &key],
    );
    assert!(proxy.url.starts_with("https://127.0.0.1:"), "{}", proxy.url);

    // Without the certificate the go command refuses the proxy.
    let project = hello_project();
    let untrusting = GoEnv::new().run(project.path(), &proxy.url, &["mod", "tidy"]);
    let text = String::from_utf8_lossy(&untrusting.stderr);
    assert!(
        !untrusting.status.success() && text.contains("certificate"),
        "{text}"
    );

    let go = GoEnv::new().with_env("SSL_CERT_FILE", &cert);
    go.ok(project.path(), &proxy.url, &["mod", "tidy"]);
    go.ok(project.path(), &proxy.url, &["build", "-o", "hello", "."]);
}

#[test]
fn unusable_certificate_files_stop_start_up_with_the_file_named() {
    let (_certs, cert, _key) = self_signed();
    let data = TempDir::new("data");
    let err = Modproxy::try_start(
        data.path(),
        &["--tls-cert", &cert, "--tls-key", "/nonexistent/key.pem"],
    )
    .err()
    .expect("started without its key file");
    assert!(err.contains("cannot read /nonexistent/key.pem"), "{err}");

    let err = Modproxy::try_start(data.path(), &["--tls-cert", &cert])
        .err()
        .expect("started with a certificate and no key");
    assert!(
        err.contains("--tls-cert is set but no private key"),
        "{err}"
    );

    // The certificate given as the key: not a key.
    let err = Modproxy::try_start(data.path(), &["--tls-cert", &cert, "--tls-key", &cert])
        .err()
        .expect("started with a certificate as its key");
    assert!(err.contains("not a usable PEM file"), "{err}");
}

/// GET `url` with an optional `Authorization` value: (status, the
/// `WWW-Authenticate` header, body as text).
fn get(url: &str, authorization: Option<&str>) -> (u16, String, String) {
    let (status, challenge, body) = get_bytes(url, authorization);
    (
        status,
        challenge,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

/// Like [`get`], with the body's bytes.
fn get_bytes(url: &str, authorization: Option<&str>) -> (u16, String, Vec<u8>) {
    let (url, authorization) = (url.to_string(), authorization.map(str::to_string));
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                // The proxy's certificate is the tests' self-signed one.
                let client = reqwest::Client::builder()
                    .danger_accept_invalid_certs(true)
                    .build()
                    .unwrap();
                let mut request = client.get(&url);
                if let Some(value) = authorization {
                    request = request.header("authorization", value);
                }
                let response = request.send().await.unwrap();
                let challenge = response
                    .headers()
                    .get("www-authenticate")
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default();
                let status = response.status().as_u16();
                (status, challenge, response.bytes().await.unwrap().to_vec())
            })
    })
    .join()
    .unwrap()
}

#[test]
fn clients_need_a_token_and_a_scoped_token_gets_403_elsewhere() {
    let upstream = RefProxy::start();
    let data = TempDir::new("data");
    let clients = data.path().join("clients.txt");
    std::fs::write(
        &clients,
        "# name secret patterns\nall all-secret-0123456789\nteam team-secret-0123456789 example.com/team/*\n",
    )
    .unwrap();
    // Over TLS: the go command sends credentials only over https.
    let (_certs, cert, key) = self_signed();
    let proxy = Modproxy::verifying(
        &upstream.url,
        data.path(),
        &[
            "--auth-file",
            clients.to_str().unwrap(),
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
        ],
    );
    let list = format!("{}/rsc.io/quote/@v/list", proxy.url);

    assert_eq!(get(&format!("{}/healthz", proxy.url), None).0, 200);
    let (status, challenge, body) = get(&list, None);
    assert_eq!(
        (status, challenge.as_str()),
        (401, "Basic realm=\"modproxy\""),
        "{body}"
    );
    assert_eq!(get(&list, Some("Bearer wrong-secret-0123456789")).0, 401);
    let (status, _, body) = get(&list, Some("Bearer team-secret-0123456789"));
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("team may not fetch rsc.io/quote"), "{body}");
    assert_eq!(get(&list, Some("Bearer all-secret-0123456789")).0, 200);
    // Metrics and the dashboard are for clients too, and only for those
    // that may fetch every module: they show every module.
    for page in ["/metrics", "/", "/-/api/activity", "/-/api/search?q=rsc"] {
        let url = format!("{}{page}", proxy.url);
        assert_eq!(get(&url, None).0, 401, "{page}");
        let (status, _, body) = get(&url, Some("Bearer team-secret-0123456789"));
        assert_eq!(status, 403, "{page}: {body}");
        assert!(body.contains("team may not see the dashboard"), "{body}");
        assert_eq!(
            get(&url, Some("Bearer all-secret-0123456789")).0,
            200,
            "{page}"
        );
    }

    // The go command with the credentials in GOPROXY (basic auth), checksum
    // database through the proxy included.
    let with = |name: &str, secret: &str| {
        proxy
            .url
            .replacen("https://", &format!("https://{name}:{secret}@"), 1)
    };
    let project = hello_project();
    let go = GoEnv::new().with_env("SSL_CERT_FILE", &cert);
    go.ok(
        project.path(),
        &with("all", "all-secret-0123456789"),
        &["mod", "tidy"],
    );
    let team = GoEnv::new().with_env("SSL_CERT_FILE", &cert).run(
        project.path(),
        &with("team", "team-secret-0123456789"),
        &["mod", "download", "rsc.io/quote@v1.5.2"],
    );
    let text = String::from_utf8_lossy(&team.stderr);
    assert!(!team.status.success() && text.contains("403"), "{text}");
    // A file answered from memory to one client is still refused to one
    // that may not fetch its module.
    let hot = format!("{}/rsc.io/quote/@v/v1.5.2.mod", proxy.url);
    for _ in 0..2 {
        assert_eq!(get(&hot, Some("Bearer all-secret-0123456789")).0, 200);
    }
    let (status, _, body) = get(&hot, Some("Bearer team-secret-0123456789"));
    assert_eq!(status, 403, "{body}");

    // A clients file that cannot be used stops start-up, naming it.
    std::fs::write(&clients, "short secret\n").unwrap();
    let other = TempDir::new("data");
    let err = Modproxy::try_start(other.path(), &["--auth-file", clients.to_str().unwrap()])
        .err()
        .expect("started with a broken clients file");
    assert!(
        err.contains("clients.txt: line 1: the secret of short is shorter"),
        "{err}"
    );
}

#[test]
fn metrics_move_with_real_go_downloads_misses_hits_and_stale_answers() {
    let mut upstream = RefProxy::start();
    let data = TempDir::new("data");
    let config = data.path().join("modproxy.toml");
    std::fs::write(&config, "[cache]\nfresh_for = \"1s\"\n").unwrap();
    let proxy = Modproxy::verifying(
        &upstream.url,
        data.path(),
        &["--config", config.to_str().unwrap()],
    );
    let metrics = || get(&format!("{}/metrics", proxy.url), None).2;
    let upstream_name = upstream.url.trim_start_matches("http://").to_string();
    let upstream_requests =
        format!("modproxy_upstream_requests_total{{upstream=\"{upstream_name}\"}}");

    let project = hello_project();
    GoEnv::new().ok(project.path(), &proxy.url, &["mod", "tidy"]);
    let cold = metrics();
    let misses = sample(&cold, "modproxy_cache_results_total{status=\"MISS\"}");
    assert!(misses >= 6.0, "{cold}");
    assert!(
        sample(
            &cold,
            "modproxy_requests_total{endpoint=\"zip\",status=\"200\"}"
        ) >= 1.0,
        "{cold}"
    );
    assert!(sample(&cold, &upstream_requests) >= misses, "{cold}");
    assert!(
        cold.contains("modproxy_upstream_headers_seconds_bucket{"),
        "{cold}"
    );

    // A second client: hits, no new upstream requests for module files.
    GoEnv::new().ok(project.path(), &proxy.url, &["mod", "download"]);
    let warm = metrics();
    assert!(
        sample(&warm, "modproxy_cache_results_total{status=\"HIT\"}")
            >= sample(&cold, "modproxy_cache_results_total{status=\"HIT\"}") + 3.0,
        "{warm}"
    );
    assert!(
        sample(&warm, "modproxy_served_bytes_total{endpoint=\"zip\"}")
            > sample(&cold, "modproxy_served_bytes_total{endpoint=\"zip\"}"),
        "{warm}"
    );
    // The store's size as counted (at start, then by every write), once
    // the writes have landed (they wait for the end of a burst).
    let counted = |m: &str| {
        sample(m, "modproxy_store_bytes") > 10_000.0 && sample(m, "modproxy_store_objects") >= 9.0
    };
    let landed = crate::util::until(std::time::Duration::from_secs(15), || counted(&metrics()));
    assert!(landed, "{}", metrics());

    // Upstream gone, list no longer fresh: served while a refresh runs
    // (UPDATING), then, the refresh having failed, STALE; errors counted.
    upstream.stop();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let list = format!("{}/rsc.io/quote/@v/list", proxy.url);
    let started = std::time::Instant::now();
    let stale = loop {
        assert_eq!(get(&list, None).0, 200);
        let now = metrics();
        if sample(&now, "modproxy_cache_results_total{status=\"STALE\"}") >= 1.0 {
            break now;
        }
        assert!(started.elapsed().as_secs() < 10, "never STALE:\n{now}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(
        sample(&stale, "modproxy_cache_results_total{status=\"UPDATING\"}") >= 1.0,
        "{stale}"
    );
    assert!(
        sample(
            &stale,
            &format!("modproxy_upstream_errors_total{{upstream=\"{upstream_name}\"}}")
        ) >= 1.0,
        "{stale}"
    );
}

/// Runs `modproxy SUBCOMMAND --data DATA ARGS…`; (success, output).
fn modproxy(subcommand: &str, data: &std::path::Path, args: &[&str]) -> (bool, String) {
    crate::util::run_modproxy(subcommand, data, args, &[])
}

/// Bytes of the objects in a store (its `.tmp/` left out).
fn store_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name() != ".tmp")
        .map(|e| {
            if e.file_type().unwrap().is_dir() {
                store_bytes(&e.path())
            } else {
                e.metadata().unwrap().len()
            }
        })
        .sum()
}

/// Marks every file under `dir` as last used `days` ago.
fn age(dir: &std::path::Path, days: u64) {
    let at = std::time::SystemTime::now() - std::time::Duration::from_secs(days * 86400);
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let f = std::fs::File::open(e.path()).unwrap();
        f.set_times(std::fs::FileTimes::new().set_accessed(at).set_modified(at))
            .unwrap();
    }
}

#[test]
fn gc_brings_the_store_under_budget_while_downloads_are_in_flight() {
    use crate::fault::{synthetic_bytes, FaultServer, Synthetic};
    use std::time::Duration;

    let upstream = RefProxy::start();
    let server = FaultServer::start(&upstream.url);
    let (old, being_read, cold) = (
        "/example.com/old/@v/v1.0.0.zip",
        "/example.com/read/@v/v1.0.0.zip",
        "/example.com/cold/@v/v1.0.0.zip",
    );
    let mb = 1u64 << 20;
    server.add_synthetic(old, Synthetic::fast(2 * mb, 1));
    server.add_synthetic(being_read, Synthetic::fast(2 * mb, 2));
    // The cold one arrives over about 2 s: still in flight during gc.
    let mut slow = Synthetic::fast(2 * mb, 3);
    slow.chunk = 64 << 10;
    slow.delay = Duration::from_millis(60);
    server.add_synthetic(cold, slow);
    let data = TempDir::new("data");
    let proxy = Modproxy::behind(&server.url, data.path(), &[]);
    for path in [old, being_read] {
        assert_eq!(get(&format!("{}{path}", proxy.url), None).0, 200);
        let stored = data.path().join(path.trim_start_matches('/'));
        assert!(crate::util::appears_blocking(
            &stored,
            Duration::from_secs(15)
        ));
    }
    // `old` was last used long ago; `read` a day ago.
    age(&data.path().join("example.com/old/@v"), 30);
    age(&data.path().join("example.com/read/@v"), 1);

    let stored_read = data.path().join("example.com/read/@v/v1.0.0.zip");
    let mut reader = std::fs::File::open(&stored_read).unwrap();
    let cold_url = format!("{}{cold}", proxy.url);
    let in_flight = std::thread::spawn(move || {
        let (status, _, body) = get_bytes(&cold_url, None);
        (status, body)
    });
    std::thread::sleep(Duration::from_millis(300));

    // Budget of 1 MiB: both stored versions go, oldest first, while one
    // is open for reading and another download is under way.
    let (ok, out) = modproxy("gc", data.path(), &["--max-size", "1MiB"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("evicted example.com/old@v1.0.0")
            && out.contains("evicted example.com/read@v1.0.0"),
        "{out}"
    );
    let old_pos = out.find("example.com/old@").unwrap();
    assert!(
        old_pos < out.find("example.com/read@").unwrap(),
        "not oldest first:\n{out}"
    );
    assert!(!stored_read.exists());
    // The open file still reads whole.
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut reader, &mut bytes).unwrap();
    assert!(
        bytes == synthetic_bytes(2, 2 * mb),
        "the evicted file's reader lost bytes"
    );
    // The download in flight completes and is stored.
    let (status, body) = in_flight.join().unwrap();
    assert_eq!(status, 200);
    assert!(
        body == synthetic_bytes(3, 2 * mb),
        "the download in flight was damaged"
    );
    assert!(crate::util::until(Duration::from_secs(10), || {
        crate::util::files_under(data.path())
            .contains(&"example.com/cold/@v/v1.0.0.zip".to_string())
    }));
    let (ok, stats) = modproxy("stats", data.path(), &["--listen", &proxy.addr.to_string()]);
    assert!(
        ok && stats.contains("oldest: example.com/cold@v1.0.0"),
        "{stats}"
    );
    assert!(stats.contains("hit ratio:"), "{stats}");

    // A dry run removes nothing.
    std::thread::sleep(Duration::from_millis(1200));
    let before = store_bytes(data.path());
    let (ok, out) = modproxy("gc", data.path(), &["--older-than", "1s", "--dry-run"]);
    assert!(
        ok && out.contains("would evict example.com/cold@v1.0.0"),
        "{out}"
    );
    assert_eq!(store_bytes(data.path()), before);
}

#[test]
fn serve_with_a_budget_evicts_on_its_own() {
    use crate::fault::{FaultServer, Synthetic};
    let upstream = RefProxy::start();
    let server = FaultServer::start(&upstream.url);
    let data = TempDir::new("data");
    let proxy = Modproxy::behind(&server.url, data.path(), &["--max-size", "3MiB"]);
    for n in 1..=3u64 {
        let path = format!("/example.com/m{n}/@v/v1.0.0.zip");
        server.add_synthetic(&path, Synthetic::fast(1 << 20, n));
        assert_eq!(get(&format!("{}{path}", proxy.url), None).0, 200);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // 3 MiB of zips plus their .info: over budget, the first to go is m1.
    let started = std::time::Instant::now();
    loop {
        let metrics = get(&format!("{}/metrics", proxy.url), None).2;
        if sample(&metrics, "modproxy_evictions_total") >= 1.0 {
            break;
        }
        assert!(started.elapsed().as_secs() < 20, "no eviction:\n{metrics}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(store_bytes(data.path()) <= 3 << 20);
    let stored = crate::util::files_under(data.path());
    assert!(
        !stored.contains(&"example.com/m1/@v/v1.0.0.zip".to_string()),
        "{stored:?}"
    );
    assert!(
        stored.contains(&"example.com/m3/@v/v1.0.0.zip".to_string()),
        "{stored:?}"
    );
}
