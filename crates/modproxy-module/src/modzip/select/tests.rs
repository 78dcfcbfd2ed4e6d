use std::io::Cursor;

use sha2::{Digest as _, Sha256};

use super::*;
use crate::modzip::{check_zip, hash1, ZipWriter};

const M: &str = "example.com/m";
const V: &str = "v1.0.0";

fn file(path: &str, kind: SourceKind, size: u64) -> SourceFile {
    SourceFile {
        path: path.to_owned(),
        kind,
        size,
    }
}

fn regular(paths: &[&str]) -> Vec<SourceFile> {
    paths
        .iter()
        .map(|p| file(p, SourceKind::Regular, 10))
        .collect()
}

/// The selected (index, name) pairs.
fn pick(
    subdir: &str,
    go: Option<&str>,
    files: &[SourceFile],
) -> Result<Vec<(usize, String)>, CreateError> {
    Ok(select_files(M, V, subdir, go, files)?
        .into_iter()
        .map(|s| (s.index, s.name))
        .collect())
}

/// The selected names.
fn names(subdir: &str, go: Option<&str>, files: &[SourceFile]) -> Vec<String> {
    pick(subdir, go, files)
        .unwrap()
        .into_iter()
        .map(|(_, n)| n)
        .collect()
}

fn problems(err: CreateError) -> Vec<(String, CreateProblem)> {
    match err {
        CreateError::InvalidFiles(list) => list.into_iter().map(|e| (e.path, e.problem)).collect(),
        other => panic!("want file errors, got {other:?}"),
    }
}

fn err(subdir: &str, files: &[SourceFile]) -> CreateError {
    select_files(M, V, subdir, None, files).unwrap_err()
}

#[test]
fn root_module_takes_every_file_in_order() {
    let files = regular(&["LICENSE", "README.md", "a.go", "go.mod", "pkg/b.go"]);
    assert_eq!(
        pick("", Some("1.21"), &files).unwrap(),
        vec![
            (0, "LICENSE".to_owned()),
            (1, "README.md".to_owned()),
            (2, "a.go".to_owned()),
            (3, "go.mod".to_owned()),
            (4, "pkg/b.go".to_owned()),
        ]
    );
    assert_eq!(names("", None, &[]), Vec::<String>::new());
}

#[test]
fn subdir_module_takes_its_files_named_from_its_directory() {
    let files = regular(&[
        "a.go",
        "go.mod",
        "sub/go.mod",
        "sub/pkg/y.go",
        "sub/x.go",
        "subway/z.go",
        "xsub/w.go",
    ]);
    let want = vec![
        (2, "go.mod".to_owned()),
        (3, "pkg/y.go".to_owned()),
        (4, "x.go".to_owned()),
    ];
    assert_eq!(pick("sub", None, &files).unwrap(), want);
    assert_eq!(pick("/sub/", None, &files).unwrap(), want);
    let deeper = regular(&["a/b/go.mod", "a/b/c.go", "a/bc/d.go", "a/c.go"]);
    assert_eq!(names("a/b", None, &deeper), ["go.mod", "c.go"]);
}

#[test]
fn root_license_is_added_last_to_a_subdir_module_without_one() {
    let mut files = regular(&["LICENSE", "go.mod", "sub/go.mod", "sub/x.go"]);
    files[0].size = 1234;
    assert_eq!(
        pick("sub", None, &files).unwrap(),
        vec![
            (2, "go.mod".to_owned()),
            (3, "x.go".to_owned()),
            (0, "LICENSE".to_owned()),
        ]
    );
    // Not for a root module (its LICENSE is simply one of its files;
    // sub is another module).
    assert_eq!(names("", None, &files), ["LICENSE", "go.mod"]);
    // `git cat-file blob REV:LICENSE` reads a symlink too (its target
    // text) and the go command zips that as a regular file.
    files[0].kind = SourceKind::Symlink;
    assert_eq!(names("sub", None, &files), ["go.mod", "x.go", "LICENSE"]);
    // A submodule named LICENSE is not a blob.
    files[0].kind = SourceKind::Other;
    assert_eq!(names("sub", None, &files), ["go.mod", "x.go"]);
    // None at the root: nothing added.
    assert_eq!(names("sub", None, &files[1..]), ["go.mod", "x.go"]);
}

#[test]
fn subdir_must_be_in_the_tree() {
    let mut files = regular(&["LICENSE", "a.go", "sub/x.go", "subway/y.go"]);
    let e = err("su", &files);
    assert!(matches!(e, CreateError::SubdirNotFound), "{e:?}");
    assert_eq!(e.to_string(), "file does not exist");
    // `git archive` matches a file or a submodule (an empty module).
    assert_eq!(names("a.go", None, &files), ["LICENSE"]);
    files[2].kind = SourceKind::Other;
    assert_eq!(names("sub/x.go", None, &files), ["LICENSE"]);
    assert_eq!(names("sub", None, &files), ["LICENSE"]);
    assert!(matches!(err("x", &[]), CreateError::SubdirNotFound));
    assert_eq!(names("", None, &[]), Vec::<String>::new());
}

