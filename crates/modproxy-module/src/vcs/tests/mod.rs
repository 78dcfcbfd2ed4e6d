//! Tests for `vcs.rs`, ported from Go's `cmd/go/internal/vcs/vcs_test.go`
//! and `discovery_test.go` (the cases that apply to git), plus cases
//! checked against Go's own regexps and `parseMetaGoImports`.

use super::*;

mod meta;
mod roots;

fn git(root: &str, repo: &str) -> RepoRoot {
    RepoRoot {
        root: root.into(),
        repo: repo.into(),
        vcs: Vcs::Git,
        subdir: None,
    }
}

fn known(path: &str) -> Option<Result<RepoRoot, String>> {
    known_host(path, false).map(|r| r.map_err(|e| e.to_string()))
}

fn mi(prefix: &str, vcs: &str, repo: &str, subdir: &str) -> MetaImport {
    MetaImport {
        prefix: prefix.into(),
        vcs: vcs.into(),
        repo_root: repo.into(),
        subdir: (!subdir.is_empty()).then(|| subdir.into()),
    }
}

/// TestRepoRootForImportPath: paths with a known host and their repository.
#[test]
fn known_hosts() {
    let cases = [
        (
            "github.com/golang/groupcache",
            "github.com/golang/groupcache",
            "https://github.com/golang/groupcache",
        ),
        (
            "github.com/acme/widget/sub/v2",
            "github.com/acme/widget",
            "https://github.com/acme/widget",
        ),
        (
            "github.com/a_b/c-d.e",
            "github.com/a_b/c-d.e",
            "https://github.com/a_b/c-d.e",
        ),
        (
            "hub.jazz.net/git/user1/pkgname",
            "hub.jazz.net/git/user1/pkgname",
            "https://hub.jazz.net/git/user1/pkgname",
        ),
        (
            "hub.jazz.net/git/user1/pkgname/submodule/submodule/submodule",
            "hub.jazz.net/git/user1/pkgname",
            "https://hub.jazz.net/git/user1/pkgname",
        ),
        (
            "hub.jazz.net/git/user/pkg.name",
            "hub.jazz.net/git/user/pkg.name",
            "https://hub.jazz.net/git/user/pkg.name",
        ),
        (
            "git.openstack.org/openstack/swift",
            "git.openstack.org/openstack/swift",
            "https://git.openstack.org/openstack/swift",
        ),
        (
            "git.openstack.org/openstack/swift.git",
            "git.openstack.org/openstack/swift.git",
            "https://git.openstack.org/openstack/swift.git",
        ),
        (
            "git.openstack.org/openstack/swift/go/hummingbird",
            "git.openstack.org/openstack/swift",
            "https://git.openstack.org/openstack/swift",
        ),
        (
            "git.apache.org/package-name.git",
            "git.apache.org/package-name.git",
            "https://git.apache.org/package-name.git",
        ),
        (
            "git.apache.org/package-name_2.x.git/path/to/lib",
            "git.apache.org/package-name_2.x.git",
            "https://git.apache.org/package-name_2.x.git",
        ),
        (
            "bitbucket.org/workspace/pkgname",
            "bitbucket.org/workspace/pkgname",
            "https://bitbucket.org/workspace/pkgname",
        ),
        (
            "bitbucket.org/workspace/pkgname/x/y",
            "bitbucket.org/workspace/pkgname",
            "https://bitbucket.org/workspace/pkgname",
        ),
    ];
    for (path, root, repo) in cases {
        assert_eq!(known(path), Some(Ok(git(root, repo))), "{path}");
    }
}

/// TestRepoRootForImportPath: paths of a known host that Go rejects.
#[test]
fn known_host_errors() {
    let cases = [
        // Unicode letters in directories are not valid.
        ("github.com/user/unicode/испытание", "invalid github.com import path \"github.com/user/unicode/испытание\""),
        ("github.com", "invalid github.com import path \"github.com\""),
        ("github.com/user", "invalid github.com import path \"github.com/user\""),
        ("github.com/user/repo/", "invalid github.com import path \"github.com/user/repo/\""),
        ("github.com/user/repo.git", "invalid version control suffix in github.com/ path"),
        ("github.com/user/repo.git/sub", "invalid version control suffix in github.com/ path"),
        ("bitbucket.org/user/repo.hg", "invalid version control suffix in bitbucket.org/ path"),
        ("hub.jazz.net/git", "invalid hub.jazz.net/git import path \"hub.jazz.net/git\""),
        // Spaces are not valid in user names or package names.
        ("hub.jazz.net/git/User 1/pkgname", "invalid hub.jazz.net/git import path \"hub.jazz.net/git/User 1/pkgname\""),
        ("hub.jazz.net/git/user1/pkg name", "invalid hub.jazz.net/git import path \"hub.jazz.net/git/user1/pkg name\""),
        // Dots are not valid in user names; nor are upper-case letters.
        ("hub.jazz.net/git/user.1/pkgname", "invalid hub.jazz.net/git import path \"hub.jazz.net/git/user.1/pkgname\""),
        ("hub.jazz.net/git/USER/pkgname", "invalid hub.jazz.net/git import path \"hub.jazz.net/git/USER/pkgname\""),
        ("git.openstack.org", "invalid git.openstack.org import path \"git.openstack.org\""),
        ("git.openstack.org/openstack", "invalid git.openstack.org import path \"git.openstack.org/openstack\""),
        // Spaces are not valid; the package must have a .git suffix.
        (
            "git.apache.org/package name/path/to/lib",
            "invalid git.apache.org import path \"git.apache.org/package name/path/to/lib\"",
        ),
        (
            "git.apache.org/package-name/path/to/lib",
            "invalid git.apache.org import path \"git.apache.org/package-name/path/to/lib\"",
        ),
        ("git.apache.org/.git", "invalid git.apache.org import path \"git.apache.org/.git\""),
        // chiselapp is fossil, which this proxy does not fetch.
        (
            "chiselapp.com/user/kyle/repository/fossilgg",
            "chiselapp.com/user/kyle/repository/fossilgg: version control system fossil is not supported (only git repositories can be fetched)",
        ),
        // It must have a user/$name/repository/$repo path.
        ("chiselapp.com/kyle/repository/fossilgg", "invalid chiselapp.com import path \"chiselapp.com/kyle/repository/fossilgg\""),
        ("chiselapp.com/user/kyle/fossilgg", "invalid chiselapp.com import path \"chiselapp.com/user/kyle/fossilgg\""),
        // Go's special cases and the https:// mistake.
        ("example.net/foo", "no modules on example.net"),
        ("example.net", "no modules on example.net"),
        ("rsc.io", "rsc.io is not a module"),
        ("https:/github.com/x/y", "\"https://\" not allowed in import path"),
        ("http:/example.com/x", "\"http://\" not allowed in import path"),
    ];
    for (path, want) in cases {
        assert_eq!(known(path), Some(Err(want.to_string())), "{path}");
    }
}

