//! `modproxy doctor` against a healthy upstream (the reference proxy), a
//! blackholed one (accepts, never answers) and a refusing port: each is
//! reported for what it is, within its time bounds, and the suggested
//! GOPROXY line keeps only what works.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::fault::{FaultServer, Mode};
use crate::util::{goroot, hello_project, GoEnv, RefProxy, TempDir, REF_SUMDB};

/// Runs `modproxy doctor --json ARGS` with the go command's settings
/// `env` (and `go` on PATH, so `go env -json` is what is read).
fn doctor(env: &[(&str, &str)], args: &[&str]) -> (Output, serde_json::Value, Duration) {
    let home = TempDir::new("doctor-home");
    let path = format!(
        "{}:{}",
        goroot().join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_modproxy"))
        .arg("doctor")
        .arg("--json")
        .args(args)
        .current_dir(home.path())
        .env_clear()
        .env("PATH", path)
        .env("HOME", home.path())
        .env("GOROOT", goroot())
        .env("GOTOOLCHAIN", "local")
        .envs(env.iter().copied())
        .output()
        .expect("run modproxy doctor");
    let took = started.elapsed();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "doctor printed no JSON ({e}):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, json, took)
}

/// The first failing step of the check of `what` on `base`, as
/// (step, verdict); `None` if every step passed.
fn failed_step(report: &serde_json::Value, what: &str, base: &str) -> Option<(String, String)> {
    let check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["what"] == what && c["base"] == base)
        .unwrap_or_else(|| panic!("no {what} check of {base}: {report:#}"));
    check["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["verdict"] != "ok" && s["verdict"] != "skipped")
        .map(|s| {
            (
                s["step"].as_str().unwrap().into(),
                s["verdict"].as_str().unwrap().into(),
            )
        })
}

/// A loopback port nothing listens on.
fn refusing_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}/mod")
}