#[test]
fn own_license_keeps_the_root_one_out() {
    let files = regular(&["LICENSE", "sub/LICENSE", "sub/go.mod"]);
    assert_eq!(
        pick("sub", None, &files).unwrap(),
        vec![(1, "LICENSE".to_owned()), (2, "go.mod".to_owned())]
    );
    // Even a symlinked LICENSE, which is then left out itself.
    let mut files = files;
    files[1].kind = SourceKind::Symlink;
    assert_eq!(names("sub", None, &files), ["go.mod"]);
    // A submodule named LICENSE is a directory to `git archive`.
    files[1].kind = SourceKind::Other;
    assert_eq!(names("sub", None, &files), ["go.mod", "LICENSE"]);
}

#[test]
fn nested_modules_are_left_out_with_everything_below() {
    let mut files = regular(&[
        "a/b/c.go",
        "a/go.mod",
        "a/x.go",
        "ab/d.go",
        "b/GO.MOD",
        "b/e.go",
        "c/go.mod",
        "c/f.go",
        "d/go.mod/g.go",
        "go.mod",
        "m.go",
    ]);
    // A symlinked go.mod does not make a module.
    files[6].kind = SourceKind::Symlink;
    assert_eq!(
        names("", None, &files),
        ["ab/d.go", "c/f.go", "d/go.mod/g.go", "go.mod", "m.go"]
    );
    // The same below a subdirectory.
    let files = regular(&[
        "sub/go.mod",
        "sub/inner/go.mod",
        "sub/inner/i.go",
        "sub/s.go",
    ]);
    assert_eq!(names("sub", None, &files), ["go.mod", "s.go"]);
}

const VENDOR_TREE: &[&str] = &[
    "go.mod",
    "pkg/vendor.go",
    "pkg/vendor/foo/foo.go",
    "pkg/vendor/vendor.go",
    "vendor/a.go",
    "vendor/modules.txt",
    "vendor/x/y.go",
    "vendorx/y/z.go",
    "x/vendor/modules.txt",
];

#[test]
fn vendor_rules_before_go_1_24() {
    let files = regular(VENDOR_TREE);
    let old = [
        "go.mod",
        "pkg/vendor.go",
        "vendor/a.go",
        "vendor/modules.txt",
        "vendorx/y/z.go",
    ];
    for go in [
        None,
        Some("1.23"),
        Some("1.23.4"),
        Some("1.16"),
        Some("1.24.0rc1"),
    ] {
        assert_eq!(names("", go, &files), old, "go {go:?}");
    }
    // A go version is only used with a go.mod to read it from.
    assert_eq!(names("", Some("1.24"), &files[1..]), &old[1..], "no go.mod");
    let mut symlinked = files.clone();
    symlinked[0].kind = SourceKind::Symlink;
    assert_eq!(names("", Some("1.24"), &symlinked), &old[1..]);
}

#[test]
fn vendor_rules_from_go_1_24() {
    let files = regular(VENDOR_TREE);
    let new = [
        "go.mod",
        "pkg/vendor.go",
        "pkg/vendor/vendor.go",
        "vendor/a.go",
        "vendorx/y/z.go",
        "x/vendor/modules.txt",
    ];
    for go in [
        "1.24", "1.24.0", "1.24.3", "1.24rc1", "1.25", "1.100", "2.0", "1.24foo",
    ] {
        assert_eq!(names("", Some(go), &files), new, "go {go}");
    }
    // Below a subdirectory, the module's own go.mod decides.
    let sub: Vec<SourceFile> = VENDOR_TREE
        .iter()
        .map(|p| file(&format!("sub/{p}"), SourceKind::Regular, 1))
        .collect();
    assert_eq!(names("sub", Some("1.24"), &sub), new);
}

#[test]
fn go_versions_are_read_as_modfile_and_go_version_read_them() {
    let cases = [
        ("1.24", true),
        ("1.24.0", true),
        ("1.24rc2", true),
        ("1.24beta1", true),
        ("1.24.1.2", true), // lax: 1.24
        ("v1.24.1", true),  // lax: 1.24
        ("1.24-pre", true), // lax: 1.24
        ("1.23.99", false),
        ("1.23rc1", false),
        ("1.9", false),
        ("1", false),
        ("1.024", false),
        ("01.24", false),
        ("0.24", false),
        ("v1.24", false), // neither pattern
        ("1.24.0rc1", false),
        ("1.24rc", false), // lax needs a non-digit after the minor: here "rc"
        ("", false),
        ("go1.24", false),
        ("10.0", true),
        ("1.240", true),
    ];
    for (v, want) in cases {
        // "1.24rc" matches only the lax pattern, which keeps "1.24".
        let want = want || v == "1.24rc";
        assert_eq!(go_lang_at_least_1_24(v), want, "{v:?}");
    }
}

