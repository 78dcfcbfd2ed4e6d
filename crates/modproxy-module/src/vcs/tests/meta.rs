//! `go-import` meta tags: URL forms, parsing, matching, prefix pages.

use super::*;

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
