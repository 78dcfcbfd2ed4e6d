//! Tests for `modzip`, on zips built here by a small writer.

use std::io::Cursor;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use super::*;

const M: &str = "example.com/m";
const V: &str = "v1.0.0";
const P: &str = "example.com/m@v1.0.0/";

mod rejections;
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
