//! Repository roots and subdirectories: validation, roots from meta
//! tags, path prefixes.

use super::*;

/// vcs_test.go: TestValidateRepoRoot, and net/url's verdicts.
#[test]
fn validate_repo_roots() {
    let cases = [
        ("", false),
        ("http://", true),
        ("git+ssh://", true),
        ("http#://", false),
        ("-config", false),
        ("-config://", false),
        ("https://example.com/repo", true),
        ("HTTPS://example.com/repo", true),
        ("ssh://git@example.com:22/repo.git", true),
        ("git@example.com:repo.git", false),
        ("file:///tmp/repo", false),
        ("FILE:///tmp/repo", false),
        ("https://[::1]:8080/x", true),
        ("https://[fe80::1%25en0]/x", true),
        ("https://[1.2.3.4]/x", false),
        ("https://[::1/x", false),
        ("https://a[b/x", false),
        ("https://example.com:80:80/x", false),
        ("ssh://a:b:22/x", true),
        ("https://example.com:x/", false),
        ("https://exa mple.com/", false),
        ("https://example.com/a%zz", false),
        ("https://ex%41mple.com/", false),
        ("https://example.com/x#%zz", false),
        ("https://us er@example.com/", false),
        ("https://example.com/\n", false),
        (":foo", false),
        ("mailto:x", true),
    ];
    for (root, ok) in cases {
        assert_eq!(
            validate_repo_root(root).is_ok(),
            ok,
            "{root:?}: {:?}",
            validate_repo_root(root)
        );
    }
    assert_eq!(validate_repo_root(""), Err("no scheme".into()));
    assert_eq!(
        validate_repo_root("file:///x"),
        Err("file scheme disallowed".into())
    );
    assert_eq!(
        validate_repo_root("-config://"),
        Err("parse \"-config://\": first path segment in URL cannot contain colon".into())
    );
    assert_eq!(
        validate_repo_root("https://example.com/%zz"),
        Err("parse \"https://example.com/%zz\": invalid URL escape \"%zz\"".into())
    );
}

/// vcs_test.go: TestValidateRepoSubDir.
#[test]
fn validate_repo_subdirs() {
    assert_eq!(validate_repo_subdir(""), Ok(()));
    assert_eq!(validate_repo_subdir("sub/dir"), Ok(()));
    assert_eq!(
        validate_repo_subdir("/leading/slash"),
        Err("leading slash".into())
    );
    assert_eq!(
        validate_repo_subdir("-leading/hyphen"),
        Err("leading hyphen".into())
    );
}

#[test]
fn repo_roots_from_meta() {
    let path = "example.com/user/foo/v2";
    let from = |m: &MetaImport| repo_root_from_meta(path, m).map_err(|e| e.to_string());
    assert_eq!(
        from(&mi(
            "example.com/user/foo",
            "git",
            "https://example.com/repo",
            ""
        )),
        Ok(git("example.com/user/foo", "https://example.com/repo"))
    );
    assert_eq!(
        from(&mi(
            "example.com/user/foo",
            "git",
            "https://example.com/repo",
            "go/foo"
        )),
        Ok(RepoRoot {
            subdir: Some("go/foo".into()),
            ..git("example.com/user/foo", "https://example.com/repo")
        })
    );
    assert_eq!(
        from(&mi("example.com", "mod", "https://proxy.example/", "")),
        Ok(RepoRoot {
            root: "example.com".into(),
            repo: "https://proxy.example/".into(),
            vcs: Vcs::Mod,
            subdir: None,
        })
    );
    let errors = [
        (mi("example.com", "git", "https://x/", "/abs"), "invalid subdirectory \"/abs\": leading slash"),
        (mi("example.com", "git", "https://x/", "-x"), "invalid subdirectory \"-x\": leading hyphen"),
        (mi("example.com", "git", "example.com/repo", ""), "invalid repo root \"example.com/repo\": no scheme"),
        (mi("example.com", "git", "file:///repo", ""), "invalid repo root \"file:///repo\": file scheme disallowed"),
        (mi("example.com", "bzr", "https://x/", ""), "unknown vcs \"bzr\""),
        (
            mi("example.com", "hg", "https://x/", ""),
            "example.com: version control system hg is not supported (only git repositories can be fetched)",
        ),
    ];
    for (m, want) in errors {
        assert_eq!(from(&m), Err(want.to_string()), "{m:?}");
    }
    let wild = mi("example.com/a...b", "git", "https://x/", "");
    assert_eq!(
        repo_root_from_meta("example.com/a...b/c", &wild).map_err(|e| e.to_string()),
        Err("cannot expand ... in \"example.com/a...b/c\"".into())
    );
}

#[test]
fn path_prefixes() {
    assert!(has_path_prefix("a/b", "a"));
    assert!(has_path_prefix("a/b", "a/"));
    assert!(has_path_prefix("a", "a"));
    assert!(has_path_prefix("a", ""));
    assert!(!has_path_prefix("ab", "a"));
    assert!(!has_path_prefix("a", "a/b"));
}
