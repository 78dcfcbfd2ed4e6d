//! Tests for `semver.rs`, ported from Go's `semver/semver_test.go`.

use super::*;

/// Go's table, in increasing order; `""` means invalid.
const TESTS: &[(&str, &str)] = &[
    ("bad", ""),
    ("v1-alpha.beta.gamma", ""),
    ("v1-pre", ""),
    ("v1+meta", ""),
    ("v1-pre+meta", ""),
    ("v1.2-pre", ""),
    ("v1.2+meta", ""),
    ("v1.2-pre+meta", ""),
    ("v1.0.0-alpha", "v1.0.0-alpha"),
    ("v1.0.0-alpha.1", "v1.0.0-alpha.1"),
    ("v1.0.0-alpha.beta", "v1.0.0-alpha.beta"),
    ("v1.0.0-beta", "v1.0.0-beta"),
    ("v1.0.0-beta.2", "v1.0.0-beta.2"),
    ("v1.0.0-beta.11", "v1.0.0-beta.11"),
    ("v1.0.0-rc.1", "v1.0.0-rc.1"),
    ("v1", "v1.0.0"),
    ("v1.0", "v1.0.0"),
    ("v1.0.0", "v1.0.0"),
    ("v1.2", "v1.2.0"),
    ("v1.2.0", "v1.2.0"),
    ("v1.2.3-456", "v1.2.3-456"),
    ("v1.2.3-456.789", "v1.2.3-456.789"),
    ("v1.2.3-456-789", "v1.2.3-456-789"),
    ("v1.2.3-456a", "v1.2.3-456a"),
    ("v1.2.3-pre", "v1.2.3-pre"),
    ("v1.2.3-pre+meta", "v1.2.3-pre"),
    ("v1.2.3-pre.1", "v1.2.3-pre.1"),
    ("v1.2.3-zzz", "v1.2.3-zzz"),
    ("v1.2.3", "v1.2.3"),
    ("v1.2.3+meta", "v1.2.3"),
    ("v1.2.3+meta-pre", "v1.2.3"),
    ("v1.2.3+meta-pre.sha.256a", "v1.2.3"),
];

