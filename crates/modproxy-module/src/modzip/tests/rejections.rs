//! Tests for `modzip`: zips that must be refused, and why.

use super::*;

#[test]
fn wrong_prefix() {
    let zip = build(&[
        Ent::stored(&format!("{P}go.mod"), b"module example.com/m\n"),
        Ent::stored("example.com/m@v1.0.1/a.go", b""),
        Ent::stored("a.go", b""),
    ]);
    let err = check(&zip).unwrap_err();
    assert_eq!(
        err.to_string(),
        "example.com/m@v1.0.1/a.go: path does not have prefix \"example.com/m@v1.0.0/\"\n\
         a.go: path does not have prefix \"example.com/m@v1.0.0/\""
    );
    assert_eq!(file_problems(err).len(), 2);
    // The module path must match exactly, too.
    let zip = build(&[Ent::stored("example.com/m/v2@v2.0.0/a.go", b"")]);
    assert!(check_as(&zip, "example.com/m/v2", "v2.0.0").is_ok());
    assert!(check_as(&zip, "example.com/m/v3", "v3.0.0").is_err());
}

#[test]
fn duplicates_and_case_fold_collisions() {
    let err = check(&build(&[
        Ent::stored(&format!("{P}a.go"), b"1"),
        Ent::stored(&format!("{P}a.go"), b"2"),
    ]))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "example.com/m@v1.0.0/a.go: multiple entries for file \"a.go\""
    );

    let err = check(&build(&[
        Ent::stored(&format!("{P}Dir/a.go"), b""),
        Ent::stored(&format!("{P}dir/b.go"), b""),
        Ent::stored(&format!("{P}\u{212a}.go"), b""),
        Ent::stored(&format!("{P}k.go"), b""),
    ]))
    .unwrap_err();
    assert_eq!(
        file_problems(err),
        [
            FileProblem::CaseCollision("Dir".into(), "dir".into()),
            FileProblem::CaseCollision("\u{212a}.go".into(), "k.go".into()),
        ]
    );

    let err = check(&build(&[
        Ent::stored(&format!("{P}a"), b""),
        Ent::stored(&format!("{P}a/b"), b""),
    ]))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "example.com/m@v1.0.0/a/b: entry \"a\" is both a file and a directory"
    );
}

#[test]
fn bad_file_paths() {
    let cases: &[(&str, &str)] = &[
        ("../x.go", "malformed file path \"../x.go\": invalid path element \"..\""),
        ("a/../x.go", "file path is not clean"),
        ("./x.go", "file path is not clean"),
        ("a//x.go", "file path is not clean"),
        ("a/./x.go", "file path is not clean"),
        ("/x.go", "malformed file path \"/x.go\": empty path element"),
        ("x\\y.go", "malformed file path \"x\\\\y.go\": invalid char '\\\\'"),
        ("x:y.go", "malformed file path \"x:y.go\": invalid char ':'"),
        ("Ⅻ.go", "malformed file path \"Ⅻ.go\": invalid char 'Ⅻ'"),
        ("x.go.", "malformed file path \"x.go.\": trailing dot in path element"),
        (
            "aux.go",
            "malformed file path \"aux.go\": \"aux\" disallowed as path element component on Windows",
        ),
        ("sub/go.mod", "go.mod file not in module root directory"),
        ("GO.MOD", "go.mod files must have lowercase names"),
        ("sub/Go.Mod", "go.mod file not in module root directory"),
        ("x.go//", "file path is not clean"),
    ];
    for (name, want) in cases {
        let full = format!("{P}{name}");
        let err = check(&build(&[Ent::stored(&full, b"")])).unwrap_err();
        assert_eq!(err.to_string(), format!("{full}: {want}"), "{name}");
    }
    // Allowed: letters of any script, spaces, leading dashes and dots.
    let zip = build(&[
        Ent::stored(&format!("{P}é/ж 中.go"), b""),
        Ent::stored(&format!("{P}-x/.y/~z#.go"), b""),
    ]);
    assert!(check(&zip).is_ok());
    // Names that are not UTF-8.
    let mut raw = P.as_bytes().to_vec();
    raw.extend_from_slice(b"a\xff.go");
    let err = check(&build(&[Ent::stored_raw(&raw, b"")])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "example.com/m@v1.0.0/a\u{fffd}.go: malformed file path \"a\\xff.go\": invalid UTF-8"
    );
}

