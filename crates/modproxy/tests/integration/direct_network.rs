//! `direct` against the network's failure modes: a hung git server,
//! repositories that do not exist or need credentials, and module paths
//! resolved through `?go-get=1` pages (of kind git and mod).

use std::io::Read;
use std::time::{Duration, Instant};

use crate::direct::{assert_as_direct, direct_proxy, download, go_env, Repos};
use crate::util::{get_status, modproxy_command, Modproxy, TempDir};

#[test]
fn a_hung_git_server_is_killed_at_the_timeout() {
    let repos = Repos::new();
    // Accepts connections and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        let mut kept = Vec::new();
        listener.set_nonblocking(true).unwrap();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if let Ok((s, _)) = listener.accept() {
                kept.push(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let url = format!("http://127.0.0.1:{port}/hung.git");
    repos.map("https://github.com/acme/hung", &url);
    let data = TempDir::new("data");
    let proxy = direct_proxy(&repos, data.path(), &["--git-timeout", "2s"]);
    let started = Instant::now();
    let response = get_status(&format!("{}/github.com/acme/hung/@v/list", proxy.url));
    let took = started.elapsed();
    assert_eq!(response.0, 504, "{}", response.1);
    assert!(response.1.contains("killed after 2s"), "{}", response.1);
    assert!(took < Duration::from_secs(10), "took {took:?}");
    // No git process is left talking to it.
    let needle = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left: Vec<String> = processes_mentioning(&needle);
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "still running: {left:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(proxy);
    drop(held);
}

/// Command lines of running processes that contain `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let mut cmdline = String::new();
        if let Ok(mut f) = std::fs::File::open(entry.path().join("cmdline")) {
            let _ = f.read_to_string(&mut cmdline);
        }
        let cmdline = cmdline.replace('\0', " ");
        if cmdline.contains(needle) {
            found.push(cmdline);
        }
    }
    found
}

/// An HTTP proxy stand-in that answers `?go-get=1` requests itself with
/// the go-import tag of `tags` whose prefix the requested path starts
/// with, and refuses `CONNECT` (so https fails and insecure paths fall back
/// to http, as with a host that has no TLS). Serves for at most 60 s.
fn go_get_server(tags: Vec<(String, String)>) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            let Ok((stream, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            stream.set_nonblocking(false).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 2 {
                line.clear();
            }
            let mut stream = stream;
            let target = first.split_whitespace().nth(1).unwrap_or("").to_string();
            if first.starts_with("CONNECT") {
                let _ = stream.write_all(
                    b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                continue;
            }
            let path = target
                .trim_start_matches("http://")
                .split('?')
                .next()
                .unwrap_or("")
                .to_string();
            let body = match tags.iter().find(|(prefix, _)| path.starts_with(prefix.as_str())) {
                Some((prefix, rest)) => format!(
                    "<!DOCTYPE html><html><head><meta name=\"go-import\" content=\"{prefix} {rest}\"></head><body>hi</body></html>"
                ),
                None => String::new(),
            };
            let status = if body.is_empty() {
                "404 Not Found"
            } else {
                "200 OK"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}")
}

#[test]
fn vanity_paths_resolve_through_go_import_tags_of_kind_git_and_mod() {
    let upstream = crate::util::RefProxy::start();
    let repos = Repos::new();
    let v = repos.create("vanity-widget");
    repos.map(
        "https://git.vanity.test/widget",
        &format!("file://{}", v.display()),
    );
    repos.commit(
        &v,
        &[
            ("go.mod", Some("module vanity.test/widget\n\ngo 1.22\n")),
            ("w.go", Some("package widget\n")),
        ],
    );
    repos.tag(&v, "v1.0.0");
    repos.commit(
        &v,
        &[
            ("x/go.mod", Some("module vanity.test/widget/x\n")),
            ("x/x.go", Some("package x\n")),
        ],
    );
    repos.tag(&v, "x/v0.1.0");
    let proxy_base = upstream.url.trim_end_matches("/mod").to_string() + "/mod";
    let server = go_get_server(vec![
        (
            "vanity.test/widget".into(),
            "git https://git.vanity.test/widget".into(),
        ),
        ("rsc.io/quote".into(), format!("mod {proxy_base}")),
    ]);
    let insecure = "vanity.test,rsc.io";
    let queries: Vec<String> = [
        "vanity.test/widget@v1.0.0",
        "vanity.test/widget@latest",
        "vanity.test/widget/x@v0.1.0",
        "rsc.io/quote@v1.5.2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let go = || {
        go_env(&repos)
            .with_env("HTTP_PROXY", &server)
            .with_env("HTTPS_PROXY", &server)
            .with_env("NO_PROXY", "127.0.0.1")
            .with_env("GOINSECURE", insecure)
    };
    let direct = download(&go(), "direct", &queries);
    let data = TempDir::new("data");
    let mut cmd = modproxy_command(
        data.path(),
        &[
            "--upstream",
            "direct",
            "--sumdb",
            "off",
            "--insecure",
            insecure,
            // The mod tag's proxy (the reference proxy) is on loopback,
            // which public module paths may not reach otherwise; the git
            // host is behind insteadOf (it does not resolve here).
            "--allow-internal",
            "127.0.0.1,git.vanity.test",
        ],
    );
    cmd.env("GIT_CONFIG_GLOBAL", &repos.config)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HTTP_PROXY", &server)
        .env("HTTPS_PROXY", &server)
        .env("NO_PROXY", "127.0.0.1");
    let proxy = Modproxy::spawn(cmd).expect("modproxy starts");
    let through = download(&go(), &proxy.url, &queries);
    assert_as_direct(&queries, &direct, &through, &proxy);
}

#[test]
fn git_failures_name_the_repository_without_credentials() {
    let repos = Repos::new();
    repos.map(
        "https://github.com/acme/missing",
        &format!("file://{}", repos.path("nowhere").display()),
    );
    // A closed port: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    repos.map(
        "https://github.com/acme/locked",
        &format!("http://ci:s3cret-token@{closed}/locked.git"),
    );
    let data = TempDir::new("data");
    let proxy = direct_proxy(&repos, data.path(), &[]);
    let (status, body) = get_status(&format!("{}/github.com/acme/missing/@v/list", proxy.url));
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("github.com/acme/missing"), "{body}");
    let (status, body) = get_status(&format!(
        "{}/github.com/acme/locked/@v/v1.0.0.info",
        proxy.url
    ));
    assert_eq!(status, 502, "{body}");
    assert!(
        body.contains("github.com/acme/locked") && body.contains("git ls-remote failed"),
        "{body}"
    );
    assert!(
        !body.contains("s3cret") && !proxy.logs().contains("s3cret"),
        "{body}"
    );
}

