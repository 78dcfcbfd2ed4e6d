//! `direct`: modules fetched from real git repositories made by the test,
//! checked against the go command in direct mode on the same
//! repositories. For every case, the version and the `h1:` hashes of the
//! zip and the go.mod the go command gets through modproxy must equal the
//! ones it computes itself with `GOPROXY=direct`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{get_status, modproxy_command, GoEnv, Modproxy, TempDir};

/// Test repositories under `root`, reached as `https://github.com/acme/NAME`
/// through git's `insteadOf` in a test-only global git configuration.
pub(crate) struct Repos {
    dir: TempDir,
    pub(crate) config: PathBuf,
    /// Seconds since the epoch for the next commit.
    clock: std::cell::Cell<u64>,
}

impl Repos {
    pub(crate) fn new() -> Repos {
        let dir = TempDir::new("repos");
        let config = dir.path().join("gitconfig");
        std::fs::write(&config, "[protocol \"file\"]\n\tallow = always\n").unwrap();
        Repos {
            dir,
            config,
            clock: std::cell::Cell::new(1_700_000_000),
        }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A new repository `name`, mapped from `https://github.com/acme/NAME`.
    pub(crate) fn create(&self, name: &str) -> PathBuf {
        let dir = self.path(name);
        std::fs::create_dir_all(&dir).unwrap();
        self.git(&dir, &["init", "--quiet", "-b", "main"]);
        self.map(
            &format!("https://github.com/acme/{name}"),
            &format!("file://{}", dir.display()),
        );
        dir
    }

    /// `url` is fetched from `to` instead.
    pub(crate) fn map(&self, url: &str, to: &str) {
        let mut text = std::fs::read_to_string(&self.config).unwrap();
        text.push_str(&format!("[url \"{to}\"]\n\tinsteadOf = {url}\n"));
        std::fs::write(&self.config, text).unwrap();
    }

    /// Runs git in `dir` with fixed identities and a commit clock that
    /// moves a minute per commit.
    pub(crate) fn git(&self, dir: &Path, args: &[&str]) -> String {
        let date = format!("{} +0000", self.clock.get());
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", &self.config)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Test")
            .env("GIT_AUTHOR_EMAIL", "test@example.com")
            .env("GIT_COMMITTER_NAME", "Test")
            .env("GIT_COMMITTER_EMAIL", "test@example.com")
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date)
            .output()
            .expect("run git");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Writes `files` (path, content; `None` removes) and commits; the hash.
    pub(crate) fn commit(&self, dir: &Path, files: &[(&str, Option<&str>)]) -> String {
        for (path, content) in files {
            let p = dir.join(path);
            match content {
                Some(c) => {
                    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                    std::fs::write(&p, c).unwrap();
                }
                None => {
                    let _ = std::fs::remove_file(&p);
                }
            }
        }
        self.clock.set(self.clock.get() + 60);
        self.git(dir, &["add", "-A"]);
        self.git(dir, &["commit", "--quiet", "--allow-empty", "-m", "change"]);
        self.git(dir, &["rev-parse", "HEAD"])
    }

    pub(crate) fn tag(&self, dir: &Path, tag: &str) {
        self.git(dir, &["tag", tag]);
    }
}

/// The fields of `go mod download -json` that must agree.
#[derive(Debug, PartialEq)]
pub(crate) struct Downloaded {
    version: String,
    sum: String,
    go_mod_sum: String,
}