#[test]
fn gomod_and_license_size_limits() {
    // A real go.mod one byte over the limit (the size check needs no
    // content read, but the bytes are there).
    let big = vec![b'\n'; MAX_GO_MOD as usize + 1];
    let err = check(&build(&[Ent::stored(&format!("{P}go.mod"), &big)])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "example.com/m@v1.0.0/go.mod: go.mod file too large (max size is 16777216 bytes)"
    );
    drop(big);
    // At the limit passes the size rule (and then fails for the content
    // missing: zip_bomb_stops_at_the_declared_size reads a full one).
    let mut at = Ent::stored(&format!("{P}go.mod"), b"module m\n");
    at.uncompressed = MAX_GO_MOD;
    assert!(matches!(
        check(&build(&[at])),
        Err(ZipError::UnexpectedEof { .. })
    ));
    // The limits look at declared sizes: a LICENSE declared too large.
    let mut license = Ent::stored(&format!("{P}LICENSE"), b"MIT");
    license.uncompressed = MAX_LICENSE + 1;
    let err = check(&build(&[license])).unwrap_err();
    assert_eq!(file_problems(err), [FileProblem::LicenseTooLarge],);
    // Only the root files have limits.
    let mut sub = Ent::stored(&format!("{P}sub/LICENSE"), b"MIT");
    sub.uncompressed = MAX_LICENSE + 1;
    assert!(matches!(
        check(&build(&[sub])),
        Err(ZipError::UnexpectedEof { .. })
    ));
}

#[test]
fn total_size_limit() {
    let mut a = Ent::stored(&format!("{P}a.bin"), b"");
    a.uncompressed = MAX_ZIP_FILE / 2 + 1;
    let mut b = a.clone();
    b.name = format!("{P}b.bin").into_bytes();
    // The size error wins over a file error, as in Go.
    let bad = Ent::stored(&format!("{P}../c"), b"");
    let err = check(&build(&[a.clone(), b, bad])).unwrap_err();
    assert!(matches!(err, ZipError::ContentsTooLarge), "{err:?}");
    assert_eq!(
        err.to_string(),
        "total uncompressed size of module contents too large (max size is 524288000 bytes)"
    );
    // Exactly at the limit passes the declared-size rules (and then fails
    // on the missing content).
    a.uncompressed = MAX_ZIP_FILE;
    assert!(matches!(
        check(&build(&[a])),
        Err(ZipError::UnexpectedEof { .. })
    ));
    // The zip itself.
    let err = check_zip(&mut Cursor::new(Vec::new()), MAX_ZIP_FILE + 1, M, V).unwrap_err();
    assert_eq!(
        err.to_string(),
        "module zip file is too large (524288001 bytes; limit is 524288000 bytes)"
    );
}

#[test]
fn zip_bomb_stops_at_the_declared_size() {
    // 1 GiB of zeros from 6.5 MiB of deflate, declared as 100 bytes.
    let mut e = Ent::stored(&format!("{P}go.mod"), b"");
    e.method = content::METHOD_DEFLATE;
    e.body = deflate_zeros(1 << 30);
    e.uncompressed = 100;
    let zip = build(&[e.clone()]);
    let mut r = Counting {
        inner: Cursor::new(&zip),
        read: 0,
    };
    let err = check_zip(&mut r, zip.len() as u64, M, V).unwrap_err();
    assert_eq!(
        err.to_string(),
        "example.com/m@v1.0.0/go.mod: uncompressed size is larger than declared size (100 bytes)"
    );
    // One 32 KiB buffer of the compressed data, plus the headers.
    assert!(r.read < 200 << 10, "read {} bytes", r.read);

    // Declared as the largest allowed go.mod: stops right after that much.
    e.uncompressed = MAX_GO_MOD;
    e.body = deflate_zeros((MAX_GO_MOD + (1 << 20)) as usize);
    let zip = build(&[e]);
    let mut r = Counting {
        inner: Cursor::new(&zip),
        read: 0,
    };
    assert!(matches!(
        check_zip(&mut r, zip.len() as u64, M, V),
        Err(ZipError::LargerThanDeclared { declared, .. }) if declared == MAX_GO_MOD
    ));
    let needed = MAX_GO_MOD / 258 * 13 / 8;
    assert!(r.read < needed + (100 << 10), "read {} bytes", r.read);

    // Stored content longer than declared.
    let mut s = Ent::stored(&format!("{P}a.go"), b"0123456789");
    s.uncompressed = 4;
    assert!(matches!(
        check(&build(&[s])),
        Err(ZipError::LargerThanDeclared { .. })
    ));
}

#[test]
fn content_shorter_than_declared() {
    let mut e = Ent::deflated(&format!("{P}a.go"), b"package m\n");
    e.uncompressed += 1;
    let err = check(&build(&[e])).unwrap_err();
    assert_eq!(err.to_string(), "example.com/m@v1.0.0/a.go: unexpected EOF");
}

