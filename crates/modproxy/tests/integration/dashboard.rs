//! The dashboard at `/`, rendered by real headless Chromium: it loads
//! without console errors and shows the numbers `/metrics` has.
//! Screenshots (desktop and phone width) are kept as test artefacts in
//! `$CARGO_TARGET_TMPDIR/artefacts/`.

use std::path::Path;
use std::process::Command;

use crate::util::{
    get_text, hello_project, required_env, sample, GoEnv, Modproxy, RefProxy, TempDir,
};

/// Runs headless Chromium on `url` with `args`; (stdout, stderr).
fn chromium(url: &str, args: &[&str]) -> (String, String) {
    let profile = TempDir::new("chromium");
    let out = Command::new(required_env("MODPROXY_TEST_CHROMIUM"))
        .args(["--headless=new", "--no-sandbox", "--disable-gpu"])
        .args(["--enable-logging=stderr", "--v=0"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        // Time for the page's first refresh (its fetches) to land.
        .arg("--virtual-time-budget=5000")
        .args(args)
        .arg(url)
        .output()
        .expect("run chromium");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The text of the element with `id` in a dumped DOM.
fn element(dom: &str, id: &str) -> String {
    let start = dom
        .find(&format!("id=\"{id}\">"))
        .unwrap_or_else(|| panic!("no #{id} in:\n{dom}"));
    let rest = &dom[start + id.len() + 6..];
    rest[..rest.find('<').unwrap()].to_string()
}

#[test]
fn the_dashboard_renders_in_chromium_with_the_numbers_of_metrics() {
    let upstream = RefProxy::start();
    let data = TempDir::new("data");
    let proxy = Modproxy::verifying(&upstream.url, data.path(), &["--max-size", "1GiB"]);
    let project = hello_project();
    GoEnv::new().ok(project.path(), &proxy.url, &["mod", "tidy"]);
    GoEnv::new().ok(project.path(), &proxy.url, &["mod", "download"]);

    // "Most requested" samples one request in a few per server thread:
    // enough requests for rsc.io/quote to be seen whatever the threads.
    for _ in 0..16 {
        get_text(&format!("{}/rsc.io/quote/@v/v1.5.2.info", proxy.url));
    }
    let metrics = get_text(&format!("{}/metrics", proxy.url));
    let page = format!("{}/", proxy.url);
    let (dom, log) = chromium(&page, &["--dump-dom"]);
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console output: {console:#?}");
    // Dashboard requests are not module answers: these cannot move.
    for (id, status) in [("hits", "HIT"), ("misses", "MISS")] {
        let want = sample(
            &metrics,
            &format!("modproxy_cache_results_total{{status=\"{status}\"}}"),
        );
        let shown: f64 = element(&dom, id).parse().unwrap();
        assert_eq!(shown, want, "#{id} vs /metrics:\n{metrics}");
    }
    assert_ne!(element(&dom, "hits"), "0");
    assert!(element(&dom, "store-budget").contains("1.0 GiB"), "{dom}");
    assert!(
        dom.contains("rsc.io/quote"),
        "most requested modules missing:\n{dom}"
    );
    assert!(element(&dom, "updated").starts_with("updated "), "{dom}");

    // The module search reads the store.
    let found = get_text(&format!("{}/-/api/search?q=QUOTE", proxy.url));
    assert_eq!(found, "[\"rsc.io/quote\"]");

    // Screenshots, desktop and phone.
    let artefacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("artefacts");
    std::fs::create_dir_all(&artefacts).unwrap();
    for (name, size) in [
        ("dashboard.png", "1280,1000"),
        ("dashboard-phone.png", "390,1600"),
    ] {
        let shot = artefacts.join(name);
        let _ = std::fs::remove_file(&shot);
        let (_, log) = chromium(
            &page,
            &[
                &format!("--screenshot={}", shot.display()),
                &format!("--window-size={size}"),
            ],
        );
        let len = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
        assert!(len > 10_000, "no screenshot {name} ({len} bytes):\n{log}");
    }
}
