//! Tests for `vcs.rs`, ported from Go's `cmd/go/internal/vcs/vcs_test.go`
//! and `discovery_test.go` (the cases that apply to git), plus cases
//! checked against Go's own regexps and `parseMetaGoImports`.

use super::*;

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

#[test]
fn meta_url_forms() {
    let urls = |p: &str, insecure| meta_urls(p, insecure).map_err(|e| e.to_string());
    assert_eq!(
        urls("example.com/a/b/v2", false),
        Ok(vec!["https://example.com/a/b/v2?go-get=1".to_string()])
    );
    assert_eq!(
        urls("example.com", true),
        Ok(vec![
            "https://example.com/?go-get=1".to_string(),
            "http://example.com/?go-get=1".to_string()
        ])
    );
    assert_eq!(
        urls("example.com:8080/x y?/~a!", false),
        Ok(vec![
            "https://example.com:8080/x%20y%3F/~a%21?go-get=1".to_string()
        ])
    );
    assert_eq!(
        urls("example.com/é", false),
        Ok(vec!["https://example.com/%C3%A9?go-get=1".to_string()])
    );
    assert_eq!(
        urls("ex ample.com/a#b%c", false),
        Ok(vec!["https://ex%20ample.com/a%23b%25c?go-get=1".to_string()])
    );
    for p in ["localhost/x", "", "x/y.z"] {
        assert_eq!(
            urls(p, false),
            Err("import path does not begin with hostname".to_string()),
            "{p}"
        );
    }
}

/// discovery_test.go: parseMetaGoImportsTests.
#[test]
fn parse_meta_imports_go_cases() {
    let foo = || mi("foo/bar", "git", "https://github.com/rsc/foo/bar", "");
    let myitcv = r#"<meta name="go-import" content="myitcv.io git https://github.com/myitcv/x">
	        <meta name="go-import" content="myitcv.io/blah2 mod https://raw.githubusercontent.com/myitcv/pubx/master">
	        "#;
    let cases: Vec<(&str, bool, Vec<MetaImport>)> = vec![
        (
            r#"<meta name="go-import" content="foo/bar git https://github.com/rsc/foo/bar">"#,
            false,
            vec![foo()],
        ),
        (
            r#"<meta name="go-import" content="foo/bar git https://github.com/rsc/foo/bar">
		<meta name="go-import" content="baz/quux git http://github.com/rsc/baz/quux">"#,
            false,
            vec![
                foo(),
                mi("baz/quux", "git", "http://github.com/rsc/baz/quux", ""),
            ],
        ),
        (
            r#"<meta name="go-import" content="foo/bar git https://github.com/rsc/foo/bar">
		<meta name="go-import" content="foo/bar mod http://github.com/rsc/baz/quux">"#,
            false,
            vec![foo()],
        ),
        (
            r#"<meta name="go-import" content="foo/bar mod http://github.com/rsc/baz/quux">
		<meta name="go-import" content="foo/bar git https://github.com/rsc/foo/bar">"#,
            false,
            vec![foo()],
        ),
        (
            r#"<meta name="go-import" content="foo/bar mod http://github.com/rsc/baz/quux">
		<meta name="go-import" content="foo/bar git https://github.com/rsc/foo/bar">"#,
            true,
            vec![mi("foo/bar", "mod", "http://github.com/rsc/baz/quux", "")],
        ),
        (
            r#"<head>
		<meta name="go-import" content="foo/bar git https://github.com/rsc/foo/bar">
		</head>"#,
            false,
            vec![foo()],
        ),
        (
            r#"<meta name="go-import" content="foo/bar git https://github.com/rsc/foo/bar">
		<body>"#,
            false,
            vec![foo()],
        ),
        (
            r#"<!doctype html><meta name="go-import" content="foo/bar git https://github.com/rsc/foo/bar">"#,
            false,
            vec![foo()],
        ),
        (
            // XML doesn't like <div style=position:relative>.
            r#"<!doctype html><title>Page Not Found</title><meta name=go-import content="chitin.io/chitin git https://github.com/chitin-io/chitin"><div style=position:relative>DRAFT</div>"#,
            false,
            vec![mi(
                "chitin.io/chitin",
                "git",
                "https://github.com/chitin-io/chitin",
                "",
            )],
        ),
        (
            myitcv,
            false,
            vec![mi("myitcv.io", "git", "https://github.com/myitcv/x", "")],
        ),
        (
            myitcv,
            true,
            vec![
                mi(
                    "myitcv.io/blah2",
                    "mod",
                    "https://raw.githubusercontent.com/myitcv/pubx/master",
                    "",
                ),
                mi("myitcv.io", "git", "https://github.com/myitcv/x", ""),
            ],
        ),
        (
            r#"<meta name="go-import" content="foo/bar git https://github.com/rsc/foo/bar subdir">"#,
            false,
            vec![mi(
                "foo/bar",
                "git",
                "https://github.com/rsc/foo/bar",
                "subdir",
            )],
        ),
        (
            r#"<meta name="go-import" content="foo/bar git https://github.com/rsc/foo/bar subdir/path">"#,
            false,
            vec![mi(
                "foo/bar",
                "git",
                "https://github.com/rsc/foo/bar",
                "subdir/path",
            )],
        ),
    ];
    for (i, (html, prefer_mod, want)) in cases.into_iter().enumerate() {
        assert_eq!(
            parse_meta_imports(html.as_bytes(), prefer_mod),
            want,
            "case {i}: {html}"
        );
    }
}