#[test]
fn broken_deflate_streams() {
    let data = text(100_000);
    // Cut before the end of the stream (sizes recorded consistently).
    let mut e = Ent::deflated(&format!("{P}a.go"), &data);
    e.body.truncate(e.body.len() - 10);
    assert!(matches!(
        check(&build(&[e])),
        Err(ZipError::UnexpectedEof { .. })
    ));
    // Only the end of the final block missing: all content is there, but
    // the stream never ends (Go's flate says unexpected EOF).
    let small = b"hello, hello, hello\n";
    let mut e = Ent::deflated(&format!("{P}a.go"), small);
    let mut body = vec![0x00]; // a non-final stored block...
    body.extend_from_slice(&(small.len() as u16).to_le_bytes());
    body.extend_from_slice(&(!(small.len() as u16)).to_le_bytes());
    body.extend_from_slice(small); // ...and no final block
    e.body = body;
    assert!(matches!(
        check(&build(&[e.clone()])),
        Err(ZipError::UnexpectedEof { .. })
    ));
    e.body.extend_from_slice(&[0x03, 0x00]); // final empty fixed block
    assert!(check(&build(&[e])).is_ok());
    // Reserved block type 3.
    let mut e = Ent::deflated(&format!("{P}a.go"), small);
    e.body = vec![0x07, 0, 0, 0];
    assert!(matches!(
        check(&build(&[e])),
        Err(ZipError::CorruptDeflate { .. })
    ));
    // Data after the end of the stream is ignored, as in Go.
    let mut e = Ent::deflated(&format!("{P}a.go"), small);
    e.body.extend_from_slice(b"trailing");
    assert!(check(&build(&[e])).is_ok());
}

#[test]
fn unsupported_method() {
    let mut e = Ent::stored(&format!("{P}a.go"), b"x");
    e.method = 12;
    let err = check(&build(&[e])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "example.com/m@v1.0.0/a.go: zip: unsupported compression algorithm 12"
    );
}

#[test]
fn not_a_zip_and_truncated_zips() {
    for junk in [&b""[..], b"PK", b"not a zip file at all, just some text\n"] {
        let err = check(junk).unwrap_err();
        assert!(matches!(err, ZipError::Format(_)), "{junk:?}: {err:?}");
        assert!(err.to_string().starts_with("zip: not a valid zip file"));
    }
    let zip = build(&[
        Ent::deflated(&format!("{P}go.mod"), b"module example.com/m\n"),
        Ent::deflated(&format!("{P}a.go"), &text(50_000)),
    ]);
    // Any cut loses the end record, or the data it points at.
    for keep in [zip.len() - 1, zip.len() - 22, zip.len() / 2, 100, 30, 4] {
        let err = check(&zip[..keep]).unwrap_err();
        assert!(matches!(err, ZipError::Format(_)), "keep {keep}: {err:?}");
    }
    // The central directory intact but a local header gone.
    let mut broken = zip.clone();
    broken[0] = b'X';
    assert!(matches!(check(&broken), Err(ZipError::Format(_))));
    // A size short of the data: the end record is cut.
    let err = check_zip(&mut Cursor::new(&zip), zip.len() as u64 - 1, M, V).unwrap_err();
    assert!(matches!(err, ZipError::Format(_)), "{err:?}");
    // The directory end counts more entries than there are.
    let mut more = zip.clone();
    let end = more.len() - 22;
    more[end + 10] += 1;
    assert!(matches!(check(&more), Err(ZipError::Format(_))));
}

#[test]
fn module_and_version_are_checked_first() {
    let zip = build(&[]);
    let cases = [
        (
            "example.com/m",
            "v1.0",
            "version \"v1.0\" is not canonical (should be \"v1.0.0\")",
        ),
        (
            "example.com/m",
            "1.0.0",
            "version \"1.0.0\" is not canonical (should be \"\")",
        ),
        (
            "example.com/m",
            "v1.0.0+meta",
            "version \"v1.0.0+meta\" is not canonical (should be \"v1.0.0\")",
        ),
        (
            "example.com/m",
            "",
            "example.com/m@: invalid version: not a semantic version",
        ),
        (
            "example.com/m",
            "v2.0.0",
            "example.com/m@v2.0.0: invalid version: should be v0 or v1, not v2",
        ),
        (
            "example.com/m/v2",
            "v1.0.0",
            "example.com/m/v2@v1.0.0: invalid version: should be v2, not v1",
        ),
        (
            "gopkg.in/yaml.v2",
            "v3.0.0",
            "gopkg.in/yaml.v2@v3.0.0: invalid version: should be v2, not v3",
        ),
        (
            "Example.com/m",
            "v1.0.0",
            "malformed module path \"Example.com/m\": invalid char 'E' in first path element",
        ),
    ];
    for (m, v, want) in cases {
        assert_eq!(
            check_as(&zip, m, v).unwrap_err().to_string(),
            want,
            "{m}@{v}"
        );
    }
    for (m, v) in [
        ("example.com/m", "v2.0.0+incompatible"),
        ("example.com/m/v2", "v2.1.0-pre"),
        ("gopkg.in/check.v1", "v0.0.0-20161208181325-20d25e280405"),
        ("gopkg.in/yaml.v2", "v2.4.0"),
    ] {
        assert!(check_as(&zip, m, v).is_ok(), "{m}@{v}");
    }
}

#[test]
fn many_file_errors_are_listed_with_a_limit() {
    let entries: Vec<Ent> = (0..25)
        .map(|i| Ent::stored(&format!("other@v1.0.0/{i}"), b""))
        .collect();
    let err = check(&build(&entries)).unwrap_err();
    let msg = err.to_string();
    assert_eq!(msg.lines().count(), 21);
    assert!(msg.ends_with("(and 5 more)"));
    assert_eq!(file_problems(err).len(), 25);
}