#[test]
fn healthy_blackholed_and_refusing_upstreams_are_told_apart() {
    let upstream = RefProxy::start();
    let blackhole = FaultServer::start(&upstream.url);
    blackhole.set_mode(Mode::Hang);
    let refusing = refusing_url();
    // A public proxy too (unreachable from the tests' machine, like the
    // other two): GOPRIVATE paths missing from GONOPROXY would go there.
    let goproxy = format!(
        "{},{},https://proxy.golang.org,{}",
        blackhole.url, refusing, upstream.url
    );
    let (out, report, took) = doctor(
        &[
            ("GOPROXY", &goproxy),
            ("GOSUMDB", REF_SUMDB),
            ("GOPRIVATE", "corp.example.com"),
            ("GONOPROXY", "other.example.com"),
        ],
        &["--timeout", "1s", "--module", "rsc.io/quote"],
    );
    assert_eq!(report["environment_source"], "go env -json", "{report:#}");
    assert_eq!(
        failed_step(&report, "proxy", &upstream.url),
        None,
        "{report:#}"
    );
    assert_eq!(
        failed_step(&report, "proxy", &blackhole.url),
        Some(("first byte".into(), "timeout".into())),
        "{report:#}"
    );
    assert_eq!(
        failed_step(&report, "proxy", &refusing),
        Some(("connect".into(), "failed".into())),
        "{report:#}"
    );
    // The checksum database is served by the healthy proxy.
    assert_eq!(
        failed_step(&report, "checksum database via proxy", &upstream.url),
        None,
        "{report:#}"
    );
    // Each step is bounded (1 s) and the checks run together.
    assert!(took < Duration::from_secs(8), "took {took:?}");
    let fix: Vec<&str> = report["fix"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    // GOPROXY and GONOPROXY are set in the environment, where `go env -w`
    // cannot override them: the fix says `export`.
    assert!(
        fix.contains(&format!("export GOPROXY={}", upstream.url).as_str()),
        "{fix:?}"
    );
    assert!(
        fix.contains(&"export GONOPROXY=other.example.com,corp.example.com"),
        "{fix:?}"
    );
    assert_eq!(report["verdict"], "degraded");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_healthy_setup_is_healthy_and_a_dead_one_broken() {
    let upstream = RefProxy::start();
    let (out, report, _) = doctor(
        &[("GOPROXY", &upstream.url), ("GOSUMDB", REF_SUMDB)],
        &["--timeout", "1s", "--module", "rsc.io/quote"],
    );
    assert_eq!(report["verdict"], "healthy", "{report:#}");
    assert_eq!(out.status.code(), Some(0));
    assert!(report["fix"].as_array().unwrap().is_empty(), "{report:#}");

    let (out, report, _) = doctor(
        &[("GOPROXY", &refusing_url()), ("GOSUMDB", REF_SUMDB)],
        &["--timeout", "1s"],
    );
    assert_eq!(report["verdict"], "broken", "{report:#}");
    assert_eq!(out.status.code(), Some(2));
    let messages = report["findings"].to_string();
    assert!(messages.contains("no GOPROXY entry works"), "{messages}");
    assert!(messages.contains("checksum database"), "{messages}");
}

/// Runs `modproxy doctor --no-network --json ARGS` on the module cache
/// `cache`.
fn doctor_cache(cache: &std::path::Path, args: &[&str]) -> (Output, serde_json::Value) {
    let mut all = vec!["--no-network"];
    all.extend_from_slice(args);
    let cache = cache.to_str().unwrap();
    let env = [
        ("GOMODCACHE", cache),
        ("GOFLAGS", ""),
        ("GOPROXY", "off"),
        ("GOSUMDB", REF_SUMDB),
    ];
    let (out, json, _) = doctor(&env, &all);
    (out, json)
}

#[test]
fn a_broken_module_cache_is_named_and_only_the_broken_entries_are_removed() {
    let upstream = RefProxy::start();
    // The module cache as the go command leaves it (read-only files).
    let go = GoEnv::new().with_env("GOFLAGS", "");
    let project = hello_project();
    go.ok(project.path(), &upstream.url, &["mod", "tidy"]);
    go.ok(project.path(), &upstream.url, &["mod", "download", "all"]);
    let cache = go.modcache();
    let (out, report) = doctor_cache(&cache, &[]);
    assert_eq!(out.status.code(), Some(0), "a fresh cache: {report:#}");

    // The damage: a flipped byte in a zip, a changed extracted file, an
    // interrupted extraction and a temporary file.
    let download = cache.join("cache/download");
    let zip = download.join("rsc.io/sampler/@v/v1.3.0.zip");
    make_writable(&zip);
    let mut bytes = std::fs::read(&zip).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&zip, bytes).unwrap();
    let quote_go = cache.join("rsc.io/quote@v1.5.2/quote.go");
    make_writable(&quote_go);
    let mut text = std::fs::read_to_string(&quote_go).unwrap();
    text.push_str("\n// changed\n");
    std::fs::write(&quote_go, text).unwrap();
    let text_version = std::fs::read_dir(download.join("golang.org/x/text/@v"))
        .unwrap()
        .flatten()
        .find_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(".zip").map(str::to_string)
        })
        .expect("x/text was downloaded");
    let partial = download.join(format!("golang.org/x/text/@v/{text_version}.partial"));
    std::fs::write(&partial, "").unwrap();
    let tmp = download.join("rsc.io/quote/@v/v1.5.2.zip123456.tmp");
    std::fs::write(&tmp, "half a zip").unwrap();

    let (out, report) = doctor_cache(&cache, &[]);
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    let findings = report["findings"].to_string();
    for named in [
        "rsc.io/sampler@v1.3.0: its zip",
        "rsc.io/quote@v1.5.2: its extracted files differ",
        &format!("golang.org/x/text@{text_version}: its extraction was interrupted"),
        "v1.5.2.zip123456.tmp",
    ] {
        assert!(findings.contains(named), "{named} not named: {findings}");
    }
    let problems = report["module_cache"]["problems"].as_array().unwrap().len();
    assert_eq!(problems, 4, "{report:#}");

    // --repair removes exactly those; every healthy file stays.
    let before = crate::util::files_under(&cache);
    let (out, report) = doctor_cache(&cache, &["--repair"]);
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    let removed: Vec<std::path::PathBuf> = report["module_cache"]["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| std::path::PathBuf::from(p.as_str().unwrap()))
        .collect();
    let expected = [
        zip.clone(),
        zip.with_extension("ziphash"),
        cache.join("rsc.io/sampler@v1.3.0"),
        cache.join("rsc.io/quote@v1.5.2"),
        partial.clone(),
        cache.join(format!("golang.org/x/text@{text_version}")),
        tmp.clone(),
    ];
    let mut got = removed.clone();
    got.sort();
    let mut want = expected.to_vec();
    want.sort();
    assert_eq!(got, want, "{report:#}");
    let after = crate::util::files_under(&cache);
    let kept: Vec<&String> = before
        .iter()
        .filter(|f| !expected.iter().any(|r| cache.join(f).starts_with(r)))
        .collect();
    assert_eq!(
        after.iter().collect::<Vec<_>>(),
        kept,
        "healthy files changed"
    );

    // The go command downloads what was removed and everything verifies.
    go.ok(project.path(), &upstream.url, &["mod", "download", "all"]);
    go.ok(project.path(), &upstream.url, &["mod", "verify"]);
    go.ok(project.path(), &upstream.url, &["build", "./..."]);
    let (out, report) = doctor_cache(&cache, &[]);
    assert_eq!(out.status.code(), Some(0), "{report:#}");
}

