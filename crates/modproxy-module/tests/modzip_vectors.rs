//! `h1:` hashes against values the Go toolchain records: a module zip that
//! Go ships with its go.sum-style hash, and a go.sum go.mod line of the Go
//! test proxy. See `tests/data/README.md` for where the files come from.

use std::fs::File;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use modproxy_module::modzip::{check_zip, hash_gomod, ZipError};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// The h1 recorded for `zip` in fips140.sum (lines `NAME SHA256HEX H1HASH`).
fn recorded_h1(zip: &str) -> String {
    let sum = std::fs::read_to_string(data("fips140.sum")).unwrap();
    sum.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 3 && f[0] == zip).then(|| f[2].to_owned())
        })
        .unwrap_or_else(|| panic!("{zip} not in fips140.sum"))
}

#[test]
fn go_fips140_snapshot_zip_hash_matches_fips140_sum() {
    let name = "v1.0.0-c2097c7c.zip";
    let want = recorded_h1(name);
    assert_eq!(want, "h1:YapsF69QWGwygaBqdI0rp7IfE5a6tAwepNAHONVcWqQ=");
    let mut f = File::open(data(name)).unwrap();
    let size = f.metadata().unwrap().len();
    // The zip of the golang.org/fips140 module at version v1.0.0-c2097c7c.
    let report = check_zip(&mut f, size, "golang.org/fips140", "v1.0.0-c2097c7c").unwrap();
    assert_eq!(report.h1, want);
    assert_eq!(report.files, 225);
    assert_eq!(report.uncompressed, 2_434_707);
    assert_eq!(report.gomod, None);

    // `&File` works as the reader too (as for a shared file handle).
    let f = File::open(data(name)).unwrap();
    let report2 = check_zip(&mut &f, size, "golang.org/fips140", "v1.0.0-c2097c7c").unwrap();
    assert_eq!(report2, report);
}

#[test]
fn go_fips140_zip_under_another_name_is_refused() {
    let bytes = std::fs::read(data("v1.0.0-c2097c7c.zip")).unwrap();
    let size = bytes.len() as u64;
    let err = check_zip(
        &mut Cursor::new(&bytes),
        size,
        "golang.org/fips140",
        "v1.0.0",
    )
    .unwrap_err();
    let ZipError::InvalidFiles(list) = &err else {
        panic!("want file errors, got {err:?}");
    };
    assert_eq!(list.len(), 225);
    assert!(err
        .to_string()
        .starts_with("golang.org/fips140@v1.0.0-c2097c7c/fips140/v1.0.0-c2097c7c/aes/aes.go: path does not have prefix \"golang.org/fips140@v1.0.0/\"\n"));

    // A flipped byte inside compressed content is caught (by the CRC, or
    // by deflate, or by the declared size).
    let mut flipped = bytes.clone();
    flipped[1000] ^= 0x55;
    let err = check_zip(
        &mut Cursor::new(&flipped),
        size,
        "golang.org/fips140",
        "v1.0.0-c2097c7c",
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            ZipError::Checksum { .. }
                | ZipError::CorruptDeflate { .. }
                | ZipError::LargerThanDeclared { .. }
                | ZipError::UnexpectedEof { .. }
        ),
        "{err:?}"
    );
}

/// The `-- .mod --` section of a txtar file of cmd/go's test proxy.
fn txtar_mod(txtar: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in txtar.split_inclusive('\n') {
        if line.starts_with("-- ") && line.ends_with(" --\n") {
            inside = line == "-- .mod --\n";
            continue;
        }
        if inside {
            out.push_str(line);
        }
    }
    out
}

#[test]
fn go_sum_gomod_line_of_the_go_test_proxy() {
    // go.sum in cmd/go's tests: rsc.io/quote v1.5.2/go.mod h1:LzX7...
    let txtar = std::fs::read_to_string(data("rsc.io_quote_v1.5.2.txt")).unwrap();
    let gomod = txtar_mod(&txtar);
    assert_eq!(
        gomod,
        "module \"rsc.io/quote\"\n\nrequire \"rsc.io/sampler\" v1.3.0\n"
    );
    assert_eq!(
        hash_gomod(gomod.as_bytes()),
        "h1:LzX7hefJvL54yjefDEDHNONDjII0t9xZLPXsUe+TKr0="
    );
}