fn opt(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

#[test]
fn is_valid_and_canonical() {
    for &(v, out) in TESTS {
        assert_eq!(is_valid(v), !out.is_empty(), "is_valid({v:?})");
        assert_eq!(canonical(v).as_deref(), opt(out), "canonical({v:?})");
    }
    for bad in [
        "",
        "v",
        "1.2.3",
        "v01.2.3",
        "v1.02.3",
        "v1.2.03",
        "v1.2.3-",
        "v1.2.3-01",
        "v1.2.3-a..b",
        "v1.2.3+",
        "v1.2.3+a..b",
        "v1.2.3+a+b",
        "v1.2.3-a_b",
        "V1.2.3",
        "v1.2.3.4",
        "v1.2.3 ",
    ] {
        assert!(!is_valid(bad), "is_valid({bad:?})");
    }
    assert!(is_valid("v1.2.3-0a"));
    assert!(is_valid("v1.2.3-0"));
    assert!(is_valid("v1.2.3+01"));
}

#[test]
fn major_minor_prerelease_build() {
    for &(v, out) in TESTS {
        let want_major = out.find('.').map(|i| &out[..i]);
        assert_eq!(major(v), want_major, "major({v:?})");
        let want_pre = if out.is_empty() {
            None
        } else {
            out.find('-').map(|i| &out[i..])
        };
        assert_eq!(prerelease(v), want_pre, "prerelease({v:?})");
        let want_build = if out.is_empty() {
            None
        } else {
            v.find('+').map(|i| &v[i..])
        };
        assert_eq!(build(v), want_build, "build({v:?})");
        let want_mm = (!out.is_empty()).then(|| {
            let mut w = v.split(['+', '-']).next().unwrap().to_owned();
            match w.matches('.').count() {
                0 => w.push_str(".0"),
                1 => {}
                _ => w.truncate(w.rfind('.').unwrap()),
            }
            w
        });
        assert_eq!(major_minor(v), want_mm, "major_minor({v:?})");
    }
}

#[test]
fn compare_table() {
    for (i, &(vi, oi)) in TESTS.iter().enumerate() {
        for (j, &(vj, oj)) in TESTS.iter().enumerate() {
            let want = if oi == oj { Ordering::Equal } else { i.cmp(&j) };
            assert_eq!(compare(vi, vj), want, "compare({vi:?}, {vj:?})");
        }
    }
    assert_eq!(compare("v1", "v1"), Ordering::Equal);
    assert_eq!(compare("v2", "v1"), Ordering::Greater);
    assert_eq!(compare("v1", "v2"), Ordering::Less);
    assert_eq!(compare("v1.19", "v1.2"), Ordering::Greater);
    assert_eq!(compare("v1.2.3+a", "v1.2.3+b"), Ordering::Equal);
    assert_eq!(compare("v10.0.0", "v9.0.0"), Ordering::Greater);
    assert_eq!(compare("v1.0.0-11", "v1.0.0-9"), Ordering::Greater);
    assert_eq!(compare("v1.0.0-a", "v1.0.0-11"), Ordering::Greater);
    assert_eq!(compare("bad", "v0.0.0"), Ordering::Less);
    assert_eq!(compare("bad", "worse"), Ordering::Equal);
    // Pseudo-versions sort below the release they precede.
    assert_eq!(
        compare("v1.2.4-0.20190101000000-abcdefabcdef", "v1.2.4"),
        Ordering::Less
    );
    assert_eq!(
        compare("v1.2.4-0.20190101000000-abcdefabcdef", "v1.2.3"),
        Ordering::Greater
    );
    assert_eq!(
        compare("v1.2.4-0.20190101000000-abcdefabcdef", "v1.2.4-rc1"),
        Ordering::Less
    );
}

#[test]
fn sort_is_sorted() {
    let mut versions: Vec<String> = TESTS.iter().rev().map(|&(v, _)| v.to_owned()).collect();
    versions.rotate_left(7);
    sort_versions(&mut versions);
    for w in versions.windows(2) {
        let c = compare(&w[0], &w[1]).then_with(|| w[0].cmp(&w[1]));
        assert_ne!(c, Ordering::Greater, "{} > {}", w[0], w[1]);
    }
    let mut v: Vec<String> = [
        "v1.10.0",
        "v1.2.0",
        "v1.2.0+b",
        "v1.2.0+a",
        "bad",
        "v1.2.0-rc.1",
        "v0.9",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    sort_versions(&mut v);
    assert_eq!(
        v,
        [
            "bad",
            "v0.9",
            "v1.2.0-rc.1",
            "v1.2.0",
            "v1.2.0+a",
            "v1.2.0+b",
            "v1.10.0"
        ]
    );
}

#[test]
fn canonical_module_versions() {
    assert!(is_canonical_module_version("v2.0.0+incompatible"));
    assert!(is_canonical_module_version("v1.0.0"));
    assert!(is_canonical_module_version("v1.0.0-pre.1"));
    assert!(is_canonical_module_version(
        "v0.0.0-20190101000000-abcdefabcdef"
    ));
    assert!(!is_canonical_module_version("v1.0.0+build"));
    assert!(!is_canonical_module_version("v1.2"));
    assert!(!is_canonical_module_version("v1"));
    assert!(!is_canonical_module_version(""));
    assert!(!is_canonical_module_version("bad"));
    assert!(!is_canonical_module_version("v2.0.0+incompatible.x"));
    assert_eq!(canonical_module_version("v2.0+incompatible"), None);
    assert_eq!(
        canonical_module_version("v2.0.0+incompatible").as_deref(),
        Some("v2.0.0+incompatible")
    );
    assert_eq!(
        canonical_module_version("v2.0.0+meta").as_deref(),
        Some("v2.0.0")
    );
}