#[test]
fn a_remote_that_cannot_serve_its_whole_history_still_serves_its_tags() {
    let repos = Repos::new();
    let w = repos.create("partial");
    let first = repos.commit(
        &w,
        &[
            ("go.mod", Some("module github.com/acme/partial\n")),
            ("old.txt", Some("a blob only the first commit has\n")),
        ],
    );
    repos.commit(
        &w,
        &[("old.txt", None), ("p.go", Some("package partial\n"))],
    );
    repos.tag(&w, "v1.0.0");
    repos.commit(&w, &[("p2.go", Some("package partial // 2\n"))]);
    repos.tag(&w, "v1.1.0");
    // An object deep in the history is gone from the remote (a damaged
    // or partial mirror): it can hand out its tags, not its history.
    let blob = repos.git(&w, &["rev-parse", &format!("{first}:old.txt")]);
    let object = w.join(".git/objects").join(&blob[..2]).join(&blob[2..]);
    std::fs::remove_file(&object).expect("the blob is a loose object");
    let bare = TempDir::new("full-clone");
    let full = std::process::Command::new("git")
        .args(["clone", "--quiet", "--mirror"])
        .arg(format!("file://{}", w.display()))
        .arg(bare.path().join("m.git"))
        .output()
        .unwrap();
    assert!(
        !full.status.success(),
        "a full fetch of the remote works: the test proves nothing"
    );
    let queries: Vec<String> = [
        "github.com/acme/partial@v1.0.0",
        "github.com/acme/partial@v1.1.0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Each through its own module cache.
    let direct = download(&go_env(&repos), "direct", &queries);
    let data = TempDir::new("data");
    let proxy = direct_proxy(&repos, data.path(), &[]);
    let through = download(&go_env(&repos), &proxy.url, &queries);
    assert_as_direct(&queries, &direct, &through, &proxy);
}

#[test]
fn public_module_paths_get_none_of_the_operators_git_credentials() {
    use std::io::Write;
    let repos = Repos::new();
    // A remote that asks every client for credentials.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten().take(50) {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    for name in ["public", "private"] {
        repos.map(
            &format!("https://github.com/acme/{name}"),
            &format!("http://127.0.0.1:{port}/{name}.git"),
        );
    }
    // The operator's credential helper, which notes every use.
    let log = repos.path("helper.log");
    let mut config = std::fs::OpenOptions::new()
        .append(true)
        .open(&repos.config)
        .unwrap();
    writeln!(
        config,
        "[credential]\n\thelper = \"!f() {{ echo used >> '{}'; echo username=ci; echo password=token; }}; f\"",
        log.display()
    )
    .unwrap();
    let data = TempDir::new("data");
    let proxy = direct_proxy(
        &repos,
        data.path(),
        &["--private", "github.com/acme/private"],
    );
    let (status, body) = get_status(&format!("{}/github.com/acme/public/@v/list", proxy.url));
    assert!(status >= 400, "{status}: {body}");
    assert!(
        !log.exists(),
        "the operator's credential helper was used for a public module path"
    );
    // The same remote for a --private module: the helper is used.
    let _ = get_status(&format!("{}/github.com/acme/private/@v/list", proxy.url));
    assert!(
        log.exists(),
        "the private module's fetch did not use the helper: the test proves nothing\n{}",
        proxy.logs()
    );
}