/// Where Go's tokenizer stops, and what it reads; each expectation was
/// checked against Go's parseMetaGoImports.
#[test]
fn parse_meta_imports_tokenizer() {
    let tag = r#"<meta name="go-import" content="a.b/c git https://a.b/c">"#;
    let found = || vec![mi("a.b/c", "git", "https://a.b/c", "")];
    let cases: Vec<(String, bool)> = vec![
        // Attribute names are case-insensitive, the name value is not.
        (
            r#"<META NAME="go-import" CONTENT="a.b/c git https://a.b/c">"#.into(),
            true,
        ),
        (
            r#"<meta name="Go-Import" content="a.b/c git https://a.b/c">"#.into(),
            false,
        ),
        (
            r#"<html:meta xml:name="go-import" x:content='a.b/c git https://a.b/c'/>"#.into(),
            true,
        ),
        // Entities, numeric references, \r and fancy spacing.
        (
            r#"<meta name="go&#45;import" content="a.b/c&#x20;git&#10;https://a.b/c">"#.into(),
            true,
        ),
        (
            "<meta name=\"go-import\" content=\"\ta.b/c \r\n git\u{a0}https://a.b/c \">".into(),
            true,
        ),
        (
            r#"<meta content="a.b/c git https://a.b/c" name="go-import" async>"#.into(),
            true,
        ),
        // Comments, directives, CDATA and processing instructions.
        (format!("<!-- {tag} -->"), false),
        (format!("<!-- a -- b --> {tag}"), false),
        (
            format!("<!DOCTYPE html [<!ENTITY x '>'> <!-- > -->]>{tag}"),
            true,
        ),
        (format!("<![CDATA[ <body> ]]>{tag}"), true),
        (
            format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>{tag}"),
            true,
        ),
        (format!("<?xml version='1.0' encoding='ascii'?>{tag}"), true),
        (
            format!("<?xml version=\"1.0\" encoding=\"latin1\"?>{tag}"),
            false,
        ),
        (format!("<?xml version=\"1.1\"?>{tag}"), false),
        (
            format!("<?xml version='1.0' encoding='asc\u{130}i'?>{tag}"),
            true,
        ),
        (
            format!("<?xml version='1.0' encoding='\u{212a}oi8-r'?>{tag}"),
            false,
        ),
        (format!("<?php echo 1 ?>{tag}"), true),
        // Stops: head end, body start (even self-closed), syntax errors.
        (format!("<head></head>{tag}"), false),
        (format!("<head/>{tag}"), false),
        (format!("<BODY class=x>{tag}"), false),
        (format!("<script>if (a < b) {{}}</script>{tag}"), false),
        (format!("<script>if (a<b) {{}}</script>{tag}"), false),
        (format!("<script>if (a&lt;b) {{}}</script>{tag}"), true),
        (format!("<a href=/x>{tag}"), false),
        (format!("<p>]]></p>{tag}"), false),
        (format!("<p>&nbsp;&#1;</p>{tag}"), false),
        (format!("<p>&nbsp;&#xD800;&bogus</p>{tag}"), true),
        (format!("<p title=\"<\">{tag}"), false),
        (format!("<a:b:c>{tag}"), false),
        (format!("<1a>{tag}"), false),
        (format!("<p \u{1}>{tag}"), false),
        (format!("{tag}<p>unterminated"), true),
        (format!("{tag}<body"), true),
        (
            r#"<meta name="go-import" content="a.b/c git https://a.b/c"#.into(),
            false,
        ),
    ];
    for (html, want) in cases {
        let want = if want { found() } else { vec![] };
        assert_eq!(parse_meta_imports(html.as_bytes(), true), want, "{html}");
    }
    // Invalid UTF-8 in text ends the page; in a comment it does not.
    let mut bad = b"<p>\xff</p>".to_vec();
    bad.extend_from_slice(tag.as_bytes());
    assert_eq!(parse_meta_imports(&bad, true), vec![]);
    let mut ok = b"<!-- \xff -->".to_vec();
    ok.extend_from_slice(tag.as_bytes());
    assert_eq!(parse_meta_imports(&ok, true), found());
    let amp = r#"<meta name="go&#45;import" content="a.b/c&#x20;git&#9;https://a.b/c&amp;">"#;
    assert_eq!(
        parse_meta_imports(amp.as_bytes(), true),
        vec![mi("a.b/c", "git", "https://a.b/c&", "")]
    );
    // Two or five fields are skipped.
    let html =
        r#"<meta name="go-import" content="a.b/c git"><meta name="go-import" content="a b c d e">"#;
    assert_eq!(parse_meta_imports(html.as_bytes(), true), vec![]);
}