/// Makes a file of the read-only module cache (and its directory)
/// writable, to damage it.
fn make_writable(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    for p in [path.parent().unwrap(), path] {
        let mut perms = std::fs::metadata(p).unwrap().permissions();
        perms.set_mode(perms.mode() | 0o200);
        std::fs::set_permissions(p, perms).unwrap();
    }
}

#[test]
fn the_suggested_goproxy_keeps_the_pipes_the_user_wrote() {
    let upstream = RefProxy::start();
    let goproxy = format!("{}|{}|direct", refusing_url(), upstream.url);
    let (_, report, _) = doctor(
        &[("GOPROXY", &goproxy), ("GOSUMDB", REF_SUMDB)],
        &["--timeout", "1s", "--module", "rsc.io/quote"],
    );
    let fix = report["fix"].to_string();
    assert!(
        fix.contains(&format!("GOPROXY={}|direct", upstream.url)),
        "{fix}"
    );
}

/// A forward HTTP proxy on loopback: `CONNECT host:port` opens a tunnel to
/// `tunnel_to` (whatever host was asked), a plain `GET http://…` is
/// answered from `tunnel_to` too; every request line is logged.
fn connect_proxy(
    tunnel_to: std::net::SocketAddr,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = std::sync::Arc::clone(&log);
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let seen = std::sync::Arc::clone(&seen);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(client.try_clone().unwrap());
                let mut head = Vec::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if line.trim().is_empty() {
                        break;
                    }
                    head.push(line);
                }
                let first = head.first().cloned().unwrap_or_default();
                seen.lock().unwrap().push(first.trim().to_string());
                let Ok(mut server) = std::net::TcpStream::connect(tunnel_to) else {
                    return;
                };
                let mut client = client;
                if first.starts_with("CONNECT ") {
                    let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
                } else {
                    // Origin form for the server behind.
                    let parts: Vec<&str> = first.split_whitespace().collect();
                    let path = parts[1].splitn(4, '/').nth(3).unwrap_or("");
                    let _ = write!(server, "{} /{path} {}\r\n", parts[0], parts[2]);
                    for line in &head[1..] {
                        let _ = server.write_all(line.as_bytes());
                    }
                    let _ = server.write_all(b"\r\n");
                }
                let mut server_read = server.try_clone().unwrap();
                let mut client_write = client.try_clone().unwrap();
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut server_read, &mut client_write);
                });
                let _ = std::io::copy(&mut reader, &mut server);
            });
        }
    });
    (url, log)
}

