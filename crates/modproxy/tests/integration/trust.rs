//! Trust: every module entering the store is verified against the checksum
//! database; the database is proxied and cached so clients keep GOSUMDB on;
//! private module paths never leave the proxy.

use std::time::Duration;

use crate::fault::{FaultServer, Mode};
use crate::util::{
    appears, appears_blocking, files_under, hello_module, hello_project, until, GoEnv, Modproxy,
    RefProxy, TempDir, REF_SUMDB, WRITES_LAND,
};

async fn get(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

async fn checksum_failures(proxy: &Modproxy) -> u64 {
    let (_, text) = get(&format!("{}/metrics", proxy.url)).await;
    text.lines()
        .find_map(|l| l.strip_prefix("modproxy_checksum_failures_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the checksum failure metric")
}

#[test]
fn go_verifies_through_modproxy_and_still_does_offline() {
    let mut upstream = RefProxy::start();
    let data = TempDir::new("data");
    let proxy = Modproxy::start(
        data.path(),
        &["--upstream", &upstream.url, "--sumdb", REF_SUMDB],
    );
    let project = hello_project();
    // The client names the database without a URL: it finds it through
    // modproxy's /sumdb/ endpoint.
    GoEnv::new().ok(project.path(), &proxy.url, &["mod", "tidy"]);
    // Zips are stored just after the go command has them.
    let zip = data.path().join("rsc.io/quote/@v/v1.5.2.zip");
    assert!(appears_blocking(&zip, Duration::from_secs(15)));
    let sumdb = "sumdb/localhost.localdev/sumdb/";
    // Tiles are written behind the answers that needed them.
    let tiles = || {
        files_under(data.path())
            .iter()
            .any(|f| f.starts_with(&format!("{sumdb}tile/8/0/")))
    };
    assert!(until(Duration::from_secs(15), tiles));
    let stored = files_under(data.path());
    assert!(stored.contains(&format!("{sumdb}latest")), "{stored:?}");
    assert!(stored
        .iter()
        .any(|f| f.starts_with(&format!("{sumdb}lookup/rsc.io/quote@v1.5.2"))));
    assert!(stored
        .iter()
        .any(|f| f.starts_with(&format!("{sumdb}tile/8/0/"))));
    // The stored lookup is the zip's record: no `.ziphash` beside it.
    assert!(
        !stored.iter().any(|f| f.ends_with(".ziphash")),
        "{stored:?}"
    );

    // Upstream gone; a new client without go.sum verifies every module from
    // what modproxy stored (lookups and tiles).
    upstream.stop();
    let fresh = TempDir::new("fresh");
    hello_module(fresh.path());
    let go = GoEnv::new();
    go.ok(fresh.path(), &proxy.url, &["mod", "tidy"]);
    let sum = std::fs::read_to_string(fresh.path().join("go.sum")).unwrap();
    assert!(sum.contains("rsc.io/quote v1.5.2 h1:3fEykkD9k7lYzXqCYrwGAf7iNhbk4yCjHmKBN9td4L0="));
    go.ok(fresh.path(), &proxy.url, &["build", "-o", "hello", "."]);

    // The same after a restart: the lookups and tiles come from the store
    // alone (nothing is in memory, and the database is unreachable).
    proxy.stop();
    let proxy = Modproxy::start(
        data.path(),
        &["--upstream", &upstream.url, "--sumdb", REF_SUMDB],
    );
    let again = TempDir::new("again");
    hello_module(again.path());
    GoEnv::new().ok(again.path(), &proxy.url, &["mod", "tidy"]);
    let sum_again = std::fs::read_to_string(again.path().join("go.sum")).unwrap();
    assert_eq!(sum_again, sum);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tampered_zip_is_refused_and_nothing_is_stored() {
    let upstream = RefProxy::start();
    let server = FaultServer::start(&upstream.url);
    server.set_mode(Mode::Tamper);
    let data = TempDir::new("data");
    let proxy = Modproxy::start(
        data.path(),
        &["--upstream", &server.url, "--sumdb", REF_SUMDB],
    );
    let zip = format!("{}/rsc.io/quote/@v/v1.5.2.zip", proxy.url);
    let response = reqwest::get(&zip).await.unwrap();
    // The body streams as it arrives; verification ends it with an error.
    let complete = match response.status().as_u16() {
        200 => response.bytes().await.is_ok(),
        _ => false,
    };
    assert!(!complete, "a tampered zip was delivered whole");
    tokio::time::sleep(WRITES_LAND).await;
    assert!(!data.path().join("rsc.io/quote/@v/v1.5.2.zip").exists());
    assert_eq!(checksum_failures(&proxy).await, 1);

    // The go command reports the failure.
    let project = hello_project();
    let url = proxy.url.clone();
    let dir = project.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        GoEnv::new().run(&dir, &url, &["mod", "download", "rsc.io/quote@v1.5.2"])
    })
    .await
    .unwrap();
    assert!(!out.status.success());

    // A clean upstream afterwards works.
    server.set_mode(Mode::Forward);
    let body = reqwest::get(&zip).await.unwrap().bytes().await.unwrap();
    assert!(!body.is_empty());
    let stored = data.path().join("rsc.io/quote/@v/v1.5.2.zip");
    assert!(appears(&stored, Duration::from_secs(15)).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_checksum_database_that_signs_wrong_hashes_is_caught() {
    let upstream = RefProxy::start();
    // Hide the proxy's own checksum DB so modproxy goes `direct` to the
    // reference's "sumdb-wrong" database (same key, wrong hashes).
    let server = FaultServer::start(&upstream.url);
    server.block("/sumdb/");
    let wrong = format!("{REF_SUMDB} {}/sumdb-wrong", upstream.url);
    let chain = format!("{},direct", server.url);
    let data = TempDir::new("data");
    let proxy = Modproxy::start(data.path(), &["--upstream", &chain, "--sumdb", &wrong]);
    let (status, body) = get(&format!("{}/rsc.io/quote/@v/v1.5.2.mod", proxy.url)).await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body.contains("SECURITY ERROR") && body.contains("rsc.io/quote@v1.5.2"),
        "{body}"
    );
    assert!(
        body.contains("h1:LzX7hefJvL54yjefDEDHNONDjII0t9xZLPXsUe+TKr0="),
        "{body}"
    );
    tokio::time::sleep(WRITES_LAND).await;
    assert!(!data.path().join("rsc.io/quote/@v/v1.5.2.mod").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn private_module_paths_never_reach_public_upstreams_or_the_database() {
    let upstream = RefProxy::start();
    let recorder = FaultServer::start(&upstream.url);
    let data = TempDir::new("data");
    let proxy = Modproxy::verifying(
        &recorder.url,
        data.path(),
        // No version control either: the test stays on loopback.
        &["--private", "corp.example.com", "--private-upstream", "off"],
    );
    for path in [
        "/corp.example.com/secret/@v/list",
        "/corp.example.com/secret/@v/v1.0.0.info",
        "/corp.example.com/secret/@latest",
        "/sumdb/localhost.localdev/sumdb/lookup/corp.example.com/secret@v1.0.0",
    ] {
        let (status, _) = get(&format!("{}{path}", proxy.url)).await;
        assert_eq!(status, 404, "{path}");
    }
    // A public module still works, through the same recorder.
    let (status, _) = get(&format!("{}/rsc.io/quote/@v/v1.5.2.mod", proxy.url)).await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let leaked: Vec<String> = recorder
        .paths()
        .into_iter()
        .filter(|p| p.contains("corp.example.com"))
        .collect();
    assert!(
        leaked.is_empty(),
        "private paths reached the upstream: {leaked:?}"
    );
    assert!(recorder.total() > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forked_checksum_database_is_detected() {
    let upstream = RefProxy::start();
    let data = TempDir::new("data");
    // Accept the real database's tree head first.
    let proxy = Modproxy::start(
        data.path(),
        &["--upstream", &upstream.url, "--sumdb", REF_SUMDB],
    );
    let (status, body) = get(&format!("{}/rsc.io/quote/@v/v1.5.2.mod", proxy.url)).await;
    assert_eq!(status, 200, "{body}");
    // A restart: what it accepted (the tree head, its tiles) is written
    // before it exits.
    let mut proxy = proxy;
    proxy.terminate();
    let stopped = proxy.wait(Duration::from_secs(30)).expect("it stops");
    assert_eq!(stopped.code(), Some(0));

    // Same data directory, same key, but a database with other contents: its
    // tree cannot contain the one accepted before.
    let server = FaultServer::start(&upstream.url);
    server.block("/sumdb/");
    let wrong = format!("{REF_SUMDB} {}/sumdb-wrong", upstream.url);
    let chain = format!("{},direct", server.url);
    let proxy = Modproxy::start(data.path(), &["--upstream", &chain, "--sumdb", &wrong]);
    let (status, body) = get(&format!("{}/rsc.io/sampler/@v/v1.3.0.mod", proxy.url)).await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body.contains("SECURITY ERROR") && body.contains("fork"),
        "{body}"
    );
    tokio::time::sleep(WRITES_LAND).await;
    assert!(!data.path().join("rsc.io/sampler/@v/v1.3.0.mod").exists());
}

/// Runs `modproxy verify` on the store in `data`: its exit code and output.
fn verify(upstream: &str, data: &std::path::Path, extra: &[&str]) -> (Option<i32>, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_modproxy"))
        .args(["verify", "--upstream", upstream, "--sumdb", REF_SUMDB])
        .arg("--data")
        .arg(data)
        .args(extra)
        .env_remove("MODPROXY_CONFIG")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}

#[test]
fn verify_reports_and_repairs_a_corrupted_store() {
    let upstream = RefProxy::start();
    let data = TempDir::new("data");
    let proxy = Modproxy::start(
        data.path(),
        &["--upstream", &upstream.url, "--sumdb", REF_SUMDB],
    );
    let project = hello_project();
    let go = GoEnv::new();
    go.ok(project.path(), &proxy.url, &["mod", "tidy"]);
    go.ok(project.path(), &proxy.url, &["mod", "download"]);

    let verify = |extra: &[&str]| verify(&upstream.url, data.path(), extra);
    // Runs next to the live server on the same directory, once the
    // server's writes have landed (they wait for the end of a burst):
    // every zip the download fetched, and each with its record.
    let zips = [
        "rsc.io/quote/@v/v1.5.2.zip",
        "rsc.io/sampler/@v/v1.3.0.zip",
        "golang.org/x/text/@v/v0.0.0-20170915032832-14c0d48ead0c.zip",
    ];
    let landed = until(Duration::from_secs(15), || {
        zips.iter().all(|z| data.path().join(z).exists()) && verify(&[]).1.contains(" 0 unverified")
    });
    let (code, out) = verify(&[]);
    assert!(landed, "the store never verified whole: {out}");
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(" 0 bad") && !out.contains(" 0 verified"),
        "{out}"
    );
    // The database's stored answer was its zips' record: exempted from
    // it, a zip is said to be checked by the zip rules alone.
    let (code, out) = verify(&["--nosumdb", "rsc.io/quote"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("no h1: recorded with it"), "{out}");

    let zip = data.path().join("rsc.io/quote/@v/v1.5.2.zip");
    let mut bytes = std::fs::read(&zip).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&zip, bytes).unwrap();
    let (code, out) = verify(&[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("BAD") && out.contains("v1.5.2.zip"), "{out}");
    assert!(zip.exists());

    let (code, out) = verify(&["--repair"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("(removed)"), "{out}");
    assert!(!zip.exists());
    let (code, out) = verify(&[]);
    assert_eq!(code, Some(0), "{out}");

    // The stored checksum database answers are checked again too: a
    // rewritten record no longer authenticates.
    let lookup = data
        .path()
        .join("sumdb/localhost.localdev/sumdb/lookup/rsc.io/quote@v1.5.2");
    let record = std::fs::read_to_string(&lookup).unwrap();
    let forged = record.replace(
        "LzX7hefJvL54yjefDEDHNONDjII0t9xZLPXsUe",
        "AAAAhefJvL54yjefDEDHNONDjII0t9xZLPXsUe",
    );
    assert_ne!(record, forged);
    std::fs::write(&lookup, forged).unwrap();
    let (code, out) = verify(&[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("BAD") && out.contains("v1.5.2.mod"), "{out}");

    // So does a genuine record under a forged signature of the very tree
    // head accepted (and stored as the newest) before.
    let signature = record.rfind('\u{2014}').expect("a signature line");
    let mut forged = record.into_bytes();
    let at = forged.len() - 12;
    assert!(at > signature);
    forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
    std::fs::write(&lookup, forged).unwrap();
    let (code, out) = verify(&[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("BAD") && out.contains("v1.5.2.mod"), "{out}");
}

#[test]
fn nosumdb_modules_are_served_but_never_looked_up() {
    let upstream = RefProxy::start();
    let recorder = FaultServer::start(&upstream.url);
    let prefix = "example.com/internal@v1.0.0/";
    let gomod = "module example.com/internal\n\ngo 1.21\n";
    let zip = modproxy_module::modzip::stored_zip(&[
        (format!("{prefix}go.mod"), gomod.as_bytes().to_vec()),
        (format!("{prefix}x.go"), b"package internal\n".to_vec()),
    ]);
    let info = r#"{"Version":"v1.0.0","Time":"2024-01-01T00:00:00Z"}"#;
    recorder.add_static("/example.com/internal/@v/v1.0.0.info", info);
    recorder.add_static("/example.com/internal/@v/v1.0.0.mod", gomod);
    recorder.add_static_bytes("/example.com/internal/@v/v1.0.0.zip", zip);
    let data = TempDir::new("data");
    let proxy = Modproxy::verifying(
        &recorder.url,
        data.path(),
        &["--nosumdb", "example.com/internal"],
    );
    let project = hello_project();
    let go = GoEnv::new().with_env("GONOSUMDB", "example.com/internal");
    go.ok(
        project.path(),
        &proxy.url,
        &["mod", "download", "example.com/internal@v1.0.0"],
    );
    let stored = data.path().join("example.com/internal/@v/v1.0.0.zip");
    assert!(appears_blocking(&stored, Duration::from_secs(15)));
    let looked_up: Vec<String> = recorder
        .paths()
        .into_iter()
        .filter(|p| p.starts_with("/sumdb/") && p.contains("example.com"))
        .collect();
    assert!(looked_up.is_empty(), "{looked_up:?}");

    // No database vouches for it, so the h1 it was accepted with is
    // recorded next to it, and `verify` holds the zip to that record.
    let verify = |extra: &[&str]| verify(&recorder.url, data.path(), extra);
    let exempt = ["--nosumdb", "example.com/internal"];
    let ziphash = stored.with_extension("ziphash");
    let recorded = std::fs::read_to_string(&ziphash).unwrap();
    assert!(recorded.starts_with("h1:"), "{recorded}");
    let (code, out) = verify(&exempt);
    assert_eq!(code, Some(0), "{out}");
    std::fs::write(
        &ziphash,
        "h1:AAAAhefJvL54yjefDEDHNONDjII0t9xZLPXsUeAAAAA=\n",
    )
    .unwrap();
    let (code, out) = verify(&exempt);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("differs from the recorded"), "{out}");
}
