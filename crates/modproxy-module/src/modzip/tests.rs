//! Tests for `modzip`, on zips built here by a small writer.

use std::io::Cursor;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use super::*;

const M: &str = "example.com/m";
const V: &str = "v1.0.0";
const P: &str = "example.com/m@v1.0.0/";

mod writer;

use writer::{build, build_with, crc, deflate_zeros, Counting, Ent, Layout};

fn check_as(zip: &[u8], module: &str, version: &str) -> Result<ZipReport, ZipError> {
    check_zip(&mut Cursor::new(zip), zip.len() as u64, module, version)
}

fn check(zip: &[u8]) -> Result<ZipReport, ZipError> {
    check_as(zip, M, V)
}

/// The h1 of files with these full names and contents.
fn h1_of(files: &[(&str, &[u8])]) -> String {
    let mut sums = files
        .iter()
        .map(|(n, d)| (n.to_string(), Sha256::digest(d).into()))
        .collect();
    hash1(&mut sums)
}

fn file_problems(err: ZipError) -> Vec<FileProblem> {
    match err {
        ZipError::InvalidFiles(list) => list.into_iter().map(|e| e.problem).collect(),
        other => panic!("want file errors, got {other:?}"),
    }
}

/// Content that compresses well but not trivially, longer than the
/// 32 KiB window so that the inflate window wraps several times.
fn text(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut x: u32 = 1;
    while out.len() < len {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        let word = [
            "func ", "return ", "x", "y := ", "\n", "\t", "// go\n", "0123",
        ][(x >> 16) as usize % 8];
        out.extend_from_slice(word.as_bytes());
    }
    out.truncate(len);
    out
}

#[test]
fn accepts_a_module_zip_and_hashes_it() {
    let gomod = b"module example.com/m\n\ngo 1.21\n".to_vec();
    let big = text(300_000);
    let zip = build(&[
        Ent::stored(&format!("{P}go.mod"), &gomod),
        Ent::deflated(&format!("{P}LICENSE"), b"MIT"),
        Ent::deflated(&format!("{P}a/b.go"), &big),
        Ent::stored(&format!("{P}a/empty.txt"), b""),
        Ent::deflated(&format!("{P}a/empty-deflated.txt"), b""),
    ]);
    let report = check(&zip).unwrap();
    assert_eq!(
        report.h1,
        h1_of(&[
            (&format!("{P}go.mod"), &gomod),
            (&format!("{P}LICENSE"), b"MIT"),
            (&format!("{P}a/b.go"), &big),
            (&format!("{P}a/empty.txt"), b""),
            (&format!("{P}a/empty-deflated.txt"), b""),
        ])
    );
    assert_eq!(report.gomod, Some(gomod.clone()));
    assert_eq!(report.files, 5);
    assert_eq!(report.uncompressed, (gomod.len() + 3 + big.len()) as u64);
}