/// Paths that need the ?go-get=1 discovery.
#[test]
fn unknown_hosts() {
    for path in [
        "hub.jazz.net",
        "hubajazz.net",
        "hub2.jazz.net",
        "hub.jazz.net/someotherprefix",
        "hub.jazz.net/someotherprefix/user1/pkgname",
        "gitbapache.org",
        "github.com.evil.example/a/b",
        "golang.org/x/tools",
        "example.com/repo.gitx/sub",
        "example.com/.git",
        "example.com/~.git",
        "example.com/repo.git/",
        "example.com/a//b.git",
        "localhost/repo.git",
        "example.com:/repo.git",
        "example.com:x/repo.git",
        "rsc.io/quote",
        "example.netx/foo",
    ] {
        assert_eq!(known(path), None, "{path}");
    }
}

/// The qualifier rule: root keeps the `.git`, the repository URL drops it.
#[test]
fn qualified_paths() {
    let cases = [
        (
            "example.com/path/repo.git/sub",
            "example.com/path/repo.git",
            "example.com/path/repo",
        ),
        (
            "example.com/repo.git",
            "example.com/repo.git",
            "example.com/repo",
        ),
        (
            "example.com:8080/repo.git/x",
            "example.com:8080/repo.git",
            "example.com:8080/repo",
        ),
        (
            "example.com/~user/repo.git",
            "example.com/~user/repo.git",
            "example.com/~user/repo",
        ),
        (
            "example.com/~repo.git",
            "example.com/~repo.git",
            "example.com/~repo",
        ),
        // The deepest element with a suffix wins.
        (
            "example.com/a.git/b.git/c",
            "example.com/a.git/b.git",
            "example.com/a.git/b",
        ),
        (
            "example.com/a.hg.git",
            "example.com/a.hg.git",
            "example.com/a.hg",
        ),
        (
            "example.com/a.git.git",
            "example.com/a.git.git",
            "example.com/a.git",
        ),
        ("a.b./x_y.git", "a.b./x_y.git", "a.b./x_y"),
        ("..b/x.git", "..b/x.git", "..b/x"),
        (
            "my-host.example.com/Org/Repo.git/v2",
            "my-host.example.com/Org/Repo.git",
            "my-host.example.com/Org/Repo",
        ),
    ];
    for (path, root, repo) in cases {
        assert_eq!(
            known(path),
            Some(Ok(git(root, &format!("https://{repo}")))),
            "{path}"
        );
        let insecure = known_host(path, true).map(|r| r.unwrap());
        assert_eq!(
            insecure,
            Some(git(root, &format!("http://{repo}"))),
            "{path}"
        );
    }
    let errors = [
        ("example.com/repo.hg", "example.com/repo.hg: version control system hg is not supported (only git repositories can be fetched)"),
        ("example.com/a.git/b.svn", "example.com/a.git/b.svn: version control system svn is not supported (only git repositories can be fetched)"),
        ("example.com/repo.fossil/x", "example.com/repo.fossil: version control system fossil is not supported (only git repositories can be fetched)"),
        // Go's regexp is not anchored at the start: these match further in,
        // which Go only rejects later (modfetch.newCodeRepo).
        ("example.com/a~b.c/x.git", "mismatched repo: found b.c/x.git for example.com/a~b.c/x.git"),
        ("Example.com/x.git", "mismatched repo: found xample.com/x.git for Example.com/x.git"),
        ("example/foo.com/bar.git", "mismatched repo: found foo.com/bar.git for example/foo.com/bar.git"),
        ("example.com/a...b/c.git", "cannot expand ... in \"example.com/a...b/c.git\""),
    ];
    for (path, want) in errors {
        assert_eq!(known(path), Some(Err(want.to_string())), "{path}");
    }
}
