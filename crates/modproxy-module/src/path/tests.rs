//! Tests for `path.rs`, ported from Go's `module/module_test.go`.

use super::*;

/// (path, CheckPath ok, CheckImportPath ok) from Go's checkPathTests,
/// with results as of the Go 1.27 sources (no `+` in module paths, leading
/// dots allowed in import paths), checked against the Go code itself.
const CHECK_PATH_TESTS: &[(&str, bool, bool)] = &[
    ("x.y/z", true, true),
    ("x.y", true, true),
    ("", false, false),
    ("/x.y/z", false, false),
    ("x./z", false, false),
    (".x/z", false, true),
    ("-x/z", false, false),
    ("x..y/z", true, true),
    ("x.y/z/../../w", false, false),
    ("x.y//z", false, false),
    ("x.y/z//w", false, false),
    ("x.y/z/", false, false),
    ("x.y/z/v0", false, true),
    ("x.y/z/v1", false, true),
    ("x.y/z/v2", true, true),
    ("x.y/z/v2.0", false, true),
    ("X.y/z", false, true),
    ("!x.y/z", false, false),
    ("_x.y/z", false, true),
    ("x.y!/z", false, false),
    ("x.y\"/z", false, false),
    ("x.y#/z", false, false),
    ("x.y$/z", false, false),
    ("x.y%/z", false, false),
    ("x.y&/z", false, false),
    ("x.y'/z", false, false),
    ("x.y(/z", false, false),
    ("x.y)/z", false, false),
    ("x.y*/z", false, false),
    ("x.y+/z", false, true),
    ("x.y,/z", false, false),
    ("x.y-/z", true, true),
    ("x.y./zt", false, false),
    ("x.y:/z", false, false),
    ("x.y;/z", false, false),
    ("x.y</z", false, false),
    ("x.y=/z", false, false),
    ("x.y>/z", false, false),
    ("x.y?/z", false, false),
    ("x.y@/z", false, false),
    ("x.y[/z", false, false),
    ("x.y\\/z", false, false),
    ("x.y]/z", false, false),
    ("x.y^/z", false, false),
    ("x.y_/z", false, true),
    ("x.y`/z", false, false),
    ("x.y{/z", false, false),
    ("x.y}/z", false, false),
    ("x.y~/z", false, true),
    ("x.y/z!", false, false),
    ("x.y/z\"", false, false),
    ("x.y/z#", false, false),
    ("x.y/z$", false, false),
    ("x.y/z%", false, false),
    ("x.y/z&", false, false),
    ("x.y/z'", false, false),
    ("x.y/z(", false, false),
    ("x.y/z)", false, false),
    ("x.y/z*", false, false),
    ("x.y/z+", false, true),
    ("x.y/z,", false, false),
    ("x.y/z-", true, true),
    ("x.y/z.t", true, true),
    ("x.y/z/t", true, true),
    ("x.y/z:", false, false),
    ("x.y/z;", false, false),
    ("x.y/z<", false, false),
    ("x.y/z=", false, false),
    ("x.y/z>", false, false),
    ("x.y/z?", false, false),
    ("x.y/z@", false, false),
    ("x.y/z[", false, false),
    ("x.y/z\\", false, false),
    ("x.y/z]", false, false),
    ("x.y/z^", false, false),
    ("x.y/z_", true, true),
    ("x.y/z`", false, false),
    ("x.y/z{", false, false),
    ("x.y/z}", false, false),
    ("x.y/z~", true, true),
    ("x.y/x.foo", true, true),
    ("x.y/aux.foo", false, false),
    ("x.y/prn", false, false),
    ("x.y/prn2", true, true),
    ("x.y/com", true, true),
    ("x.y/com1", false, false),
    ("x.y/com1.txt", false, false),
    ("x.y/calm1", true, true),
    ("github.com/!123/logrus", false, false),
    ("github.com/user/unicode/испытание", false, false),
    ("../x", false, false),
    ("./y", false, false),
    ("x:y", false, false),
    ("\\temp\\foo", false, false),
    (".gitignore", false, true),
    (".github/ISSUE_TEMPLATE", false, true),
    ("x☺y", false, false),
    // Extra cases beyond Go's table.
    ("x.y/z~1", false, false),
    ("x.y/z~a", true, true),
    ("gopkg.in/yaml.v2", true, true),
    ("gopkg.in/yaml", false, true),
    ("gopkg.in/yaml.v01", false, true),
    ("gopkg.in/yaml.v0", true, true),
    ("gopkg.in/yaml.v1-unstable", true, true),
    ("example.com/x/v01", false, true),
    ("example.com/x/v10", true, true),
    ("Example.com/x", false, true),
    ("example.com/X", true, true),
    ("example_com/x", false, true),
    ("localhost/x", false, true),
];