/// `go mod download -json QUERIES…` with `GOPROXY=goproxy`: query → result
/// (or the error go reported for it).
pub(crate) fn download(
    go: &GoEnv,
    goproxy: &str,
    queries: &[String],
) -> BTreeMap<String, Result<Downloaded, String>> {
    let dir = TempDir::new("nomodule");
    let mut args = vec!["mod", "download", "-json"];
    args.extend(queries.iter().map(String::as_str));
    let out = go.run(dir.path(), goproxy, &args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut results = BTreeMap::new();
    let stream = serde_json::Deserializer::from_str(&stdout).into_iter::<serde_json::Value>();
    for v in stream {
        let v = v.unwrap_or_else(|e| {
            panic!(
                "go printed no JSON ({e}):\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let field = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        // `Query` is left out when it is the version itself.
        let asked = Some(field("Query"))
            .filter(|q| !q.is_empty())
            .unwrap_or_else(|| field("Version"));
        let query = format!("{}@{asked}", field("Path"));
        let result = match v["Error"].as_str() {
            Some(e) => Err(e.to_string()),
            None => Ok(Downloaded {
                version: field("Version"),
                sum: field("Sum"),
                go_mod_sum: field("GoModSum"),
            }),
        };
        results.insert(query, result);
    }
    results
}

/// The go command with the test repositories' git configuration, no
/// checksum database.
/// Asserts that modproxy (`through`) said of every query what the go
/// command said in direct mode (`direct`, every one a success).
pub(crate) fn assert_as_direct(
    queries: &[String],
    direct: &BTreeMap<String, Result<Downloaded, String>>,
    through: &BTreeMap<String, Result<Downloaded, String>>,
    proxy: &Modproxy,
) {
    for query in queries {
        let want = direct[query]
            .as_ref()
            .unwrap_or_else(|e| panic!("go direct: {query}: {e}"));
        assert_eq!(
            through.get(query).map(Result::as_ref),
            Some(Ok(want)),
            "{query}\n{}",
            proxy.logs()
        );
    }
}

pub(crate) fn go_env(repos: &Repos) -> GoEnv {
    GoEnv::new()
        .with_env("GIT_CONFIG_GLOBAL", repos.config.to_str().unwrap())
        .with_env("GIT_CONFIG_NOSYSTEM", "1")
        .with_env("GOSUMDB", "off")
        .with_env("GOFLAGS", "-modcacherw")
}

/// modproxy with `direct` as its only upstream and the test repositories'
/// git configuration.
pub(crate) fn direct_proxy(repos: &Repos, data: &Path, extra: &[&str]) -> Modproxy {
    // The repositories are behind git's insteadOf: github.com itself does
    // not resolve on this machine, and the address policy refuses a name
    // whose addresses it cannot check, unless the host is allowed.
    let mut args = vec![
        "--upstream",
        "direct",
        "--sumdb",
        "off",
        "--allow-internal",
        "github.com",
    ];
    args.extend_from_slice(extra);
    let mut cmd = modproxy_command(data, &args);
    cmd.env("GIT_CONFIG_GLOBAL", &repos.config)
        .env("GIT_CONFIG_NOSYSTEM", "1");
    Modproxy::spawn(cmd).expect("modproxy starts")
}

/// Every layout the issue lists, in four repositories; the queries to
/// compare.
fn layouts(repos: &Repos) -> Vec<String> {
    let mut queries = Vec::new();
    let mut q = |s: String| queries.push(s);

    // widget: a root module with tags, prerelease tags, branches, and files
    // the zip rules leave out.
    let w = repos.create("widget");
    let gomod = "module github.com/acme/widget\n\ngo 1.21\n";
    let before_tags = repos.commit(
        &w,
        &[
            ("go.mod", Some(gomod)),
            ("widget.go", Some("package widget\n")),
            ("LICENSE", Some("widget license\n")),
        ],
    );
    q(format!("github.com/acme/widget@{before_tags}"));
    repos.commit(
        &w,
        &[
            (
                "nested/go.mod",
                Some("module github.com/acme/widget/nested\n"),
            ),
            ("nested/n.go", Some("package nested\n")),
            ("vendor/modules.txt", Some("# example.com/v v1.0.0\n")),
            ("vendor/example.com/v/v.go", Some("package v\n")),
            ("pkg/vendor/vendor.go", Some("package vendor\n")),
            (".hg/hgrc", Some("[paths]\n")),
            ("sub/.git/config", Some("[core]\n")),
        ],
    );
    std::os::unix::fs::symlink("widget.go", w.join("link.go")).unwrap();
    repos.commit(&w, &[]);
    repos.tag(&w, "v1.0.0");
    q("github.com/acme/widget@v1.0.0".into());
    let after_release = repos.commit(&w, &[("a.go", Some("package widget // a\n"))]);
    q(format!("github.com/acme/widget@{}", &after_release[..7]));
    repos.commit(&w, &[("b.go", Some("package widget // b\n"))]);
    repos.tag(&w, "v1.1.0-rc.1");
    q("github.com/acme/widget@v1.1.0-rc.1".into());
    let after_pre = repos.commit(&w, &[("c.go", Some("package widget // c\n"))]);
    q(format!("github.com/acme/widget@{after_pre}"));
    repos.git(&w, &["checkout", "--quiet", "-b", "feature"]);
    repos.commit(&w, &[("feature.go", Some("package widget // feature\n"))]);
    repos.git(&w, &["checkout", "--quiet", "main"]);
    q("github.com/acme/widget@feature".into());
    q("github.com/acme/widget@latest".into());

    // multi: modules in subdirectories with prefixed tags, /v2 in a
    // subdirectory, the LICENSE only at the root, vendor rules of go 1.24.
    let m = repos.create("multi");
    repos.commit(
        &m,
        &[
            ("LICENSE", Some("multi license\n")),
            ("README", Some("root\n")),
            (
                "sub/go.mod",
                Some("module github.com/acme/multi/sub\n\ngo 1.24\n"),
            ),
            ("sub/s.go", Some("package sub\n")),
            ("sub/vendor/modules.txt", Some("# example.com/v v1.0.0\n")),
            ("sub/vendor/example.com/v/v.go", Some("package v\n")),
            ("sub/pkg/vendor/vendor.go", Some("package vendor\n")),
        ],
    );
    repos.tag(&m, "sub/v1.0.0");
    q("github.com/acme/multi/sub@v1.0.0".into());
    repos.commit(
        &m,
        &[
            (
                "sub/v2/go.mod",
                Some("module github.com/acme/multi/sub/v2\n\ngo 1.22\n"),
            ),
            ("sub/v2/s.go", Some("package sub\n")),
        ],
    );
    repos.tag(&m, "sub/v1.1.0-pre");
    repos.tag(&m, "sub/v2.0.0");
    q("github.com/acme/multi/sub@v1.1.0-pre".into());
    q("github.com/acme/multi/sub/v2@v2.0.0".into());
    q("github.com/acme/multi/sub@latest".into());

    // old: no go.mod anywhere; v2+ tags are +incompatible.
    let o = repos.create("old");
    repos.commit(&o, &[("old.go", Some("package old\n"))]);
    repos.tag(&o, "v1.0.0");
    repos.commit(&o, &[("old2.go", Some("package old // 2\n"))]);
    repos.tag(&o, "v2.0.0");
    q("github.com/acme/old@v1.0.0".into());
    q("github.com/acme/old@v2.0.0+incompatible".into());
    q("github.com/acme/old@latest".into());

    // major: /v2 at the root.
    let j = repos.create("major");
    repos.commit(
        &j,
        &[
            ("go.mod", Some("module github.com/acme/major\n")),
            ("m.go", Some("package major\n")),
        ],
    );
    repos.tag(&j, "v1.0.0");
    repos.commit(
        &j,
        &[(
            "go.mod",
            Some("module github.com/acme/major/v2\n\ngo 1.20\n"),
        )],
    );
    repos.tag(&j, "v2.0.0");
    q("github.com/acme/major@v1.0.0".into());
    q("github.com/acme/major/v2@v2.0.0".into());
    let v2_next = repos.commit(&j, &[("n.go", Some("package major // next\n"))]);
    q(format!("github.com/acme/major/v2@{}", &v2_next[..12]));
    queries
}

#[test]
fn versions_and_hashes_equal_the_go_command_in_direct_mode() {
    let repos = Repos::new();
    let queries = layouts(&repos);

    let direct = download(&go_env(&repos), "direct", &queries);
    let data = TempDir::new("data");
    let proxy = direct_proxy(&repos, data.path(), &[]);
    let through = download(&go_env(&repos), &proxy.url, &queries);

    assert_eq!(direct.len(), queries.len(), "{direct:#?}");
    for query in &queries {
        let want = direct
            .get(query)
            .unwrap_or_else(|| panic!("go printed nothing for {query}"));
        let want = want
            .as_ref()
            .unwrap_or_else(|e| panic!("go direct failed for {query}: {e}"));
        let got = through
            .get(query)
            .unwrap_or_else(|| panic!("nothing through modproxy for {query}"));
        assert_eq!(got.as_ref(), Ok(want), "{query}");
    }
    // The cases exercise what they say.
    let version = |q: &str| direct[q].as_ref().unwrap().version.clone();
    assert!(
        version(&queries[0]).starts_with("v0.0.0-"),
        "{}",
        version(&queries[0])
    );
    assert!(version("github.com/acme/widget@feature").starts_with("v1.1.0-rc.1.0."));
    assert_eq!(version("github.com/acme/old@latest"), "v2.0.0+incompatible");
    assert_eq!(version("github.com/acme/multi/sub@latest"), "v1.0.0");

    // The .info has the commit time and where it came from.
    let info: serde_json::Value = serde_json::from_str(&crate::util::get_text(&format!(
        "{}/github.com/acme/widget/@v/v1.0.0.info",
        proxy.url
    )))
    .unwrap();
    assert_eq!(info["Origin"]["VCS"], "git");
    assert_eq!(info["Origin"]["URL"], "https://github.com/acme/widget");
    assert_eq!(info["Origin"]["Ref"], "refs/tags/v1.0.0");
    assert!(
        info["Time"].as_str().unwrap().starts_with("2023-11-14T"),
        "{info}"
    );
}

#[test]
fn each_version_fetches_its_own_commit_into_one_shallow_mirror() {
    let repos = Repos::new();
    let w = repos.create("lib");
    repos.commit(
        &w,
        &[
            ("go.mod", Some("module github.com/acme/lib\n")),
            ("l.go", Some("package lib\n")),
        ],
    );
    repos.tag(&w, "v1.0.0");
    repos.commit(&w, &[("l2.go", Some("package lib // 2\n"))]);
    repos.tag(&w, "v1.1.0");
    let data = TempDir::new("data");
    let proxy = direct_proxy(&repos, data.path(), &[]);
    let go = go_env(&repos);
    let first = download(&go, &proxy.url, &["github.com/acme/lib@v1.0.0".into()]);
    assert!(first["github.com/acme/lib@v1.0.0"].is_ok(), "{first:?}");
    // Names only: git's revision syntax is not a version.
    for rev in ["v1.1.0~1", "v1.1.0%5E"] {
        let (status, body) =
            get_status(&format!("{}/github.com/acme/lib/@v/{rev}.info", proxy.url));
        assert_eq!(status, 404, "{rev}: {body}");
    }
    let mirrors: Vec<std::path::PathBuf> = std::fs::read_dir(data.path().join(".vcs"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_dir() && e.file_name() != "tmp")
        .map(|e| e.path())
        .collect();
    assert_eq!(mirrors.len(), 1, "{mirrors:?}");
    // The tag's commit alone (depth 1), not the repository's history.
    assert!(
        mirrors[0].join("shallow").exists(),
        "the first version fetched the whole history"
    );
    // The second version is fetched into the same mirror.
    let second = download(&go, &proxy.url, &["github.com/acme/lib@v1.1.0".into()]);
    assert!(
        second["github.com/acme/lib@v1.1.0"].is_ok(),
        "{second:?}\n{}",
        proxy.logs()
    );
    let count = std::fs::read_dir(data.path().join(".vcs"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_dir() && e.file_name() != "tmp")
        .count();
    assert_eq!(count, 1);
}

#[test]
fn git_mirrors_count_toward_the_budget_and_gc_evicts_them() {
    let repos = Repos::new();
    let w = repos.create("evictme");
    repos.commit(
        &w,
        &[
            ("go.mod", Some("module github.com/acme/evictme\n")),
            ("e.go", Some("package evictme\n")),
        ],
    );
    repos.tag(&w, "v1.0.0");
    let data = TempDir::new("data");
    let proxy = direct_proxy(&repos, data.path(), &[]);
    let query = "github.com/acme/evictme@v1.0.0".to_string();
    let first = download(&go_env(&repos), &proxy.url, std::slice::from_ref(&query));
    assert!(first[&query].is_ok(), "{first:?}");

    let (ok, out) = crate::util::run_modproxy("stats", data.path(), &[], &[]);
    assert!(ok && out.contains("git mirrors: 1 ("), "{out}");
    let (ok, out) = crate::util::run_modproxy("gc", data.path(), &["--max-size", "1B"], &[]);
    assert!(
        ok && out.contains("evicted git mirror of https://github.com/acme/evictme"),
        "{out}"
    );
    let mirrors = std::fs::read_dir(data.path().join(".vcs"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_dir() && e.file_name() != "tmp")
        .count();
    assert_eq!(mirrors, 0, "{out}");
    // The running proxy makes the mirror again when it needs it.
    let again = download(&go_env(&repos), &proxy.url, std::slice::from_ref(&query));
    assert_eq!(again[&query], first[&query], "{}", proxy.logs());
}