/// vcs_test.go: TestMatchGoImport.
#[test]
fn match_import_go_cases() {
    let target = |p: &str| mi(p, "git", "https://example.com/repo/target", "");
    let foo = target("example.com/user/foo");
    let fooa = target("example.com/user/fooa");
    let foobar = target("example.com/user/foo/bar");
    let blah2 = mi(
        "myitcv.io/blah2",
        "mod",
        "https://raw.githubusercontent.com/myitcv/pubx/master",
        "",
    );
    let myitcv = mi("myitcv.io", "git", "https://github.com/myitcv/x", "");
    let sub = mi(
        "example.com/user/foo",
        "git",
        "https://example.com/repo/target",
        "subdir",
    );
    let sub2 = mi(
        "example.com/user/foo",
        "git",
        "https://example.com/repo/target",
        "foo/subdir",
    );
    let ok_cases = [
        (vec![foo.clone()], "example.com/user/foo", &foo),
        (vec![foo.clone()], "example.com/user/foo/", &foo),
        (
            vec![foo.clone(), fooa.clone()],
            "example.com/user/foo",
            &foo,
        ),
        (
            vec![foo.clone(), fooa.clone()],
            "example.com/user/fooa",
            &fooa,
        ),
        (
            vec![blah2.clone(), myitcv.clone()],
            "myitcv.io/blah2/foo",
            &blah2,
        ),
        (
            vec![blah2.clone(), myitcv.clone()],
            "myitcv.io/other",
            &myitcv,
        ),
        (vec![sub.clone()], "example.com/user/foo", &sub),
        (vec![sub2.clone()], "example.com/user/foo", &sub2),
    ];
    for (imports, path, want) in ok_cases {
        assert_eq!(match_import(&imports, path).as_ref(), Ok(want), "{path}");
    }
    let nested = vec![foo.clone(), foobar.clone()];
    let err_cases = [
        (&nested, "example.com/user/foo/bar", "multiple meta tags match import path \"example.com/user/foo/bar\""),
        (&nested, "example.com/user/foo/bar/baz", "multiple meta tags match import path \"example.com/user/foo/bar/baz\""),
        (&nested, "example.com/user/foo/bar/baz/qux", "multiple meta tags match import path \"example.com/user/foo/bar/baz/qux\""),
        (&nested, "example.com/user/foo/bar/baz/", "multiple meta tags match import path \"example.com/user/foo/bar/baz/\""),
        (
            &nested,
            "example.com",
            "no go-import meta tags (meta tag example.com/user/foo did not match import path example.com, \
             meta tag example.com/user/foo/bar did not match import path example.com)",
        ),
    ];
    for (imports, path, want) in err_cases {
        assert_eq!(
            match_import(imports, path).map_err(|e| e.to_string()),
            Err(want.into()),
            "{path}"
        );
    }
    assert_eq!(
        match_import(std::slice::from_ref(&foo), "different.example.com/user/foo").map_err(|e| e.to_string()),
        Err("no go-import meta tags (meta tag example.com/user/foo did not match import path different.example.com/user/foo)".into())
    );
    assert_eq!(
        match_import(&[sub.clone(), foo.clone()], "example.com/user/foo")
            .map_err(|e| e.to_string()),
        Err("multiple meta tags match import path \"example.com/user/foo\"".into())
    );
    assert_eq!(
        match_import(&[], "example.com/x").map_err(|e| e.to_string()),
        Err("no go-import meta tags ()".into())
    );
}

#[test]
fn confirm_prefix_page() {
    let path = "example.com/user/foo/bar";
    let first = mi(
        "example.com/user/foo",
        "git",
        "https://example.com/repo",
        "",
    );
    assert_eq!(confirm(path, &first, std::slice::from_ref(&first)), Ok(()));
    let other = mi(
        "example.com/user/foo",
        "git",
        "https://evil.example/repo",
        "",
    );
    assert_eq!(
        confirm(path, &first, &[other]).map_err(|e| e.to_string()),
        Err("the ?go-get=1 pages of example.com/user/foo/bar and example.com/user/foo disagree about go-import for example.com/user/foo".into())
    );
    let unrelated = mi("example.com/other", "git", "https://example.com/repo", "");
    assert!(confirm(path, &first, &[unrelated]).is_err());
    assert_eq!(
        confirm(path, &first, &[]).map_err(|e| e.to_string()),
        Err(
            "fetching example.com/user/foo: no go-import meta tag found in its ?go-get=1 page"
                .into()
        )
    );
}

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
