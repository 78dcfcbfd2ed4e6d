//! Which files of a version-control tree go into a module zip, by the
//! rules the go command applies when it builds a zip from a repository:
//! `(*codeRepo).Zip` in `cmd/go/internal/modfetch/coderepo.go` (the files
//! `git archive` lists under the module's directory, plus the repository
//! root's LICENSE for a module in a subdirectory) feeding `modzip.Create`
//! and its `checkFiles` (golang.org/x/mod/zip): nested modules, vendored
//! packages (by the module's go version), symbolic links, the
//! `.hg_archival.txt` of `hg archive`, and the name and size errors.
//!
//! Unlike `modzip.CreateFromDir`, the go command does not drop `.bzr`,
//! `.git`, `.hg` or `.svn` directories when it zips a repository tree: a
//! committed `.hg/hgrc` is in the zip (and in its h1: hash), so it is kept
//! here too.

use std::collections::HashSet;
use std::fmt;

use super::names::Collisions;
use super::{check_module_version, FileProblem, ZipError, MAX_GO_MOD, MAX_LICENSE, MAX_ZIP_FILE};
use crate::path::check_file_path;

/// What version control has for one path of the tree at a revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// A file (`git ls-tree` mode 100644 or 100755).
    Regular,
    /// A symbolic link (mode 120000); its content is the link target.
    Symlink,
    /// Anything `git archive` writes as a directory entry rather than a
    /// file, such as a submodule (mode 160000): the go command never sees
    /// it as a file, so it is ignored (no name checks, no LICENSE).
    Other,
}

/// One path of the tree at a revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Relative to the repository root, `/`-separated, as `git archive` and
    /// `git ls-tree -r` list it (directories themselves are not listed).
    pub path: String,
    pub kind: SourceKind,
    /// The size of the content (for a symlink, of its target text).
    pub size: u64,
}

/// A file chosen for the zip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    /// Its index in the input.
    pub index: usize,
    /// Its name inside the module (`go.mod`, `LICENSE`, `pkg/a.go`): the
    /// zip entry is `module@version/` + this.
    pub name: String,
}

/// Why a module zip cannot be built from a tree (Go's `modzip.Create`
/// errors, which it prefixes with `create zip: `).
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// The module path or version is rejected (the checks of `check_zip`:
    /// only [`ZipError::NonCanonicalVersion`], [`ZipError::ModulePath`]
    /// and [`ZipError::InvalidVersion`] occur here).
    #[error("create zip: {0}")]
    Module(ZipError),
    /// Nothing in the tree is at or below `subdir`: `git archive` finds no
    /// match for it, and the go command reports `fs.ErrNotExist`.
    #[error("file does not exist")]
    SubdirNotFound,
    /// The files to zip add up to more than [`MAX_ZIP_FILE`] bytes. Go
    /// reports this in preference to any file error.
    #[error("create zip: module source tree too large (max size is {MAX_ZIP_FILE} bytes)")]
    TooLarge,
    /// Files that break the name or size rules, in input order (Go's
    /// `FileErrorList`: one per line, all of them).
    #[error("create zip: {}", list_errors(.0))]
    InvalidFiles(Vec<CreateFileError>),
}

/// A file that cannot go into a module zip: Go's `FileError` from
/// `checkFiles`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateFileError {
    /// The file's name inside the module (no `module@version/` prefix).
    pub path: String,
    pub problem: CreateProblem,
}

impl fmt::Display for CreateFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.problem)
    }
}

/// What is wrong with one file; the messages are Go's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateProblem {
    /// The name starts with `/` (only possible for a malformed input
    /// path, such as `sub//a.go` for the module in `sub`).
    #[error("file path is not relative")]
    NotRelative,
    /// One of the problems `check_zip` also reports: not clean, malformed,
    /// a case-insensitive collision, a duplicate, a file that is also a
    /// directory, a go.mod spelled in another case, a go.mod or LICENSE
    /// over 16 MiB.
    #[error(transparent)]
    File(FileProblem),
}

