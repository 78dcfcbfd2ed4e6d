//! Tests for `pattern.rs`: Go's `TestMatchPrefixPatterns` and
//! `path.Match` tables.

use super::*;

fn m(globs: &str, target: &str) -> bool {
    PathPatterns::parse(globs).unwrap().matches(target)
}

#[test]
fn match_prefix_patterns_go_table() {
    for (globs, target, want) in [
        ("*/quote", "rsc.io/quote", true),
        ("*/quo", "rsc.io/quote", false),
        ("*/quo??", "rsc.io/quote", true),
        ("*/quo*", "rsc.io/quote", true),
        ("*quo*", "rsc.io/quote", false),
        ("rsc.io", "rsc.io/quote", true),
        ("*.io", "rsc.io/quote", true),
        ("rsc.io/", "rsc.io/quote", true), // trailing slash ignored
        ("rsc", "rsc.io/quote", false),
        ("rsc*", "rsc.io/quote", true),
        ("rsc.io", "rsc.io/quote/v3", true),
        ("*/quote", "rsc.io/quote/v3", true),
        ("*/quote/*", "rsc.io/quote/v3", true),
        ("*/v3", "rsc.io/quote/v3", false),
        ("*/*/v3", "rsc.io/quote/v3", true),
        ("*/*/*", "rsc.io/quote/v3", true),
        ("*/*/*", "rsc.io/quote", false),
        ("*/*/*,,", "rsc.io/quote", false),
        ("*/*/*,,*/quote", "rsc.io/quote", true),
        (",,*/quote", "rsc.io/quote", true),
    ] {
        assert_eq!(m(globs, target), want, "matches({globs:?}, {target:?})");
    }
}

#[test]
fn goprivate_examples() {
    let p = PathPatterns::parse("*.corp.example.com,rsc.io/private").unwrap();
    assert!(p.matches("git.corp.example.com/team/repo"));
    assert!(p.matches("a.corp.example.com"));
    assert!(!p.matches("corp.example.com/x"));
    assert!(!p.matches("git.corp.example.com.evil.org/x"));
    assert!(p.matches("rsc.io/private"));
    assert!(p.matches("rsc.io/private/quux"));
    assert!(p.matches("rsc.io/private/v2"));
    // Prefixes match on element boundaries only.
    assert!(!p.matches("rsc.io/privateer"));
    assert!(!p.matches("rsc.io/quote"));
    assert!(!p.matches("rsc.io"));
    assert!(!p.is_empty());
    assert_eq!(p.to_string(), "*.corp.example.com,rsc.io/private");
    assert_eq!(p.globs().len(), 2);
}

#[test]
fn empty_lists() {
    for s in ["", ",", ",,,", "/", ",/,"] {
        let p = PathPatterns::parse(s).unwrap();
        assert!(p.is_empty(), "{s:?}");
        assert!(!p.matches("rsc.io/quote"));
        assert_eq!(p.to_string(), "");
    }
    assert!(PathPatterns::default().is_empty());
    assert_eq!(
        PathPatterns::parse("a.com/,b.com").unwrap().to_string(),
        "a.com,b.com"
    );
}

#[test]
fn rejects_bad_globs() {
    for bad in [
        "[", "a.com/[", "[]a]", "[-]", "[x-]", "a\\", "x.com,[^", "*[", "[a-b-c]",
    ] {
        let err = PathPatterns::parse(bad).unwrap_err();
        assert!(
            matches!(err, PatternError::BadPattern { .. }),
            "{bad:?}: {err}"
        );
    }
    assert_eq!(
        PathPatterns::parse("ok.com,bad.com/[")
            .unwrap_err()
            .to_string(),
        r#"invalid module path pattern "bad.com/[": syntax error in pattern"#
    );
    assert_eq!(
        PathPatterns::parse("a.com, b.com").unwrap_err().to_string(),
        r#"invalid module path pattern " b.com": contains white space"#
    );
}

#[test]
fn path_match_go_table() {
    // Go's path/match_test.go matchTests (Err = malformed pattern).
    let tests: &[(&str, &str, Result<bool, ()>)] = &[
        ("abc", "abc", Ok(true)),
        ("*", "abc", Ok(true)),
        ("*c", "abc", Ok(true)),
        ("a*", "a", Ok(true)),
        ("a*", "abc", Ok(true)),
        ("a*", "ab/c", Ok(false)),
        ("a*/b", "abc/b", Ok(true)),
        ("a*/b", "a/c/b", Ok(false)),
        ("a*b*c*d*e*/f", "axbxcxdxe/f", Ok(true)),
        ("a*b*c*d*e*/f", "axbxcxdxexxx/f", Ok(true)),
        ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", Ok(false)),
        ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", Ok(false)),
        ("a*b?c*x", "abxbbxdbxebxczzx", Ok(true)),
        ("a*b?c*x", "abxbbxdbxebxczzy", Ok(false)),
        ("ab[c]", "abc", Ok(true)),
        ("ab[b-d]", "abc", Ok(true)),
        ("ab[e-g]", "abc", Ok(false)),
        ("ab[^c]", "abc", Ok(false)),
        ("ab[^b-d]", "abc", Ok(false)),
        ("ab[^e-g]", "abc", Ok(true)),
        ("a\\*b", "a*b", Ok(true)),
        ("a\\*b", "ab", Ok(false)),
        ("a?b", "a☺b", Ok(true)),
        ("a[^a]b", "a☺b", Ok(true)),
        ("a???b", "a☺b", Ok(false)),
        ("a[^a][^a][^a]b", "a☺b", Ok(false)),
        ("[a-ζ]*", "α", Ok(true)),
        ("*[a-ζ]", "A", Ok(false)),
        ("a?b", "a/b", Ok(false)),
        ("a*b", "a/b", Ok(false)),
        ("[\\]a]", "]", Ok(true)),
        ("[\\-]", "-", Ok(true)),
        ("[x\\-]", "x", Ok(true)),
        ("[x\\-]", "-", Ok(true)),
        ("[x\\-]", "z", Ok(false)),
        ("[\\-x]", "x", Ok(true)),
        ("[\\-x]", "-", Ok(true)),
        ("[\\-x]", "a", Ok(false)),
        ("[]a]", "]", Err(())),
        ("[-]", "-", Err(())),
        ("[x-]", "x", Err(())),
        ("[x-]", "-", Err(())),
        ("[x-]", "z", Err(())),
        ("[-x]", "x", Err(())),
        ("[-x]", "-", Err(())),
        ("[-x]", "a", Err(())),
        ("\\", "a", Err(())),
        ("[a-b-c]", "a", Err(())),
        ("[", "a", Err(())),
        ("[^", "a", Err(())),
        ("[^bc", "a", Err(())),
        ("a[", "a", Err(())),
        ("a[", "ab", Err(())),
        ("a[", "x", Err(())),
        ("a/b[", "x", Err(())),
        ("*x", "xxx", Ok(true)),
    ];
    for &(pattern, name, want) in tests {
        assert_eq!(
            path_match(pattern.as_bytes(), name.as_bytes()),
            want,
            "Match({pattern:?}, {name:?})"
        );
        assert_eq!(
            is_valid_glob(pattern.as_bytes()),
            want.is_ok(),
            "valid({pattern:?})"
        );
    }
}
