//! The address policy against hostile module paths: inside a private
//! network namespace (only loopback exists, and its own hosts file maps
//! `evil.test`, `internal.test` and `corp.test` to 127.0.0.1), go-import
//! tags, redirects and git remotes that lead to an "internal" service get
//! a clear refusal, and that service sees no connection at all; a
//! `--private` module whose page is on loopback still works.
//!
//! The outer test re-runs this test binary under `unshare`, running the
//! ignored inner test there (it refuses to run anywhere else).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::util::{get_status, Modproxy, RefProxy, TempDir};

/// Set in the namespace for the inner test.
const INSIDE: &str = "MODPROXY_TEST_IN_NETNS";

#[test]
fn hostile_module_paths_reach_no_internal_service() {
    let dir = TempDir::new("netns");
    let hosts = dir.path().join("hosts");
    std::fs::write(
        &hosts,
        "127.0.0.1 localhost\n::1 localhost\n127.0.0.1 evil.test\n127.0.0.1 internal.test\n127.0.0.1 corp.test\n",
    )
    .unwrap();
    let out = Command::new("unshare")
        .args(["--net", "--mount", "--fork", "sh", "-c"])
        .arg("ip link set lo up && mount --bind \"$0\" /etc/hosts && exec \"$@\"")
        .arg(&hosts)
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "address_policy::inside_a_network_namespace",
            "--ignored",
            "--nocapture",
        ])
        .env(INSIDE, "1")
        .output()
        .expect("run unshare (util-linux) and ip (iproute2): scripts/env.sh installs them");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "in the namespace:\n{text}");
    assert!(
        text.contains("1 passed"),
        "the inner test did not run:\n{text}"
    );
}

/// Accepts connections on 127.0.0.1 and counts them (before anything is
/// read), answering each with an internal service's secret.
struct Internal {
    port: u16,
    connections: Arc<AtomicUsize>,
}

impl Internal {
    fn start() -> Internal {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&connections);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                seen.fetch_add(1, Ordering::SeqCst);
                let mut stream = stream;
                let body = "SECRET-INTERNAL-TOKEN";
                let _ = write!(
                    stream,
                    "HTTP/1.1 500 Internal Server Error\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Internal { port, connections }
    }
}

/// The hostile web server on 127.0.0.1:80 (`evil.test`, and `corp.test`'s
/// pages): answers `(host, path)` with `(status, headers, body)`; every
/// request is logged.
fn web_server(
    answer: impl Fn(&str, &str) -> (u16, String, String) + Send + 'static,
) -> Arc<Mutex<Vec<String>>> {
    let listener =
        TcpListener::bind("127.0.0.1:80").expect("bind port 80 (root, in the namespace)");
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&log);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            let mut host = String::new();
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
                    break;
                }
                if let Some(h) = header.to_ascii_lowercase().strip_prefix("host:") {
                    host = h.trim().to_string();
                }
            }
            seen.lock().unwrap().push(format!("{host}{path}"));
            let (status, headers, body) = answer(&host, &path);
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\n{headers}Content-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    log
}

fn go_import(prefix: &str, kind: &str, url: &str) -> String {
    format!("<html><head><meta name=\"go-import\" content=\"{prefix} {kind} {url}\"></head></html>")
}