fn list_errors(errors: &[CreateFileError]) -> String {
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    lines.join("\n")
}

/// Go's rules: which of `files` go into the zip of `module`@`version`.
///
/// * `subdir` is the module's directory in the repository (`""` at the
///   root; surrounding slashes are ignored). Only files below it are
///   taken, named relative to it. If the module is in a subdirectory and
///   has no `LICENSE` of its own, the repository root's `LICENSE` is added
///   last, named `LICENSE` (as the go command adds `git cat-file blob
///   REV:LICENSE`, which also reads a symlink, as its target text).
/// * `go_version` is the argument of the `go` directive of the module's
///   own go.mod (`subdir/go.mod`), as written: `None` when there is no
///   go.mod, no `go` line, or a go.mod Go's `modfile.ParseLax` rejects.
///   Go then uses the empty version, which sorts before every release:
///   the pre-1.24 vendor rules. It is also ignored unless `files` has a
///   regular `subdir/go.mod`, as Go reads it only from such a file.
/// * `files` should be in `git ls-tree -r` order (the order of `git
///   archive`): it decides which of two colliding names is reported and
///   the order of the result.
///
/// The content of each [`Selected`] file is its blob, byte for byte (no
/// end-of-line conversion or export-subst: the go command disables them).
pub fn select_files(
    module: &str,
    version: &str,
    subdir: &str,
    go_version: Option<&str>,
    files: &[SourceFile],
) -> Result<Vec<Selected>, CreateError> {
    check_module_version(module, version).map_err(CreateError::Module)?;
    let candidates = module_files(subdir, files).ok_or(CreateError::SubdirNotFound)?;

    // Directories holding a go.mod (of any case) other than the root hold
    // other modules; the root go.mod gives the go version.
    let mut have_go_mod = HashSet::new();
    let mut root_go_mod = false;
    for c in &candidates {
        let (dir, base) = split(c.name);
        if base.eq_ignore_ascii_case("go.mod") && c.kind == SourceKind::Regular {
            have_go_mod.insert(dir);
            root_go_mod |= c.name == "go.mod";
        }
    }
    let go124 = root_go_mod && go_version.is_some_and(go_lang_at_least_1_24);
    let in_submodule = |mut p: &str| loop {
        let (dir, _) = split(p);
        if dir.is_empty() {
            return false;
        }
        if have_go_mod.contains(dir) {
            return true;
        }
        p = &dir[..dir.len() - 1];
    };

    // Go's addError records a path's first error (an omission included)
    // and drops any later one for the same path.
    let mut error_paths = HashSet::new();
    let mut invalid = Vec::new();
    let mut add_error = |path: &str, problem: Option<CreateProblem>| {
        if error_paths.insert(path.to_owned()) {
            if let Some(problem) = problem {
                invalid.push(CreateFileError {
                    path: path.to_owned(),
                    problem,
                });
            }
        }
    };
    let file_error = |p: FileProblem| Some(CreateProblem::File(p));

    let mut collisions = Collisions::default();
    let mut max_size = MAX_ZIP_FILE;
    let mut size_error = false;
    let mut selected = Vec::new();
    for c in &candidates {
        let p = c.name;
        if !is_clean(p) {
            add_error(p, file_error(FileProblem::NotClean));
            continue;
        }
        if p.starts_with('/') {
            add_error(p, Some(CreateProblem::NotRelative));
            continue;
        }
        if is_vendored_package(p, go124) || in_submodule(p) || p == ".hg_archival.txt" {
            add_error(p, None);
            continue;
        }
        if let Err(err) = check_file_path(p) {
            add_error(p, file_error(FileProblem::MalformedPath(err)));
            continue;
        }
        // strings.ToLower(p) == "go.mod": only ASCII letters lower to
        // the letters of "go.mod".
        if p.eq_ignore_ascii_case("go.mod") && p != "go.mod" {
            add_error(p, file_error(FileProblem::GoModCase));
            continue;
        }
        if let Err(problem) = collisions.check(p, false) {
            add_error(p, file_error(problem));
            continue;
        }
        if c.kind != SourceKind::Regular {
            add_error(p, None);
            continue;
        }
        if c.size <= max_size {
            max_size -= c.size;
        } else {
            size_error = true;
        }
        if p == "go.mod" && c.size > MAX_GO_MOD {
            add_error(p, file_error(FileProblem::GoModTooLarge));
            continue;
        }
        if p == "LICENSE" && c.size > MAX_LICENSE {
            add_error(p, file_error(FileProblem::LicenseTooLarge));
            continue;
        }
        selected.push(Selected {
            index: c.index,
            name: p.to_owned(),
        });
    }
    if size_error {
        return Err(CreateError::TooLarge);
    }
    if !invalid.is_empty() {
        return Err(CreateError::InvalidFiles(invalid));
    }
    Ok(selected)
}

