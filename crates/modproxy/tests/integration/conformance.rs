//! modproxy refuses only what the go command itself would refuse from the
//! same upstream: every module version the Go team's reference proxy
//! serves downloads through modproxy exactly as it does straight (same
//! `Version`, `Sum` and `GoModSum`, or an error in both), toolchain
//! modules and zips whose go.mod is not their `.mod` file included.

use std::collections::BTreeMap;
use std::path::Path;

use crate::util::{get_text, goroot, sample, GoEnv, Modproxy, RefProxy, TempDir};

/// What `go mod download -json` said of one module version: its
/// `(Version, Sum, GoModSum)`, or its error.
type Downloaded = Result<(String, String, String), String>;

/// Runs `go mod download -json ARGS` with a fresh module cache through
/// `goproxy`; what it said of each `path@version`.
fn download(goproxy: &str, args: &[String]) -> BTreeMap<String, Downloaded> {
    let dir = TempDir::new("download");
    let go = GoEnv::new();
    let mut command = vec!["mod", "download", "-json"];
    command.extend(args.iter().map(String::as_str));
    let out = go.run(dir.path(), goproxy, &command);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut said = BTreeMap::new();
    for value in serde_json::Deserializer::from_str(&stdout).into_iter::<serde_json::Value>() {
        let value = value.unwrap_or_else(|e| panic!("go printed no JSON ({e}):\n{stdout}"));
        let field = |k: &str| value[k].as_str().unwrap_or("").to_string();
        let key = format!("{}@{}", field("Path"), field("Version"));
        let outcome = match value.get("Error") {
            Some(e) => Err(e.as_str().unwrap_or("").to_string()),
            None => Ok((field("Version"), field("Sum"), field("GoModSum"))),
        };
        said.insert(key, outcome);
    }
    said
}

/// Every `path@version` of the reference proxy's corpus, read from its
/// file names as the reference proxy reads them (`_` for `/`, `!x` for
/// `X`).
fn corpus() -> Vec<String> {
    let dir = goroot().join("src/cmd/go/testdata/mod");
    let unescape = |s: &str| {
        let mut out = String::new();
        let mut upper = false;
        for c in s.chars() {
            match c {
                '!' => upper = true,
                c if upper => {
                    out.push(c.to_ascii_uppercase());
                    upper = false;
                }
                c => out.push(c),
            }
        }
        out
    };
    let mut all: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".txt")?;
            let (path, version) = stem.rsplit_once("_v")?;
            let path = unescape(&path.replace('_', "/"));
            Some(format!("{path}@v{}", unescape(version)))
        })
        .collect();
    all.sort();
    all
}

/// The proxy under test, verifying against the reference database.
fn verifying_proxy(upstream: &RefProxy, data: &Path) -> Modproxy {
    Modproxy::verifying(&upstream.url, data, &[])
}

#[test]
fn every_version_of_the_reference_corpus_downloads_through_modproxy_as_straight() {
    let upstream = RefProxy::start();
    let data = TempDir::new("conformance");
    let proxy = verifying_proxy(&upstream, data.path());
    let all = corpus();
    assert!(all.len() > 250, "the corpus has {} versions", all.len());

    let straight = download(&upstream.url, &all);
    let through = download(&proxy.url, &all);
    // (Keyed by what go printed: `rsc.io/quote@v2.0.0` is
    // `v2.0.0+incompatible`.)
    assert!(straight.len() + 5 > all.len(), "{straight:?}");
    let mut differences = Vec::new();
    let extra = through.keys().filter(|m| !straight.contains_key(*m));
    differences.extend(extra.map(|m| format!("{m}: only through modproxy")));
    for (m, want) in &straight {
        let got = through.get(m);
        let same = match (want, got) {
            (Ok(w), Some(Ok(g))) => w == g,
            (Err(_), Some(Err(_))) => true,
            _ => false,
        };
        if !same {
            differences.push(format!("{m}:\n  straight: {want:?}\n  through:  {got:?}"));
        }
    }
    let verified = straight.values().filter(|d| d.is_ok()).count();
    assert!(
        differences.is_empty(),
        "{} of {} versions differ through modproxy:\n{}",
        differences.len(),
        straight.len(),
        differences.join("\n")
    );
    // Most of the corpus is valid: the comparison is not of errors only.
    assert!(verified > 240, "only {verified} versions downloaded");
}

#[test]
fn a_toolchain_module_is_served_as_the_upstream_serves_it() {
    let upstream = RefProxy::start();
    let data = TempDir::new("toolchain");
    let proxy = verifying_proxy(&upstream, data.path());
    let toolchain = "golang.org/toolchain@v0.0.1-go1.22.0.linux-amd64".to_string();

    let straight = download(&upstream.url, std::slice::from_ref(&toolchain));
    let through = download(&proxy.url, std::slice::from_ref(&toolchain));
    assert!(
        matches!(straight.get(&toolchain), Some(Ok(_))),
        "{straight:?}"
    );
    assert_eq!(through.get(&toolchain), straight.get(&toolchain));
    // Its .mod holds only the module path (no `module` keyword): served
    // byte for byte, and not noted as odd.
    let path = "golang.org/toolchain/@v/v0.0.1-go1.22.0.linux-amd64.mod";
    assert_eq!(
        get_text(&format!("{}/{path}", proxy.url)),
        get_text(&format!("{}/{path}", upstream.url))
    );
    let metrics = get_text(&format!("{}/metrics", proxy.url));
    assert_eq!(
        sample(
            &metrics,
            "modproxy_accepted_anomalies_total{kind=\"gomod_module_line\"}"
        ),
        0.0,
        "{metrics}"
    );
}

#[test]
fn a_zip_whose_go_mod_differs_from_its_mod_file_is_served_and_verified() {
    let upstream = RefProxy::start();
    let data = TempDir::new("zip-gomod");
    let proxy = verifying_proxy(&upstream, data.path());
    // The zip's go.mod excludes v1.0.1, the .mod file v1.1.0: the checksum
    // database vouches for each, and the go command compares neither with
    // the other.
    let m = "example.com/printversion@v1.0.0".to_string();
    let straight = download(&upstream.url, std::slice::from_ref(&m));
    let through = download(&proxy.url, std::slice::from_ref(&m));
    assert!(matches!(straight.get(&m), Some(Ok(_))), "{straight:?}");
    assert_eq!(through.get(&m), straight.get(&m), "{}", proxy.logs());

    let metrics = get_text(&format!("{}/metrics", proxy.url));
    assert_eq!(
        sample(&metrics, "modproxy_checksum_failures_total"),
        0.0,
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "modproxy_accepted_anomalies_total{kind=\"zip_gomod_differs\"}"
        ),
        1.0,
        "{metrics}"
    );
    assert!(!proxy.logs().contains("SECURITY"), "{}", proxy.logs());
}