#[test]
fn the_checks_go_through_https_proxy_as_the_go_command_does() {
    let upstream = RefProxy::start();
    // An https proxy at a name only the tunnel knows, with a certificate
    // for that name that only this test trusts.
    let certs = TempDir::new("doctor-tls");
    GoEnv::new().ok(
        certs.path(),
        "off",
        &[
            "run",
            goroot()
                .join("src/crypto/tls/generate_cert.go")
                .to_str()
                .unwrap(),
            "--host",
            "goproxy.example.test",
        ],
    );
    let (cert, key) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    let data = TempDir::new("doctor-data");
    let https = crate::util::Modproxy::verifying(
        &upstream.url,
        data.path(),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let (proxy, requests) = connect_proxy(https.addr);
    let (out, report, _) = doctor(
        &[
            ("GOPROXY", "https://goproxy.example.test"),
            ("GOSUMDB", "off"),
            ("HTTPS_PROXY", &proxy),
            ("SSL_CERT_FILE", cert.to_str().unwrap()),
        ],
        &["--timeout", "2s", "--module", "rsc.io/quote"],
    );
    let base = "https://goproxy.example.test";
    assert_eq!(failed_step(&report, "proxy", base), None, "{report:#}");
    // The direct route is reported too: the name does not resolve.
    assert_eq!(
        failed_step(&report, "proxy (direct route)", base).map(|s| s.0),
        Some("dns".to_string()),
        "{report:#}"
    );
    let logged = requests.lock().unwrap().clone();
    assert!(
        logged
            .iter()
            .any(|l| l.starts_with("CONNECT goproxy.example.test:443")),
        "{logged:?}"
    );
    // GOSUMDB=off is the only complaint: the proxy works through HTTPS_PROXY.
    assert_eq!(report["verdict"], "degraded", "{report:#}");
    assert_eq!(out.status.code(), Some(1));
}

/// Signs `text` with the reference checksum database's private key (the
/// Go project's test key, read from the toolchain's source).
fn sign_as_reference_db(text: &str) -> Vec<u8> {
    let source = std::fs::read_to_string(goroot().join("src/cmd/go/proxy_test.go")).unwrap();
    let key = source
        .split('"')
        .find(|s| s.starts_with("PRIVATE+KEY+localhost.localdev/sumdb"))
        .expect("the reference database's signer key in proxy_test.go");
    let signer = signed_note::StandardSigner::new(key).unwrap();
    let mut note = signed_note::Note::new(text.as_bytes(), &[]).unwrap();
    note.add_sigs(&[&signer]).unwrap();
    note.to_bytes()
}

#[test]
fn a_forked_checksum_tree_head_and_a_torn_version_list_are_named_and_the_list_removed() {
    use base64::Engine as _;
    let upstream = RefProxy::start();
    let go = GoEnv::new();
    let project = hello_project();
    go.ok(project.path(), &upstream.url, &["mod", "tidy"]);
    let (cache, gopath) = (go.modcache(), go.gopath());

    // A version list torn by an interrupted write: one version short.
    let list = cache.join("cache/download/rsc.io/quote/@v/list");
    let text = std::fs::read_to_string(&list).unwrap();
    assert!(text.contains("v1.5.2"), "{text}");
    std::fs::write(&list, text.replace("v1.5.2\n", "")).unwrap();
    // The go command's tree head, replaced by one of the same size and
    // another root hash, validly signed: what a forked database shows.
    let latest = gopath.join("pkg/sumdb/localhost.localdev/sumdb/latest");
    let head = std::fs::read_to_string(&latest).unwrap();
    let size = head.lines().nth(1).unwrap().to_string();
    let other = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let forged = sign_as_reference_db(&format!("go.sum database tree\n{size}\n{other}\n"));
    std::fs::write(&latest, forged).unwrap();

    let env = |extra: &'static str| {
        vec![
            ("GOPROXY", upstream.url.clone()),
            ("GOSUMDB", REF_SUMDB.to_string()),
            ("GOMODCACHE", cache.to_str().unwrap().to_string()),
            ("GOPATH", gopath.to_str().unwrap().to_string()),
            ("GOFLAGS", extra.to_string()),
        ]
    };
    let owned = env("-modcacherw");
    let vars: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let args = ["--timeout", "2s", "--module", "rsc.io/quote"];
    let (out, report, _) = doctor(&vars, &args);
    let findings = report["findings"].to_string();
    for named in [
        "rsc.io/quote: its version list does not match the .mod files beside it: v1.5.2 missing",
        "is not the one",
    ] {
        assert!(findings.contains(named), "{named} not named: {findings}");
    }
    assert_eq!(out.status.code(), Some(1), "{report:#}");

    // --repair removes the torn list, but not the tree head: which of the
    // two heads is the fork cannot be told here, and the go command's own
    // head is what lets it notice one. It stays named.
    let mut repair = args.to_vec();
    repair.push("--repair");
    let (out, report, _) = doctor(&vars, &repair);
    assert!(!list.exists() && latest.exists(), "{report:#}");
    assert!(
        report["findings"].to_string().contains("is not the one"),
        "{report:#}"
    );
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    // Once the operator has put the real head back, the go command writes
    // the list again and everything is healthy.
    std::fs::write(&latest, head).unwrap();
    go.ok(
        project.path(),
        &upstream.url,
        &["mod", "download", "rsc.io/quote@v1.5.1"],
    );
    assert!(list.exists());
    let (out, report, _) = doctor(&vars, &args);
    assert_eq!(out.status.code(), Some(0), "{report:#}");
}
