//! Tests for `pseudo.rs`, ported from Go's `module/pseudo_test.go`.

use super::*;

const TS: &str = "20060102150405";

/// (major, older tag, pseudo-version) from Go's pseudoTests.
const PSEUDO_TESTS: &[(&str, &str, &str)] = &[
    ("", "", "v0.0.0-20060102150405-hash"),
    ("v0", "", "v0.0.0-20060102150405-hash"),
    ("v1", "", "v1.0.0-20060102150405-hash"),
    ("v2", "", "v2.0.0-20060102150405-hash"),
    ("unused", "v0.0.0", "v0.0.1-0.20060102150405-hash"),
    ("unused", "v1.2.3", "v1.2.4-0.20060102150405-hash"),
    (
        "unused",
        "v1.2.99999999999999999",
        "v1.2.100000000000000000-0.20060102150405-hash",
    ),
    ("unused", "v1.2.3-pre", "v1.2.3-pre.0.20060102150405-hash"),
    ("unused", "v1.3.0-pre", "v1.3.0-pre.0.20060102150405-hash"),
    ("unused", "v0.0.0--", "v0.0.0--.0.20060102150405-hash"),
    (
        "unused",
        "v1.0.0+metadata",
        "v1.0.1-0.20060102150405-hash+metadata",
    ),
    (
        "unused",
        "v2.0.0+incompatible",
        "v2.0.1-0.20060102150405-hash+incompatible",
    ),
    (
        "unused",
        "v2.3.0-pre+incompatible",
        "v2.3.0-pre.0.20060102150405-hash+incompatible",
    ),
];

#[test]
fn pseudo_version_builds_go_table() {
    for &(major, older, want) in PSEUDO_TESTS {
        assert_eq!(
            pseudo_version(major, older, TS, "hash"),
            want,
            "({major:?}, {older:?})"
        );
    }
}

#[test]
fn is_pseudo_version_table() {
    for &(_, older, v) in PSEUDO_TESTS {
        assert!(is_pseudo_version(v), "{v}");
        assert!(!is_pseudo_version(older), "{older}");
    }
    for v in [
        "v0.0.0-20191109021931-daa7c04131f5",
        "v1.2.4-0.20191109021931-daa7c04131f5",
        "v1.2.3-pre.0.20191109021931-daa7c04131f5",
        "v1.2.3-rc.1.0.20191109021931-daa7c04131f5",
        "v2.0.1-0.20191109021931-daa7c04131f5+incompatible",
        "v1.2.3-0.0.20191109021931-daa7c04131f5",
    ] {
        assert!(is_pseudo_version(v), "{v}");
    }
    for v in [
        "",
        "v1.2.3",
        "v1.2.3-pre",
        "v0.0.0-2019110902193-daa7c04131f5", // 13-digit timestamp
        "v0.0.0-201911090219311-daa7c04131f5", // 15-digit timestamp
        "v0.0.0-20191109021931-",            // no revision
        "v0.0.0-20191109021931-daa7_c04131f5", // bad revision char
        "v1.2.3-20191109021931-daa7c04131f5", // form 1 needs X.0.0
        "v1.2.4-1.20191109021931-daa7c04131f5", // needs the 0. segment
        "v1.2.3-pre.20191109021931-daa7c04131f5",
        "v1.2.3-pre0.20191109021931-daa7c04131f5",
        "v0.0.0-20191109021931-daa7c04131f5+",
        "0.0.0-20191109021931-daa7c04131f5",
        "v0.0-20191109021931-daa7c04131f5",
        "v0.0.0-020191109021931-daa7c04131f5",
        "---",
    ] {
        assert!(!is_pseudo_version(v), "{v}");
    }
}

#[test]
fn parse_pseudo_version_splits() {
    for &(_, _, v) in PSEUDO_TESTS {
        let p = parse_pseudo_version(v).unwrap();
        assert_eq!(p.timestamp, TS, "{v}");
        assert_eq!(p.revision, "hash", "{v}");
    }
    let p = parse_pseudo_version("v0.0.0-20191109021931-daa7c04131f5").unwrap();
    assert_eq!(
        p,
        PseudoVersion {
            base: "v0.0.0".into(),
            timestamp: "20191109021931".into(),
            revision: "daa7c04131f5".into()
        }
    );
    let p = parse_pseudo_version("v1.2.4-0.20191109021931-daa7c04131f5+incompatible").unwrap();
    assert_eq!(
        (p.base.as_str(), p.timestamp.as_str()),
        ("v1.2.4-0", "20191109021931")
    );
    let p = parse_pseudo_version("v1.2.3-pre.0.20191109021931-abc").unwrap();
    assert_eq!(
        (p.base.as_str(), p.revision.as_str()),
        ("v1.2.3-pre.0", "abc")
    );
    for &(_, older, _) in PSEUDO_TESTS {
        assert!(parse_pseudo_version(older).is_err(), "{older}");
    }
    assert_eq!(
        parse_pseudo_version("v1.2.3").unwrap_err().to_string(),
        r#"pseudo-version "v1.2.3" invalid: syntax error"#
    );
}

#[test]
fn pseudo_version_base_table() {
    for &(_, older, v) in PSEUDO_TESTS {
        assert_eq!(
            pseudo_version_base(v).unwrap().as_deref().unwrap_or(""),
            older,
            "{v}"
        );
    }
    for v in [
        "v0.0.0",
        "v0.0.0-",
        "v0.0.0-0.20060102150405-hash",
        "v0.1.0-0.20060102150405-hash",
        "v1.0.0-0.20060102150405-hash",
        "v0.0.0-20060102150405-hash+incompatible",
        "v0.0.0-20060102150405-hash+metadata",
    ] {
        assert!(pseudo_version_base(v).is_err(), "{v}");
    }
    assert_eq!(
        pseudo_version_base("v1.0.0-0.20060102150405-hash")
            .unwrap_err()
            .to_string(),
        r#"pseudo-version "v1.0.0-0.20060102150405-hash" invalid: version before v1.0.0 would have negative patch number"#
    );
    assert_eq!(
        pseudo_version_base("v0.0.0-20060102150405-hash+incompatible")
            .unwrap_err()
            .to_string(),
        r#"pseudo-version "v0.0.0-20060102150405-hash+incompatible" invalid: lacks base version, but has build metadata "+incompatible""#
    );
}

#[test]
fn inc_dec_decimal() {
    for (i, want) in [
        ("0", "1"),
        ("1", "2"),
        ("99", "100"),
        ("100", "101"),
        ("101", "102"),
    ] {
        assert_eq!(inc_decimal(i), want);
    }
    for (i, want) in [
        ("", ""),
        ("0", ""),
        ("00", ""),
        ("1", "0"),
        ("2", "1"),
        ("99", "98"),
        ("100", "99"),
        ("101", "100"),
    ] {
        assert_eq!(dec_decimal(i), want, "{i}");
    }
}