#[test]
fn vcs_directories_are_kept_and_hg_archival_txt_dropped() {
    let mut files = regular(&[
        ".bzr/x",
        ".git/config",
        ".hg/hgrc",
        ".hg_archival.txt",
        ".svn/entries",
        "a/.hg_archival.txt",
        "go.mod",
        "sub",
    ]);
    // A submodule is a directory entry in `git archive`: not a file.
    files[7].kind = SourceKind::Other;
    assert_eq!(
        names("", None, &files),
        [
            ".bzr/x",
            ".git/config",
            ".hg/hgrc",
            ".svn/entries",
            "a/.hg_archival.txt",
            "go.mod"
        ]
    );
}

#[test]
fn symlinks_are_left_out_but_still_collide() {
    let mut files = regular(&["a.go", "link.go", "x/l"]);
    files[1].kind = SourceKind::Symlink;
    files[2].kind = SourceKind::Symlink;
    assert_eq!(names("", None, &files), ["a.go"]);
    let mut files = regular(&["A.go", "a.go"]);
    files[1].kind = SourceKind::Symlink;
    assert_eq!(
        problems(err("", &files)),
        [(
            "a.go".to_owned(),
            CreateProblem::File(FileProblem::CaseCollision("A.go".into(), "a.go".into()))
        )]
    );
    // A path's first error, an omission included, is its only one.
    let mut files = regular(&["a.go", "a.go"]);
    files[0].kind = SourceKind::Symlink;
    assert_eq!(names("", None, &files), Vec::<String>::new());
}

#[test]
fn too_large() {
    let big = |p: &str, size| file(p, SourceKind::Regular, size);
    let half = MAX_ZIP_FILE / 2;
    assert_eq!(
        names("", None, &[big("a", half), big("b", MAX_ZIP_FILE - half)]),
        ["a", "b"]
    );
    let e = err("", &[big("a", half), big("b", half + 1)]);
    assert!(matches!(e, CreateError::TooLarge), "{e:?}");
    assert_eq!(
        e.to_string(),
        "create zip: module source tree too large (max size is 524288000 bytes)"
    );
    // Omitted files do not count; the size error wins over file errors.
    let mut files = vec![big("a", MAX_ZIP_FILE), big("l", 1), big("v/go.mod", 1)];
    files.push(big("v/x", MAX_ZIP_FILE));
    files[1].kind = SourceKind::Symlink;
    assert_eq!(names("", None, &files), ["a"]);
    files.push(big("b", 1));
    files.push(big("c:", 1));
    assert!(matches!(err("", &files), CreateError::TooLarge));
    // go.mod and LICENSE have their own limits.
    let files = [
        big("go.mod", MAX_GO_MOD + 1),
        big("LICENSE", MAX_LICENSE + 1),
    ];
    assert_eq!(
        problems(err("", &files)),
        [
            (
                "go.mod".to_owned(),
                CreateProblem::File(FileProblem::GoModTooLarge)
            ),
            (
                "LICENSE".to_owned(),
                CreateProblem::File(FileProblem::LicenseTooLarge)
            ),
        ]
    );
    let files = [big("go.mod", MAX_GO_MOD), big("LICENSE", MAX_LICENSE)];
    assert_eq!(names("", None, &files), ["go.mod", "LICENSE"]);
    // The root LICENSE added to a subdir module is checked like any.
    let files = [big("LICENSE", MAX_LICENSE + 1), big("sub/a.go", 1)];
    assert_eq!(
        err("sub", &files).to_string(),
        "create zip: LICENSE: LICENSE file too large (max size is 16777216 bytes)"
    );
}

#[test]
fn case_fold_collisions_and_duplicates() {
    let files = regular(&[
        "README", "Pkg/a.go", "pkg/b.go", "readme", "x", "x/y", "z", "z",
    ]);
    let e = err("", &files);
    assert_eq!(
        e.to_string(),
        "create zip: pkg/b.go: case-insensitive file name collision: \"Pkg\" and \"pkg\"\n\
         readme: case-insensitive file name collision: \"README\" and \"readme\"\n\
         x/y: entry \"x\" is both a file and a directory\n\
         z: multiple entries for file \"z\""
    );
    // Kelvin sign folds with k.
    let files = regular(&["\u{212a}.go", "k.go"]);
    assert_eq!(
        problems(err("", &files)),
        [(
            "k.go".to_owned(),
            CreateProblem::File(FileProblem::CaseCollision(
                "\u{212a}.go".into(),
                "k.go".into()
            ))
        )]
    );
}