#[test]
fn check_path_table() {
    for &(path, ok, import_ok) in CHECK_PATH_TESTS {
        assert_eq!(
            check_path(path).is_ok(),
            ok,
            "check_path({path:?}) = {:?}",
            check_path(path)
        );
        assert_eq!(
            ModulePath::new(path).is_ok(),
            ok,
            "ModulePath::new({path:?})"
        );
        assert_eq!(
            check_import_path(path).is_ok(),
            import_ok,
            "check_import_path({path:?}) = {:?}",
            check_import_path(path)
        );
        // Invalid paths never unescape successfully either.
        if !ok {
            assert!(ModulePath::unescape(path).is_err(), "unescape({path:?})");
        }
    }
}

#[test]
fn split_path_version_table() {
    for (prefix, major) in [
        ("x.y/z", ""),
        ("x.y/z", "/v2"),
        ("x.y/z", "/v3"),
        ("x.y/v", ""),
        ("gopkg.in/yaml", ".v0"),
        ("gopkg.in/yaml", ".v1"),
        ("gopkg.in/yaml", ".v2"),
        ("gopkg.in/yaml", ".v3"),
    ] {
        let path = format!("{prefix}{major}");
        assert_eq!(split_path_version(&path), Some((prefix, major)), "{path}");
    }
    for &(path, _, _) in CHECK_PATH_TESTS {
        if let Some((p, m)) = split_path_version(path) {
            assert_eq!(format!("{p}{m}"), path);
        }
    }
}

#[test]
fn major_suffix_and_prefix() {
    let p = ModulePath::new("github.com/go-yaml/yaml/v2").unwrap();
    assert_eq!(p.major_suffix(), Some("/v2"));
    assert_eq!(p.prefix(), "github.com/go-yaml/yaml");
    let p = ModulePath::new("gopkg.in/yaml.v3").unwrap();
    assert_eq!(p.major_suffix(), Some(".v3"));
    assert_eq!(p.prefix(), "gopkg.in/yaml");
    let p = ModulePath::new("rsc.io/quote").unwrap();
    assert_eq!(p.major_suffix(), None);
    assert_eq!(p.prefix(), "rsc.io/quote");
}

