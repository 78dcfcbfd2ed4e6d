//! The go command through modproxy: `go mod tidy`, `go build`, and a second
//! client served from the store with the upstream gone.

use crate::util::{files_under, hello_project, until, GoEnv, Modproxy, RefProxy, TempDir};

#[test]
fn go_mod_tidy_and_build_through_modproxy_then_offline() {
    let mut upstream = RefProxy::start();
    let data = TempDir::new("data");
    let proxy = Modproxy::verifying(&upstream.url, data.path(), &["--prefetch", "mod"]);

    let project = hello_project();
    let go = GoEnv::new();
    go.ok(project.path(), &proxy.url, &["mod", "tidy"]);
    let sum = std::fs::read_to_string(project.path().join("go.sum")).unwrap();
    assert!(
        sum.contains("rsc.io/quote v1.5.2 h1:3fEykkD9k7lYzXqCYrwGAf7iNhbk4yCjHmKBN9td4L0="),
        "go.sum lacks the reference hash:\n{sum}"
    );
    assert!(
        sum.contains("rsc.io/quote v1.5.2/go.mod h1:LzX7hefJvL54yjefDEDHNONDjII0t9xZLPXsUe+TKr0=")
    );
    go.ok(project.path(), &proxy.url, &["build", "-o", "hello", "."]);
    let hello = std::process::Command::new(project.path().join("hello"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&hello.stdout).trim(),
        "Hello, world."
    );

    // The store is a GOPROXY tree (written once the go command's burst
    // of requests is over).
    let wanted = [
        "rsc.io/quote/@v/v1.5.2.info",
        "rsc.io/quote/@v/v1.5.2.mod",
        "rsc.io/quote/@v/v1.5.2.zip",
        "rsc.io/quote/@v/list",
    ];
    let all_stored = || {
        let stored = files_under(data.path());
        wanted.iter().all(|f| stored.contains(&f.to_string()))
    };
    assert!(
        until(std::time::Duration::from_secs(15), all_stored),
        "not all of {wanted:?} stored: {:?}",
        files_under(data.path())
    );

    // Upstream gone: a second client with an empty module cache still gets
    // every module, from the store.
    upstream.stop();
    let second = GoEnv::new();
    let out = second.ok(project.path(), &proxy.url, &["mod", "download", "-x"]);
    assert!(
        second
            .modcache()
            .join("cache/download/rsc.io/quote/@v/v1.5.2.zip")
            .exists(),
        "{out}"
    );
    second.ok(project.path(), &proxy.url, &["build", "-o", "hello2", "."]);
    let sum_after = std::fs::read_to_string(project.path().join("go.sum")).unwrap();
    assert_eq!(sum, sum_after);
}

#[test]
fn the_store_is_usable_as_a_file_goproxy() {
    let upstream = RefProxy::start();
    let data = TempDir::new("data");
    let proxy = Modproxy::verifying(&upstream.url, data.path(), &["--prefetch", "mod"]);
    let project = hello_project();
    let go = GoEnv::new();
    go.ok(project.path(), &proxy.url, &["mod", "tidy"]);
    go.ok(project.path(), &proxy.url, &["mod", "download"]);
    proxy.stop();

    let file_proxy = format!("file://{}", data.path().display());
    let go = GoEnv::new();
    go.ok(project.path(), &file_proxy, &["mod", "download"]);
    go.ok(project.path(), &file_proxy, &["build", "-o", "hello", "."]);
}
