//! `modproxy warm`: after warming a project's go.mod, the project downloads
//! and builds through modproxy with every upstream stopped.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use crate::util::{
    appears_blocking, files_under, hello_module, GoEnv, Modproxy, RefProxy, TempDir, REF_SUMDB,
};

/// Runs `modproxy warm ARGS` on the store `data`.
fn warm(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modproxy"))
        .arg("warm")
        .arg("--data")
        .arg(data)
        .args(args)
        .env_remove("MODPROXY_CONFIG")
        .output()
        .expect("run modproxy warm")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The JSON summary `warm --json` printed.
fn summary(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or("");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(out)))
}

/// A tidy hello project (go.mod and go.sum written by the go command).
fn tidy_project(upstream: &str) -> TempDir {
    let project = TempDir::new("warm-project");
    hello_module(project.path());
    GoEnv::new().ok(project.path(), upstream, &["mod", "tidy"]);
    project
}

#[test]
fn a_warmed_project_downloads_and_builds_with_the_upstream_stopped() {
    let mut upstream = RefProxy::start();
    let project = tidy_project(&upstream.url);
    let data = TempDir::new("warm-data");
    let gomod = project.path().join("go.mod");
    let store_args = ["--upstream", &upstream.url, "--sumdb", REF_SUMDB];

    let mut args = vec![gomod.to_str().unwrap(), "--json"];
    args.extend(store_args);
    let out = warm(data.path(), &args);
    assert!(out.status.success(), "{}", text(&out));
    let first = summary(&out);
    assert_eq!(first["failed"], 0, "{first}");
    // .info, .mod and .zip of quote, sampler, x/text and rsc.io/testonly:
    // sampler's go.mod has no go line, so its requirements are loaded
    // unpruned, and testonly is in the build list (go list -m all).
    assert_eq!(
        first["fetched"],
        12,
        "{first} {:?}",
        files_under(data.path())
    );
    let stored = files_under(data.path());
    for f in [
        "rsc.io/quote/@v/v1.5.2.zip",
        "rsc.io/sampler/@v/v1.3.0.zip",
        "golang.org/x/text/@v/v0.0.0-20170915032832-14c0d48ead0c.zip",
        "rsc.io/testonly/@v/v1.0.0.zip",
    ] {
        assert!(
            stored.contains(&f.to_string()),
            "{f} not stored: {stored:?}"
        );
    }

    // A second run finds everything there.
    let again = summary(&warm(data.path(), &args));
    assert_eq!(
        (again["fetched"].as_u64(), again["present"].as_u64()),
        (Some(0), Some(12)),
        "{again}"
    );

    // Every upstream gone: a fresh go command downloads and builds.
    upstream.stop();
    let proxy = Modproxy::verifying(&upstream.url, data.path(), &[]);
    let go = GoEnv::new();
    go.ok(project.path(), &proxy.url, &["mod", "download"]);
    go.ok(project.path(), &proxy.url, &["build", "-o", "hello", "."]);
    let hello = Command::new(project.path().join("hello")).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&hello.stdout).trim(),
        "Hello, world."
    );
}