/// A file as `modzip.Create` gets it from `(*codeRepo).Zip`.
struct Candidate<'a> {
    index: usize,
    name: &'a str,
    kind: SourceKind,
    size: u64,
}

/// The files `(*codeRepo).Zip` hands to `modzip.Create`: those under
/// `subdir/` (directory entries, which is how `git archive` writes
/// submodules, are skipped), then the root LICENSE if the module is in a
/// subdirectory without one. `None` if nothing is at or below `subdir`
/// (`git archive REV SUBDIR` fails).
fn module_files<'a>(subdir: &str, files: &'a [SourceFile]) -> Option<Vec<Candidate<'a>>> {
    let subdir = subdir.trim_matches('/');
    let mut out = Vec::new();
    let mut have_license = false;
    let mut found = subdir.is_empty();
    for (index, f) in files.iter().enumerate() {
        let name = if subdir.is_empty() {
            f.path.as_str()
        } else {
            let Some(rest) = f.path.strip_prefix(subdir) else {
                continue;
            };
            found |= rest.is_empty() || rest.starts_with('/');
            match rest.strip_prefix('/') {
                Some(rest) => rest,
                None => continue,
            }
        };
        if f.kind == SourceKind::Other {
            continue;
        }
        if name.is_empty() || name.ends_with('/') {
            continue;
        }
        have_license |= name == "LICENSE";
        out.push(Candidate {
            index,
            name,
            kind: f.kind,
            size: f.size,
        });
    }
    if !have_license && !subdir.is_empty() {
        // `git cat-file blob REV:LICENSE` reads a file or a symlink.
        if let Some((index, f)) = files
            .iter()
            .enumerate()
            .find(|(_, f)| f.path == "LICENSE" && f.kind != SourceKind::Other)
        {
            out.push(Candidate {
                index,
                name: "LICENSE",
                kind: SourceKind::Regular,
                size: f.size,
            });
        }
    }
    found.then_some(out)
}

/// Go's `path.Split`: the directory (with its trailing slash, or empty)
/// and the last element.
fn split(p: &str) -> (&str, &str) {
    match p.rfind('/') {
        Some(i) => (&p[..=i], &p[i + 1..]),
        None => ("", p),
    }
}

/// Whether `path.Clean(p) == p`.
fn is_clean(p: &str) -> bool {
    if p == "." || p == "/" {
        return true;
    }
    let (rooted, rest) = match p.strip_prefix('/') {
        Some(rest) => (true, rest),
        None => (false, p),
    };
    if rest.is_empty() {
        return false;
    }
    // ".." survives Clean only at the start of a relative path.
    let mut leading = !rooted;
    for elem in rest.split('/') {
        match elem {
            "" | "." => return false,
            ".." if leading => {}
            ".." => return false,
            _ => leading = false,
        }
    }
    true
}