#[test]
fn zip_without_gomod_and_empty_zip() {
    let zip = build(&[Ent::stored(&format!("{P}x.go"), b"package x\n")]);
    let report = check(&zip).unwrap();
    assert_eq!(report.gomod, None);
    assert_eq!(report.files, 1);

    let empty = check(&build(&[])).unwrap();
    assert_eq!(empty.files, 0);
    assert_eq!(empty.h1, h1_of(&[]));
    // sha256("") of an empty summary.
    assert_eq!(empty.h1, "h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
}

/// Go's HashZip hashes directory entries (as empty files, under their
/// names with the slash) and the bare prefix entry; for a repeated
/// directory name it hashes the last entry once per occurrence. The value
/// is the one Go's dirhash.HashZip gives for this zip.
#[test]
fn directory_entries_are_hashed_like_go() {
    let zip = build(&[
        Ent::stored(P, b""),
        Ent::stored(&format!("{P}dir/"), b""),
        Ent::stored(&format!("{P}dir/f.go"), b"package dir\n"),
        Ent::stored(&format!("{P}dir/"), b""),
    ]);
    let report = check(&zip).unwrap();
    assert_eq!(
        report.h1,
        h1_of(&[
            (P, b""),
            (&format!("{P}dir/"), b""),
            (&format!("{P}dir/"), b""),
            (&format!("{P}dir/f.go"), b"package dir\n"),
        ])
    );
    assert_eq!(report.h1, "h1:t5n9e4eW9rQqpoTRkjbJ2RYUt40CBHqnGJFsRB+rzzc=");
    assert_eq!(report.files, 1);

    // A directory entry may have a compressed size but no content.
    let mut dir = Ent::stored(&format!("{P}d/"), b"");
    dir.uncompressed = 1;
    assert!(matches!(check(&build(&[dir])), Err(ZipError::Format(_))));
}

#[test]
fn rsc_io_quote_test_proxy_zip() {
    // cmd/go's test proxy serves this txtar's files (all but .mod/.info)
    // as the module zip; go.sum files in cmd/go's tests record its hash.
    let txtar = include_str!("../../tests/data/rsc.io_quote_v1.5.2.txt");
    let prefix = "rsc.io/quote@v1.5.2/";
    let mut files: Vec<(String, String)> = Vec::new();
    for line in txtar.split_inclusive('\n') {
        let marker = line
            .strip_prefix("-- ")
            .and_then(|l| l.strip_suffix(" --\n"));
        match (marker, files.last_mut()) {
            (Some(name), _) => files.push((name.to_owned(), String::new())),
            (None, Some((_, data))) => data.push_str(line),
            (None, None) => {} // the archive comment
        }
    }
    let entries: Vec<Ent> = files
        .iter()
        .filter(|(name, _)| !name.starts_with('.'))
        .map(|(name, data)| Ent::deflated(&format!("{prefix}{name}"), data.as_bytes()))
        .collect();
    assert_eq!(entries.len(), 4);
    let zip = build(&entries);
    let report = check_as(&zip, "rsc.io/quote", "v1.5.2").unwrap();
    assert_eq!(report.h1, "h1:3fEykkD9k7lYzXqCYrwGAf7iNhbk4yCjHmKBN9td4L0=");
    assert_eq!(report.files, 4);
    assert!(report.gomod.is_some());
}

#[test]
fn zip64_records_prepended_data_and_comments() {
    let files = [
        Ent::deflated(&format!("{P}go.mod"), b"module example.com/m\n"),
        Ent::stored(&format!("{P}a.go"), b"package m\n"),
    ];
    let want = check(&build(&files)).unwrap();
    let zip64 = build_with(
        &files,
        &Layout {
            zip64: true,
            ..Layout::default()
        },
    );
    assert_eq!(check(&zip64).unwrap(), want);
    let prepended = build_with(
        &files,
        &Layout {
            prepend: b"#!/bin/sh\nexit 0\n".to_vec(),
            ..Layout::default()
        },
    );
    assert_eq!(check(&prepended).unwrap(), want);
    let commented = build_with(
        &files,
        &Layout {
            comment: vec![b'c'; 5000],
            ..Layout::default()
        },
    );
    assert_eq!(check(&commented).unwrap(), want);
}

#[test]
fn data_descriptors() {
    let data = b"package m\n";
    let good = |sig| Ent::deflated(&format!("{P}a.go"), data).with_descriptor(sig, crc(data));
    for sig in [true, false] {
        let report = check(&build(&[good(sig)])).unwrap();
        assert_eq!(report.h1, h1_of(&[(&format!("{P}a.go"), data)]));
    }
    // The descriptor's CRC must be the central directory's.
    let bad = Ent::stored(&format!("{P}a.go"), data).with_descriptor(true, 1234);
    assert!(matches!(
        check(&build(&[bad])),
        Err(ZipError::Checksum { .. })
    ));
    // With a descriptor, even a recorded CRC of 0 is checked.
    let mut zero = Ent::stored(&format!("{P}a.go"), data).with_descriptor(true, 0);
    zero.crc32 = 0;
    assert!(matches!(
        check(&build(&[zero])),
        Err(ZipError::Checksum { .. })
    ));
    // Flagged but not written: what follows (the central directory) is
    // read as the descriptor, and its "CRC" does not match.
    let mut missing = Ent::stored(&format!("{P}a.go"), data);
    missing.flags |= 0x8;
    assert!(matches!(
        check(&build(&[missing])),
        Err(ZipError::Checksum { .. })
    ));
}

#[test]
fn bad_crc_is_refused() {
    let mut e = Ent::stored(&format!("{P}a.go"), b"package m\n");
    e.crc32 ^= 1;
    let err = check(&build(&[e])).unwrap_err();
    assert!(matches!(err, ZipError::Checksum { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "example.com/m@v1.0.0/a.go: zip: checksum error"
    );
    let mut e = Ent::deflated(&format!("{P}a.go"), &text(100_000));
    e.crc32 ^= 0x8000_0000;
    assert!(matches!(
        check(&build(&[e])),
        Err(ZipError::Checksum { .. })
    ));
    // Go does not check a CRC of 0 when there is no data descriptor.
    let mut e = Ent::stored(&format!("{P}a.go"), b"package m\n");
    e.crc32 = 0;
    assert!(check(&build(&[e])).is_ok());
}

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

#[test]
fn hash1_sorts_by_name_and_formats_like_go() {
    let mut a = vec![
        ("b".to_string(), Sha256::digest(b"b").into()),
        ("a".to_string(), Sha256::digest(b"a").into()),
    ];
    let mut b = a.clone();
    b.reverse();
    assert_eq!(hash1(&mut a), hash1(&mut b));
    assert_eq!(a[0].0, "a");
    // sha256sum-style summary.
    let summary = format!(
        "{:x}  a\n{:x}  b\n",
        Sha256::digest(b"a"),
        Sha256::digest(b"b")
    );
    assert_eq!(
        hash1(&mut a),
        format!(
            "h1:{}",
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(summary))
        )
    );
}

#[test]
fn hash_gomod_matches_go_sum() {
    // rsc.io/quote v1.5.2/go.mod, as served by cmd/go's test proxy.
    assert_eq!(
        hash_gomod(b"module \"rsc.io/quote\"\n\nrequire \"rsc.io/sampler\" v1.3.0\n"),
        "h1:LzX7hefJvL54yjefDEDHNONDjII0t9xZLPXsUe+TKr0="
    );
}