#[test]
fn a_workspace_of_two_modules_is_warmed_through_a_running_proxy() {
    let upstream = RefProxy::start();
    let data = TempDir::new("warm-data");
    let proxy = Modproxy::verifying(&upstream.url, data.path(), &[]);
    let work = TempDir::new("warm-work");
    for (dir, require) in [
        ("a", "rsc.io/quote v1.5.2"),
        ("b", "golang.org/x/text v0.3.0"),
    ] {
        let module_dir = work.path().join(dir);
        std::fs::create_dir_all(&module_dir).unwrap();
        std::fs::write(
            module_dir.join("go.mod"),
            format!("module example.com/{dir}\n\ngo 1.21\n\nrequire {require}\n"),
        )
        .unwrap();
    }
    std::fs::write(
        work.path().join("go.work"),
        "go 1.21\n\nuse (\n\t./a\n\t./b\n)\n",
    )
    .unwrap();

    let other = TempDir::new("unused-data");
    let out = warm(
        other.path(),
        &[
            work.path().to_str().unwrap(),
            "--proxy",
            &proxy.url,
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let report = summary(&out);
    assert_eq!(report["failed"], 0, "{report}");
    for f in [
        // a's requirement and, pruned, the requirement of quote's go.mod.
        "rsc.io/quote/@v/v1.5.2.zip",
        "rsc.io/sampler/@v/v1.3.0.zip",
        // b's requirement.
        "golang.org/x/text/@v/v0.3.0.zip",
    ] {
        // Stored just after the answer went out.
        assert!(
            appears_blocking(&data.path().join(f), Duration::from_secs(15)),
            "{f} not in the proxy's store: {:?}",
            files_under(data.path())
        );
    }
    // Through --proxy nothing is written to the local store.
    assert!(
        !files_under(other.path())
            .iter()
            .any(|f| f.ends_with(".zip")),
        "warm --proxy wrote to its own store"
    );
}

#[test]
fn failures_are_reported_with_the_reason_and_a_nonzero_exit() {
    let upstream = RefProxy::start();
    let data = TempDir::new("warm-data");
    let out = warm(
        data.path(),
        &[
            "rsc.io/quote@v1.5.2",
            "example.com/does-not-exist@v1.0.0",
            "--upstream",
            &upstream.url,
            "--sumdb",
            REF_SUMDB,
            "--quiet",
        ],
    );
    let printed = text(&out);
    assert_eq!(out.status.code(), Some(1), "{printed}");
    assert!(
        printed.contains("failed: example.com/does-not-exist/@v/v1.0.0.mod: 404"),
        "{printed}"
    );
    // The good root is still warmed, requirements included.
    let stored = files_under(data.path());
    assert!(
        stored.contains(&"rsc.io/sampler/@v/v1.3.0.zip".to_string()),
        "{stored:?}"
    );

    // A malformed argument is refused before anything is fetched.
    let out = warm(
        data.path(),
        &["Not A Path@v1.0.0", "--upstream", &upstream.url],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("malformed module path"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_toolchain_line_is_warmed_and_the_switch_downloads_with_the_upstream_stopped() {
    let mut upstream = RefProxy::start();
    let project = TempDir::new("toolchain-project");
    std::fs::write(
        project.path().join("go.mod"),
        "module example.com/tc\n\ngo 1.21\n\ntoolchain go1.22.0\n",
    )
    .unwrap();
    let data = TempDir::new("warm-data");
    let out = warm(
        data.path(),
        &[
            project.path().to_str().unwrap(),
            "--json",
            "--upstream",
            &upstream.url,
            "--sumdb",
            REF_SUMDB,
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    // This machine's platform by default (the reference corpus has
    // linux/amd64 toolchains, the machine the suite runs on).
    let zip = "golang.org/toolchain/@v/v0.0.1-go1.22.0.linux-amd64.zip";
    assert!(
        files_under(data.path()).contains(&zip.to_string()),
        "{}\n{:?}",
        text(&out),
        files_under(data.path())
    );

    upstream.stop();
    let proxy = Modproxy::verifying(&upstream.url, data.path(), &[]);
    let go = GoEnv::new().with_env("GOTOOLCHAIN", "go1.22.0");
    let out = go.run(project.path(), &proxy.url, &["version"]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The corpus' toolchain zips hold no bin/go: the go command got past
    // the download (and its verification) when it looks for the binary.
    assert!(
        said.contains("bin/go: no such file"),
        "the toolchain switch did not get past the download:\n{said}\n{}",
        proxy.logs()
    );
}

/// `go list -m all` as the module versions whose files a build
/// downloads: main modules and directory replacements left out, a
/// replaced module as its replacement.
fn go_build_list(dir: &Path, upstream: &str, flags: &[&str]) -> Result<Vec<String>, String> {
    let format = "{{if not .Main}}{{with .Replace}}{{if .Version}}{{.Path}}@{{.Version}}{{end}}{{else}}{{.Path}}@{{.Version}}{{end}}{{end}}";
    let mut args = vec!["list", "-m", "-f", format];
    args.extend_from_slice(flags);
    args.push("all");
    let out = GoEnv::new().run(dir, upstream, &args);
    let said = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let mut list: Vec<String> = said
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    list.sort();
    Ok(list)
}

/// Warms `input` into a fresh store: the module versions whose zips it
/// stored, or its output when it failed.
fn warmed_zips(input: &Path, upstream: &str) -> Result<Vec<String>, String> {
    let data = TempDir::new("warm-list");
    let out = warm(
        data.path(),
        &[
            input.to_str().unwrap(),
            "--toolchain-platforms",
            "none",
            "--upstream",
            upstream,
            "--sumdb",
            REF_SUMDB,
        ],
    );
    if !out.status.success() {
        return Err(text(&out));
    }
    let mut zips: Vec<String> = files_under(data.path())
        .into_iter()
        .filter_map(|f| {
            let (path, version) = f.strip_suffix(".zip")?.split_once("/@v/")?;
            Some(format!("{path}@{version}"))
        })
        .collect();
    zips.sort();
    Ok(zips)
}

/// Writes `files` (relative path, contents) under a new directory.
fn project(label: &str, files: &[(&str, &str)]) -> TempDir {
    let dir = TempDir::new(label);
    for (name, contents) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }
    dir
}

#[test]
fn warm_fetches_the_build_list_go_list_shows() {
    let upstream = RefProxy::start();
    let a = "module example.com/a\n\ngo 1.21\n\nrequire rsc.io/quote v1.5.2\n";
    let cases = [
        (
            // An excluded requirement is dropped (Go ≥ 1.16), unpruned.
            "exclude",
            vec![(
                "go.mod",
                "module m\n\ngo 1.16\n\nrequire rsc.io/quote v1.5.2\n\nexclude rsc.io/sampler v1.3.0\n",
            )],
        ),
        (
            "exclude-main-requirement",
            vec![(
                "go.mod",
                "module m\n\ngo 1.21\n\nrequire (\n\trsc.io/quote v1.5.2\n\tgolang.org/x/text v0.3.0\n)\n\nexclude golang.org/x/text v0.3.0\n",
            )],
        ),
        (
            "replace",
            vec![(
                "go.mod",
                "module m\n\ngo 1.21\n\nrequire rsc.io/quote v1.5.2\n\nreplace rsc.io/sampler => rsc.io/sampler v1.99.99\n",
            )],
        ),
        (
            // The go.work replaces sampler at v1.3.0 only: the selected
            // v1.3.1 (b's requirement) takes a's replacement of every
            // sampler version.
            "workspace",
            vec![
                (
                    "go.work",
                    "go 1.21\n\nuse (\n\t./a\n\t./b\n)\n\nreplace rsc.io/sampler v1.3.0 => rsc.io/sampler v1.3.1\n",
                ),
                (
                    "a/go.mod",
                    "module example.com/a\n\ngo 1.21\n\nrequire rsc.io/quote v1.5.2\n\nreplace rsc.io/sampler => rsc.io/sampler v1.99.99\n",
                ),
                (
                    "b/go.mod",
                    "module example.com/b\n\ngo 1.21\n\nrequire (\n\tgolang.org/x/text v0.3.0\n\trsc.io/sampler v1.3.1\n)\n",
                ),
            ],
        ),
        (
            "workspace-same-replacement",
            vec![
                ("go.work", "go 1.21\n\nuse (\n\t./a\n\t./b\n)\n"),
                (
                    "a/go.mod",
                    "module example.com/a\n\ngo 1.21\n\nrequire rsc.io/quote v1.5.2\n\nreplace rsc.io/sampler => rsc.io/sampler v1.3.1\n",
                ),
                (
                    "b/go.mod",
                    "module example.com/b\n\ngo 1.21\n\nreplace rsc.io/sampler => rsc.io/sampler v1.3.1\n",
                ),
            ],
        ),
        ("plain", vec![("go.mod", a)]),
    ];
    for (label, files) in cases {
        let dir = project(label, &files);
        let workspace = files.iter().any(|(n, _)| *n == "go.work");
        // Warmed first: `go list -mod=mod` rewrites the go.mod.
        let warmed = warmed_zips(dir.path(), &upstream.url);
        let flags: &[&str] = if workspace { &[] } else { &["-mod=mod"] };
        let listed = go_build_list(dir.path(), &upstream.url, flags);
        assert_eq!(warmed, listed, "{label}: warm (left) vs go list -m all");
        assert!(listed.is_ok_and(|l| !l.is_empty()), "{label}");
    }

    // Two modules of a workspace replacing one module differently: an
    // error for both, with the go command's words.
    let conflict = project(
        "conflict",
        &[
            ("go.work", "go 1.21\n\nuse (\n\t./a\n\t./b\n)\n"),
            (
                "a/go.mod",
                "module example.com/a\n\ngo 1.21\n\nrequire rsc.io/quote v1.5.2\n\nreplace rsc.io/sampler => rsc.io/sampler v1.99.99\n",
            ),
            (
                "b/go.mod",
                "module example.com/b\n\ngo 1.21\n\nreplace rsc.io/sampler => rsc.io/sampler v1.3.1\n",
            ),
        ],
    );
    let go_said = go_build_list(conflict.path(), &upstream.url, &[]).unwrap_err();
    let warm_said = warmed_zips(conflict.path(), &upstream.url).unwrap_err();
    for said in [&go_said, &warm_said] {
        assert!(
            said.contains("conflicting replacements for rsc.io/sampler"),
            "{said}"
        );
    }
}