#[test]
fn error_messages_read_like_go() {
    let msg = |p: &str| ModulePath::new(p).unwrap_err().to_string();
    assert_eq!(
        msg(".x/z"),
        r#"malformed module path ".x/z": leading dot in path element"#
    );
    assert_eq!(
        msg("x.y/.z"),
        r#"malformed module path "x.y/.z": leading dot in path element"#
    );
    assert_eq!(msg(""), r#"malformed module path "": empty string"#);
    assert_eq!(
        msg("x.y/z/"),
        r#"malformed module path "x.y/z/": trailing slash"#
    );
    assert_eq!(
        msg("x.y//z"),
        r#"malformed module path "x.y//z": double slash"#
    );
    assert_eq!(
        msg("x.y/z%"),
        r#"malformed module path "x.y/z%": invalid char '%'"#
    );
    assert_eq!(
        msg("x.y/.."),
        r#"malformed module path "x.y/..": invalid path element "..""#
    );
    assert_eq!(
        msg("xy/z"),
        r#"malformed module path "xy/z": missing dot in first path element"#
    );
    assert_eq!(
        msg("X.y/z"),
        r#"malformed module path "X.y/z": invalid char 'X' in first path element"#
    );
    assert_eq!(
        msg("x.y/z/v1"),
        r#"malformed module path "x.y/z/v1": invalid version"#
    );
    assert_eq!(
        msg("x.y/com1"),
        r#"malformed module path "x.y/com1": "com1" disallowed as path element component on Windows"#
    );
    assert_eq!(
        msg("x.y/z~1"),
        r#"malformed module path "x.y/z~1": trailing tilde and digits in path element"#
    );
    assert_eq!(
        check_import_path("a/b c").unwrap_err().to_string(),
        r#"malformed import path "a/b c": invalid char ' '"#
    );
}

#[test]
fn escape_path() {
    for (path, esc) in [
        ("ascii.com/abcdefghijklmnopqrstuvwxyz.-/~_0123456789", None),
        (
            "github.com/GoogleCloudPlatform/omega",
            Some("github.com/!google!cloud!platform/omega"),
        ),
        (
            "github.com/Azure/azure-sdk-for-go",
            Some("github.com/!azure/azure-sdk-for-go"),
        ),
        (
            "github.com/Sirupsen/logrus",
            Some("github.com/!sirupsen/logrus"),
        ),
    ] {
        let esc = esc.unwrap_or(path);
        let p = ModulePath::new(path).unwrap();
        assert_eq!(p.escaped(), esc);
        assert_eq!(ModulePath::unescape(esc).unwrap(), p, "round trip {esc}");
        assert_eq!(p.to_string(), path);
        assert_eq!(p.as_str(), path);
    }
}

#[test]
fn unescape_path_rejections() {
    for bad in [
        "github.com/GoogleCloudPlatform/omega",
        "github.com/!google!cloud!platform!/omega",
        "github.com/!0google!cloud!platform/omega",
        "github.com/!_google!cloud!platform/omega",
        "github.com/!!google!cloud!platform/omega",
        "github.com/x!",
        "",
        "example.com/a/../b",
        "example.com/.x",
        "example.com/x%2f",
        "example.com/x\\y",
        "example.com/x/",
        "example.com/ü",
    ] {
        assert!(
            ModulePath::unescape(bad).is_err(),
            "unescape({bad:?}) succeeded"
        );
    }
    assert_eq!(
        ModulePath::unescape("github.com/X")
            .unwrap_err()
            .to_string(),
        r#"invalid escaped module path "github.com/X""#
    );
    assert_eq!(
        ModulePath::unescape("github.com/!x/.y")
            .unwrap_err()
            .to_string(),
        r#"invalid escaped module path "github.com/!x/.y": malformed module path "github.com/X/.y": leading dot in path element"#
    );
}

#[test]
fn escape_version_round_trips() {
    for (v, esc) in [
        ("v1.2.3", "v1.2.3"),
        ("v1.2.3-RC1", "v1.2.3-!r!c1"),
        (
            "v0.0.0-20190101000000-ABCDEF",
            "v0.0.0-20190101000000-!a!b!c!d!e!f",
        ),
        ("master", "master"),
        ("v2.0.0+incompatible", "v2.0.0+incompatible"),
    ] {
        assert_eq!(escape_version(v).unwrap(), esc);
        assert_eq!(unescape_version(esc).unwrap(), v);
    }
}

#[test]
fn escape_version_rejections() {
    for bad in [
        "", "v1!", "a/b", "..", ".", "v1.", "v1*", "v1?", "con", "v1:2", "ü",
    ] {
        assert!(escape_version(bad).is_err(), "escape_version({bad:?})");
    }
    assert_eq!(
        escape_version("a/b").unwrap_err().to_string(),
        r#"version "a/b" invalid: disallowed version string"#
    );
    for bad in ["V1.0.0", "v1.0.0!", "v!1", "!!a", "a/b", "", "v1*"] {
        assert!(unescape_version(bad).is_err(), "unescape_version({bad:?})");
    }
    assert_eq!(
        unescape_version("V1").unwrap_err().to_string(),
        r#"invalid escaped version "V1""#
    );
    assert_eq!(
        unescape_version("a/b").unwrap_err().to_string(),
        r#"invalid escaped version "a/b": invalid char '/'"#
    );
}

#[test]
fn match_path_major_table() {
    for (v, major, want) in [
        ("v0.0.0", "", true),
        ("v0.0.0", "/v2", false),
        ("v0.0.0", ".v0", true),
        ("v0.0.0-20190510104115-cbcb75029529", ".v1", true),
        ("v1.0.0", "/v2", false),
        ("v1.0.0", ".v1", true),
        ("v1.0.0", ".v1-unstable", true),
        ("v2.0.0+incompatible", "", true),
        ("v2.0.0", "", false),
        ("v2.0.0", "/v2", true),
        ("v2.0.0", ".v2", true),
    ] {
        assert_eq!(
            match_path_major(v, major),
            want,
            "match_path_major({v:?}, {major:?})"
        );
    }
}

#[test]
fn check_table_via_matches_major() {
    // Go's checkTests (module.Check), minus the invalid-path rows.
    for (path, v, ok) in [
        ("github.com/go-yaml/yaml", "v0.8.0", true),
        ("github.com/go-yaml/yaml", "v1.0.0", true),
        ("github.com/go-yaml/yaml", "v2.0.0", false),
        ("github.com/go-yaml/yaml", "v2.1.5", false),
        ("github.com/go-yaml/yaml", "v3.0.0", false),
        ("github.com/go-yaml/yaml/v2", "v1.0.0", false),
        ("github.com/go-yaml/yaml/v2", "v2.0.0", true),
        ("github.com/go-yaml/yaml/v2", "v2.1.5", true),
        ("github.com/go-yaml/yaml/v2", "v3.0.0", false),
        ("gopkg.in/yaml.v0", "v0.8.0", true),
        ("gopkg.in/yaml.v0", "v1.0.0", false),
        ("gopkg.in/yaml.v1", "v0.8.0", false),
        ("gopkg.in/yaml.v1", "v1.0.0", true),
        ("gopkg.in/yaml.v1", "v2.0.0", false),
        (
            "gopkg.in/check.v1",
            "v0.0.0-20160102150405-abcdef123456",
            true,
        ),
        ("gopkg.in/yaml.v2", "v1.0.0", false),
        ("gopkg.in/yaml.v2", "v2.1.5", true),
        ("rsc.io/quote", "v17.0.0", false),
        ("rsc.io/quote", "v17.0.0+incompatible", true),
    ] {
        let p = ModulePath::new(path).unwrap();
        assert_eq!(p.matches_major(v), ok, "{path}@{v}");
    }
}

/// `module.CheckFilePath` results, from the Go code itself: the paths of
/// [`CHECK_PATH_TESTS`] and some more, with Go's error text (`None` = ok).
const CHECK_FILE_PATH_TESTS: &[(&str, Option<&str>)] = &[
    ("x.y/z", None),
    ("x.y", None),
    ("", Some("malformed file path \"\": empty string")),
    ("/x.y/z", Some("malformed file path \"/x.y/z\": empty path element")),
    ("x./z", Some("malformed file path \"x./z\": trailing dot in path element")),
    (".x/z", None),
    ("-x/z", None),
    ("x..y/z", None),
    ("x.y/z/../../w", Some("malformed file path \"x.y/z/../../w\": invalid path element \"..\"")),
    ("x.y//z", Some("malformed file path \"x.y//z\": double slash")),
    ("x.y/z//w", Some("malformed file path \"x.y/z//w\": double slash")),
    ("x.y/z/", Some("malformed file path \"x.y/z/\": trailing slash")),
    ("x.y/z/v0", None),
    ("x.y/z/v1", None),
    ("x.y/z/v2", None),
    ("x.y/z/v2.0", None),
    ("X.y/z", None),
    ("!x.y/z", None),
    ("_x.y/z", None),
    ("x.y!/z", None),
    ("x.y\"/z", Some("malformed file path \"x.y\\\"/z\": invalid char '\"'")),
    ("x.y#/z", None),
    ("x.y$/z", None),
    ("x.y%/z", None),
    ("x.y&/z", None),
    ("x.y'/z", Some("malformed file path \"x.y'/z\": invalid char '\\''")),
    ("x.y(/z", None),
    ("x.y)/z", None),
    ("x.y*/z", Some("malformed file path \"x.y*/z\": invalid char '*'")),
    ("x.y+/z", None),
    ("x.y,/z", None),
    ("x.y-/z", None),
    ("x.y./zt", Some("malformed file path \"x.y./zt\": trailing dot in path element")),
    ("x.y:/z", Some("malformed file path \"x.y:/z\": invalid char ':'")),
    ("x.y;/z", Some("malformed file path \"x.y;/z\": invalid char ';'")),
    ("x.y</z", Some("malformed file path \"x.y</z\": invalid char '<'")),
    ("x.y=/z", None),
    ("x.y>/z", Some("malformed file path \"x.y>/z\": invalid char '>'")),
    ("x.y?/z", Some("malformed file path \"x.y?/z\": invalid char '?'")),
    ("x.y@/z", None),
    ("x.y[/z", None),
    ("x.y\\/z", Some("malformed file path \"x.y\\\\/z\": invalid char '\\\\'")),
    ("x.y]/z", None),
    ("x.y^/z", None),
    ("x.y_/z", None),
    ("x.y`/z", Some("malformed file path \"x.y`/z\": invalid char '`'")),
    ("x.y{/z", None),
    ("x.y}/z", None),
    ("x.y~/z", None),
    ("x.y/z!", None),
    ("x.y/z\"", Some("malformed file path \"x.y/z\\\"\": invalid char '\"'")),
    ("x.y/z#", None),
    ("x.y/z$", None),
    ("x.y/z%", None),
    ("x.y/z&", None),
    ("x.y/z'", Some("malformed file path \"x.y/z'\": invalid char '\\''")),
    ("x.y/z(", None),
    ("x.y/z)", None),
    ("x.y/z*", Some("malformed file path \"x.y/z*\": invalid char '*'")),
    ("x.y/z+", None),
    ("x.y/z,", None),
    ("x.y/z-", None),
    ("x.y/z.t", None),
    ("x.y/z/t", None),
    ("x.y/z:", Some("malformed file path \"x.y/z:\": invalid char ':'")),
    ("x.y/z;", Some("malformed file path \"x.y/z;\": invalid char ';'")),
    ("x.y/z<", Some("malformed file path \"x.y/z<\": invalid char '<'")),
    ("x.y/z=", None),
    ("x.y/z>", Some("malformed file path \"x.y/z>\": invalid char '>'")),
    ("x.y/z?", Some("malformed file path \"x.y/z?\": invalid char '?'")),
    ("x.y/z@", None),
    ("x.y/z[", None),
    ("x.y/z\\", Some("malformed file path \"x.y/z\\\\\": invalid char '\\\\'")),
    ("x.y/z]", None),
    ("x.y/z^", None),
    ("x.y/z_", None),
    ("x.y/z`", Some("malformed file path \"x.y/z`\": invalid char '`'")),
    ("x.y/z{", None),
    ("x.y/z}", None),
    ("x.y/z~", None),
    ("x.y/x.foo", None),
    ("x.y/aux.foo", Some("malformed file path \"x.y/aux.foo\": \"aux\" disallowed as path element component on Windows")),
    ("x.y/prn", Some("malformed file path \"x.y/prn\": \"prn\" disallowed as path element component on Windows")),
    ("x.y/prn2", None),
    ("x.y/com", None),
    ("x.y/com1", Some("malformed file path \"x.y/com1\": \"com1\" disallowed as path element component on Windows")),
    ("x.y/com1.txt", Some("malformed file path \"x.y/com1.txt\": \"com1\" disallowed as path element component on Windows")),
    ("x.y/calm1", None),
    ("github.com/!123/logrus", None),
    ("github.com/user/unicode/испытание", None),
    ("../x", Some("malformed file path \"../x\": invalid path element \"..\"")),
    ("./y", Some("malformed file path \"./y\": invalid path element \".\"")),
    ("x:y", Some("malformed file path \"x:y\": invalid char ':'")),
    ("\\temp\\foo", Some("malformed file path \"\\\\temp\\\\foo\": invalid char '\\\\'")),
    (".gitignore", None),
    (".github/ISSUE_TEMPLATE", None),
    ("x☺y", Some("malformed file path \"x☺y\": invalid char '☺'")),
    ("x.y/z~1", None),
    ("x.y/z~a", None),
    ("gopkg.in/yaml.v2", None),
    ("gopkg.in/yaml", None),
    ("gopkg.in/yaml.v01", None),
    ("gopkg.in/yaml.v0", None),
    ("gopkg.in/yaml.v1-unstable", None),
    ("example.com/x/v01", None),
    ("example.com/x/v10", None),
    ("Example.com/x", None),
    ("example.com/X", None),
    ("example_com/x", None),
    ("localhost/x", None),
    ("a/b.go", None),
    ("-x", None),
    ("x~1.go", None),
    ("a b.go", None),
    ("a\tb.go", Some("malformed file path \"a\\tb.go\": invalid char '\\t'")),
    ("é/ж 中.go", None),
    ("Ⅻ.go", Some("malformed file path \"Ⅻ.go\": invalid char 'Ⅻ'")),
    ("ा.go", Some("malformed file path \"ा.go\": invalid char 'ा'")),
    ("a\u{200b}b", Some("malformed file path \"a\\u200bb\": invalid char '\\u200b'")),
    ("ǅ.go", None),
    ("a/./b", Some("malformed file path \"a/./b\": invalid path element \".\"")),
    ("a/../b", Some("malformed file path \"a/../b\": invalid path element \"..\"")),
    ("../a", Some("malformed file path \"../a\": invalid path element \"..\"")),
    ("a/..", Some("malformed file path \"a/..\": invalid path element \"..\"")),
    ("a/.", Some("malformed file path \"a/.\": invalid path element \".\"")),
    ("CON", Some("malformed file path \"CON\": \"CON\" disallowed as path element component on Windows")),
    ("con.txt", Some("malformed file path \"con.txt\": \"con\" disallowed as path element component on Windows")),
    ("COM1.go", Some("malformed file path \"COM1.go\": \"COM1\" disallowed as path element component on Windows")),
    ("LPT9.x", Some("malformed file path \"LPT9.x\": \"LPT9\" disallowed as path element component on Windows")),
    ("nul", Some("malformed file path \"nul\": \"nul\" disallowed as path element component on Windows")),
    ("go.mod", None),
    ("a/go.mod", None),
    ("x.go.", Some("malformed file path \"x.go.\": trailing dot in path element")),
    ("x.", Some("malformed file path \"x.\": trailing dot in path element")),
    ("#!$%&()+,-.=@[]^_{}~ ", None),
    ("a'b", Some("malformed file path \"a'b\": invalid char '\\''")),
    ("a\"b", Some("malformed file path \"a\\\"b\": invalid char '\"'")),
    ("a*b", Some("malformed file path \"a*b\": invalid char '*'")),
    ("a<b", Some("malformed file path \"a<b\": invalid char '<'")),
    ("a>b", Some("malformed file path \"a>b\": invalid char '>'")),
    ("a?b", Some("malformed file path \"a?b\": invalid char '?'")),
    ("a`b", Some("malformed file path \"a`b\": invalid char '`'")),
    ("a|b", Some("malformed file path \"a|b\": invalid char '|'")),
    ("a:b", Some("malformed file path \"a:b\": invalid char ':'")),
    ("a\\b", Some("malformed file path \"a\\\\b\": invalid char '\\\\'")),
    ("a;b", Some("malformed file path \"a;b\": invalid char ';'")),
];

#[test]
fn check_file_path_table() {
    for &(path, want) in CHECK_FILE_PATH_TESTS {
        let got = check_file_path(path).err().map(|e| e.to_string());
        assert_eq!(got.as_deref(), want, "CheckFilePath({path:?})");
    }
}