#[test]
#[ignore = "run inside a private network namespace by hostile_module_paths_reach_no_internal_service"]
fn inside_a_network_namespace() {
    assert_eq!(
        std::env::var(INSIDE).as_deref(),
        Ok("1"),
        "this test maps host names to loopback: it runs only inside the namespace its outer test makes"
    );
    let internal = Internal::start();
    let secret = format!("http://127.0.0.1:{}/secret", internal.port);
    let secret_by_name = format!("http://internal.test:{}/secret", internal.port);

    // A private module served by a module proxy on loopback.
    let corp = TempDir::new("corp");
    let mods = corp.path().join("testdata/mod");
    std::fs::create_dir_all(&mods).unwrap();
    std::fs::write(
        mods.join("corp.test_lib_v1.0.0.txt"),
        "corp.test/lib v1.0.0\n-- .mod --\nmodule corp.test/lib\n-- .info --\n{\"Version\":\"v1.0.0\"}\n-- go.mod --\nmodule corp.test/lib\n-- lib.go --\npackage lib\n",
    )
    .unwrap();
    let corp_proxy = RefProxy::start_in(corp.path());

    let pages = {
        let (secret, secret_by_name, corp_url) = (
            secret.clone(),
            secret_by_name.clone(),
            corp_proxy.url.clone(),
        );
        move |_host: &str, path: &str| -> (u16, String, String) {
            let page = |html: String| (200, String::new(), html);
            let name = path.split('?').next().unwrap_or("");
            match name {
                "/mod" => page(go_import("evil.test/mod", "mod", &secret)),
                "/byname" => page(go_import("evil.test/byname", "mod", &secret_by_name)),
                "/redir" => page(go_import("evil.test/redir", "mod", "http://evil.test/hop")),
                "/ssh" => page(go_import(
                    "evil.test/ssh",
                    "git",
                    &secret
                        .replace("http://", "ssh://")
                        .replace("/secret", "/repo"),
                )),
                "/git" => page(go_import(
                    "evil.test/git",
                    "git",
                    &secret_by_name
                        .replace("http://", "https://")
                        .replace("/secret", "/repo.git"),
                )),
                "/err" => page(go_import(
                    "evil.test/err",
                    "mod",
                    "http://evil.test/errproxy",
                )),
                "/lib" => page(go_import("corp.test/lib", "mod", &corp_url)),
                p if p.starts_with("/hop/") => (
                    302,
                    format!("Location: {secret_by_name}\r\n"),
                    String::new(),
                ),
                p if p.starts_with("/errproxy/") => {
                    (500, String::new(), "SECRET-FROM-THE-PAGE-SERVER".into())
                }
                _ => (404, String::new(), "not found".into()),
            }
        }
    };
    let web = web_server(pages);

    let data = TempDir::new("netns-data");
    let proxy = Modproxy::start(
        data.path(),
        &[
            "--upstream",
            "direct",
            "--sumdb",
            "off",
            // Pages over plain http (nothing listens on 443 here).
            "--insecure",
            "evil.test,corp.test,127.0.0.1",
            // The hostile host itself is on loopback in this namespace.
            "--allow-internal",
            "evil.test",
            "--private",
            "corp.test",
        ],
    );

    for module in [
        // A module path naming an address.
        "127.0.0.1/x",
        // A mod tag pointing at an internal address, or a name of one.
        "evil.test/mod",
        "evil.test/byname",
        // A redirect from the hostile host to an internal name.
        "evil.test/redir",
        // git remotes over ssh and https on internal addresses.
        "evil.test/ssh",
        "evil.test/git",
    ] {
        let (status, body) = get_status(&format!("{}/{module}/@v/list", proxy.url));
        assert_eq!(status, 502, "{module}: {body}\n{}", proxy.logs());
        assert!(
            body.contains("address policy") && body.contains("--allow-internal"),
            "{module}: the refusal does not name the policy and how to allow it: {body}"
        );
        assert!(!body.contains("SECRET"), "{module}: {body}");
    }

    // An allowed server's error page is summarised, not relayed.
    let (status, body) = get_status(&format!("{}/evil.test/err/@v/list", proxy.url));
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("500") && !body.contains("SECRET"), "{body}");

    // A private module whose page and proxy are on loopback works.
    let (status, body) = get_status(&format!("{}/corp.test/lib/@v/v1.0.0.info", proxy.url));
    assert_eq!(status, 200, "{body}\n{}", proxy.logs());

    assert_eq!(
        internal.connections.load(Ordering::SeqCst),
        0,
        "the internal service was reached\n{}",
        proxy.logs()
    );
    let requests = web.lock().unwrap().clone();
    assert!(
        !requests.iter().any(|r| r.starts_with("127.0.0.1")),
        "a page was asked of 127.0.0.1: {requests:?}"
    );
    // The hostile host itself was asked (the allow list works).
    assert!(
        requests.iter().any(|r| r.starts_with("evil.test/mod")),
        "{requests:?}"
    );
}