/// Go's `isVendoredPackage`: whether `name` is in a package whose import
/// path contains, but does not end with, a `vendor` element. From go 1.24
/// on (`go124`), `vendor/modules.txt` is vendored too, and a `vendor`
/// directory below the root is handled right (before, the bytes after the
/// first 8 of the name were searched for a slash: `pkg/vendor/vendor.go`
/// counted as vendored).
fn is_vendored_package(name: &str, go124: bool) -> bool {
    if go124 && name == "vendor/modules.txt" {
        return true;
    }
    let i = if name.starts_with("vendor/") {
        "vendor/".len()
    } else if let Some(j) = name.find("/vendor/") {
        if go124 {
            j + "/vendor/".len()
        } else {
            "/vendor/".len()
        }
    } else {
        return false;
    };
    name.as_bytes()[i..].contains(&b'/')
}

/// Whether the go.mod `go` directive `v` means go ≥ 1.24 the way
/// `modzip.checkFiles` decides it: `modfile.ParseLax` takes `v` if it
/// matches `GoVersionRE`, or cuts it to `MAJOR.MINOR` if it matches the
/// lax pattern (and fails the parse otherwise); then
/// `version.Compare(version.Lang("go"+v), "go1.24") >= 0`, where a version
/// `internal/gover` cannot parse is the empty language version, below
/// every release.
fn go_lang_at_least_1_24(v: &str) -> bool {
    let Some((major, minor)) = go_lang(v) else {
        return false;
    };
    cmp_int(major, "1").then(cmp_int(minor, "24")).is_ge()
}

/// `MAJOR` and `MINOR` of `version.Lang` of the version `ParseLax` keeps
/// for a `go` line, if that is a valid Go version.
fn go_lang(v: &str) -> Option<(&str, &str)> {
    match strict_go_version(v) {
        Some(StrictGo::Valid(major, minor)) => Some((major, minor)),
        Some(StrictGo::Unparsable) => None,
        None => {
            // laxGoVersionRE: ^v?(([1-9][0-9]*)\.(0|[1-9][0-9]*))([^0-9].*)$
            // ParseLax keeps the first group.
            let s = v.strip_prefix('v').unwrap_or(v);
            let (major, rest) = cut_int(s).filter(|(m, _)| *m != "0")?;
            let (minor, rest) = cut_int(rest.strip_prefix('.')?)?;
            if rest.is_empty() || rest.starts_with(|c: char| c.is_ascii_digit()) {
                return None;
            }
            Some((major, minor))
        }
    }
}

/// A version that matches `GoVersionRE`, as `gover.Parse` sees it.
enum StrictGo<'a> {
    /// Major and minor.
    Valid(&'a str, &'a str),
    /// `1.21.0rc1`: a prerelease of a patch release, which `gover.Parse`
    /// refuses (so `version.Lang` is empty).
    Unparsable,
}

/// `GoVersionRE`: `^([1-9][0-9]*)\.(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))?([a-z]+[0-9]+)?$`.
fn strict_go_version(v: &str) -> Option<StrictGo<'_>> {
    let (major, rest) = cut_int(v).filter(|(m, _)| *m != "0")?;
    let (minor, mut rest) = cut_int(rest.strip_prefix('.')?)?;
    let mut patch = false;
    if let Some((_, r)) = rest.strip_prefix('.').and_then(cut_int) {
        (rest, patch) = (r, true);
    }
    if rest.is_empty() {
        return Some(StrictGo::Valid(major, minor));
    }
    let letters = rest.bytes().take_while(u8::is_ascii_lowercase).count();
    let digits = rest[letters..]
        .bytes()
        .take_while(u8::is_ascii_digit)
        .count();
    if letters == 0 || digits == 0 || letters + digits != rest.len() {
        return None;
    }
    Some(if patch {
        StrictGo::Unparsable
    } else {
        StrictGo::Valid(major, minor)
    })
}

/// A leading decimal number without needless leading zeros, and the rest
/// (Go's `gover.cutInt`).
fn cut_int(x: &str) -> Option<(&str, &str)> {
    let n = x.bytes().take_while(u8::is_ascii_digit).count();
    if n == 0 || (x.starts_with('0') && n != 1) {
        return None;
    }
    Some(x.split_at(n))
}

/// Go's `gover.CmpInt` on decimal strings without leading zeros.
fn cmp_int(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests;