#[test]
fn malformed_names() {
    let files = regular(&["GO.MOD", "a//b.go", "a/./b.go", "c:d.go", "e/.."]);
    let got = problems(err("", &files));
    let kinds: Vec<_> = got
        .iter()
        .map(|(p, problem)| match problem {
            CreateProblem::File(FileProblem::MalformedPath(_)) => (p.as_str(), "malformed"),
            CreateProblem::File(FileProblem::NotClean) => (p.as_str(), "not clean"),
            CreateProblem::File(FileProblem::GoModCase) => (p.as_str(), "go.mod case"),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("GO.MOD", "go.mod case"),
            ("a//b.go", "not clean"),
            ("a/./b.go", "not clean"),
            ("c:d.go", "malformed"),
            ("e/..", "not clean"),
        ]
    );
    assert_eq!(
        got[3].1.to_string(),
        "malformed file path \"c:d.go\": invalid char ':'"
    );
    // Below a subdirectory, a doubled slash leaves an absolute name.
    let files = regular(&["sub//a.go", "sub/b.go"]);
    assert_eq!(
        err("sub", &files).to_string(),
        "create zip: /a.go: file path is not relative"
    );
}

#[test]
fn module_and_version_are_checked() {
    let files = regular(&["go.mod"]);
    let e = select_files(M, "v1.0", "", None, &files).unwrap_err();
    assert_eq!(
        e.to_string(),
        "create zip: version \"v1.0\" is not canonical (should be \"v1.0.0\")"
    );
    let e = select_files(M, "v2.0.0", "", None, &files).unwrap_err();
    assert!(
        matches!(e, CreateError::Module(ZipError::InvalidVersion { .. })),
        "{e:?}"
    );
    assert!(select_files("example.com/m/v2", "v2.0.0", "", None, &files).is_ok());
    assert!(select_files("Example", V, "", None, &files).is_err());
}

#[test]
fn clean_paths() {
    for p in [
        ".", "/", "a", "a/b", "..", "../a", "../../a", "/a", ".a/b..c",
    ] {
        assert!(is_clean(p), "{p:?}");
    }
    for p in [
        "", "a/", "a//b", "./a", "a/.", "a/..", "/..", "/../a", "a/../b", "//a",
    ] {
        assert!(!is_clean(p), "{p:?}");
    }
}

/// A selection written with ZipWriter passes check_zip with the h1 of
/// the same files.
#[test]
fn selected_files_written_with_zip_writer_check_and_hash() {
    let gomod = b"module example.com/m\n\ngo 1.24\n".to_vec();
    let big: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let contents: Vec<(&str, SourceKind, Vec<u8>)> = vec![
        ("LICENSE", SourceKind::Regular, b"root license".to_vec()),
        (
            "go.mod",
            SourceKind::Regular,
            b"module example.com\n".to_vec(),
        ),
        ("m/go.mod", SourceKind::Regular, gomod.clone()),
        ("m/a.go", SourceKind::Regular, b"package m\n".to_vec()),
        ("m/big.bin", SourceKind::Regular, big),
        ("m/empty", SourceKind::Regular, Vec::new()),
        ("m/link", SourceKind::Symlink, b"a.go".to_vec()),
        (
            "m/vendor/modules.txt",
            SourceKind::Regular,
            b"# x\n".to_vec(),
        ),
        (
            "m/\u{00e9}t\u{00e9}.go",
            SourceKind::Regular,
            b"package m\n".to_vec(),
        ),
        (
            "other/x.go",
            SourceKind::Regular,
            b"package other\n".to_vec(),
        ),
    ];
    let files: Vec<SourceFile> = contents
        .iter()
        .map(|(p, k, d)| file(p, *k, d.len() as u64))
        .collect();
    let selected = select_files(M, V, "m", Some("1.24"), &files).unwrap();
    let got: Vec<&str> = selected.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        got,
        [
            "go.mod",
            "a.go",
            "big.bin",
            "empty",
            "\u{00e9}t\u{00e9}.go",
            "LICENSE"
        ]
    );

    let prefix = format!("{M}@{V}/");
    let mut zw = ZipWriter::new(Vec::new());
    let mut sums = Vec::new();
    for s in &selected {
        let data = &contents[s.index].2;
        let name = format!("{prefix}{}", s.name);
        zw.add(&name, &data[..], data.len() as u64).unwrap();
        sums.push((name, Sha256::digest(data).into()));
    }
    let zip = zw.finish().unwrap();
    let report = check_zip(&mut Cursor::new(&zip), zip.len() as u64, M, V).unwrap();
    assert_eq!(report.h1, hash1(&mut sums));
    assert_eq!(report.files, selected.len());
    assert_eq!(report.gomod.as_deref(), Some(&gomod[..]));
}
