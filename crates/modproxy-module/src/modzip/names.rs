//! The file name and declared size rules of Go's `modzip.CheckZip`
//! (golang.org/x/mod/zip `checkZip`), applied to the central directory
//! before any content is read.

use std::collections::HashMap;
use std::fmt;

use super::archive::Entry;
use super::{ZipError, MAX_GO_MOD, MAX_LICENSE, MAX_ZIP_FILE};
use crate::goquote::quote;
use crate::path::{check_file_path, PathError};
use crate::unicode_tables::str_to_fold;

/// A file of the zip that breaks a rule: Go's `FileError`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    /// The entry's full name in the zip (lossily decoded if not UTF-8).
    pub path: String,
    pub problem: FileProblem,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.problem)
    }
}

/// What is wrong with one file; the messages are Go's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileProblem {
    #[error("path does not have prefix {}", quote(.0))]
    NoPrefix(String),
    #[error("file path is not clean")]
    NotClean,
    /// `module.CheckFilePath` on a name that is not UTF-8.
    #[error("malformed file path {}: invalid UTF-8", quote_bytes(.0))]
    InvalidUtf8(Vec<u8>),
    #[error(transparent)]
    MalformedPath(PathError),
    #[error("case-insensitive file name collision: {} and {}", quote(.0), quote(.1))]
    CaseCollision(String, String),
    #[error("entry {} is both a file and a directory", quote(.0))]
    FileAndDirectory(String),
    #[error("multiple entries for file {}", quote(.0))]
    Duplicate(String),
    #[error("go.mod file not in module root directory")]
    GoModNotInRoot,
    #[error("go.mod files must have lowercase names")]
    GoModCase,
    #[error("go.mod file too large (max size is {MAX_GO_MOD} bytes)")]
    GoModTooLarge,
    #[error("LICENSE file too large (max size is {MAX_LICENSE} bytes)")]
    LicenseTooLarge,
}

/// Go's `%q` of a byte string that is not valid UTF-8: valid parts as
/// `strconv.Quote` prints them, each bad byte as `\xNN`.
fn quote_bytes(b: &[u8]) -> String {
    let mut out = String::from("\"");
    for chunk in b.utf8_chunks() {
        let q = quote(chunk.valid());
        out.push_str(&q[1..q.len() - 1]);
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out.push('"');
    out
}

/// Go's `path.Clean` on bytes.
fn clean(path: &[u8]) -> Vec<u8> {
    if path.is_empty() {
        return b".".to_vec();
    }
    let rooted = path[0] == b'/';
    let n = path.len();
    let mut out: Vec<u8> = Vec::with_capacity(n);
    let (mut r, mut dotdot) = (0, 0);
    if rooted {
        out.push(b'/');
        (r, dotdot) = (1, 1);
    }
    while r < n {
        if path[r] == b'/' || (path[r] == b'.' && (r + 1 == n || path[r + 1] == b'/')) {
            // Empty element, or ".".
            r += 1;
        } else if path[r] == b'.' && path[r + 1] == b'.' && (r + 2 == n || path[r + 2] == b'/') {
            r += 2;
            if out.len() > dotdot {
                out.pop();
                while out.len() > dotdot && out[out.len() - 1] != b'/' {
                    out.pop();
                }
                // Go's lazybuf keeps the slash before the removed element
                // only when it is the root.
                if out.len() > dotdot {
                    out.pop();
                }
            } else if !rooted {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(b"..");
                dotdot = out.len();
            }
        } else {
            if (rooted && out.len() != 1) || (!rooted && !out.is_empty()) {
                out.push(b'/');
            }
            while r < n && path[r] != b'/' {
                out.push(path[r]);
                r += 1;
            }
        }
    }
    if out.is_empty() {
        return b".".to_vec();
    }
    out
}

/// Go's `collisionChecker`: case-fold collisions, and paths that are both
/// a file and a directory. Keys are `strToFold` forms.
#[derive(Default)]
pub(super) struct Collisions(HashMap<String, (String, bool)>);

impl Collisions {
    pub(super) fn check(&mut self, path: &str, is_dir: bool) -> Result<(), FileProblem> {
        let mut p = path;
        let mut is_dir = is_dir;
        loop {
            let fold = str_to_fold(p).into_owned();
            if let Some((other, other_dir)) = self.0.get(&fold) {
                if p != other {
                    return Err(FileProblem::CaseCollision(other.clone(), p.to_owned()));
                }
                if is_dir != *other_dir {
                    return Err(FileProblem::FileAndDirectory(p.to_owned()));
                }
                if !is_dir {
                    return Err(FileProblem::Duplicate(p.to_owned()));
                }
                // The same directory again is fine (parents recur).
            } else {
                self.0.insert(fold, (p.to_owned(), is_dir));
            }
            // path.Dir of a checked (clean, relative) path.
            match p.rfind('/') {
                Some(i) => {
                    p = &p[..i];
                    is_dir = true;
                }
                None => return Ok(()),
            }
        }
    }
}

/// Applies `checkZip`'s per-file rules in order; the total size error wins
/// over file errors, as in Go's `CheckedFiles.Err`.
pub(super) fn check_names(entries: &[Entry], prefix: &str) -> Result<(), ZipError> {
    let mut invalid = Vec::new();
    let mut size_error = false;
    let mut add = |e: &Entry, problem| {
        invalid.push(FileError {
            path: e.display_name(),
            problem,
        })
    };
    let mut collisions = Collisions::default();
    let mut size: i64 = 0;
    for e in entries {
        let Some(rest) = e.name.strip_prefix(prefix.as_bytes()) else {
            add(e, FileProblem::NoPrefix(prefix.to_owned()));
            continue;
        };
        if rest.is_empty() {
            continue;
        }
        let (rest, is_dir) = match rest.strip_suffix(b"/") {
            Some(r) => (r, true),
            None => (rest, false),
        };
        if clean(rest) != rest {
            add(e, FileProblem::NotClean);
            continue;
        }
        let Ok(name) = std::str::from_utf8(rest) else {
            add(e, FileProblem::InvalidUtf8(rest.to_vec()));
            continue;
        };
        if let Err(err) = check_file_path(name) {
            add(e, FileProblem::MalformedPath(err));
            continue;
        }
        if let Err(problem) = collisions.check(name, is_dir) {
            add(e, problem);
            continue;
        }
        if is_dir {
            continue;
        }
        let base = name.rsplit('/').next().unwrap_or(name);
        if str_to_fold(base) == "go.mod" {
            if base != name {
                add(e, FileProblem::GoModNotInRoot);
                continue;
            }
            if name != "go.mod" {
                add(e, FileProblem::GoModCase);
                continue;
            }
        }
        let sz = e.uncompressed as i64;
        if sz >= 0 && MAX_ZIP_FILE as i64 - size >= sz {
            size += sz;
        } else {
            size_error = true;
        }
        if name == "go.mod" && sz > MAX_GO_MOD as i64 {
            add(e, FileProblem::GoModTooLarge);
            continue;
        }
        if name == "LICENSE" && sz > MAX_LICENSE as i64 {
            add(e, FileProblem::LicenseTooLarge);
            continue;
        }
    }
    if size_error {
        return Err(ZipError::ContentsTooLarge);
    }
    if !invalid.is_empty() {
        return Err(ZipError::InvalidFiles(invalid));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_matches_go_path_clean() {
        // Cases from Go's path_test.go cleantests.
        let cases = [
            ("", "."),
            ("abc", "abc"),
            ("abc/def", "abc/def"),
            ("a/b/c", "a/b/c"),
            (".", "."),
            ("..", ".."),
            ("../..", "../.."),
            ("../../abc", "../../abc"),
            ("/abc", "/abc"),
            ("/", "/"),
            ("abc/", "abc"),
            ("abc/def/", "abc/def"),
            ("a/b/c/", "a/b/c"),
            ("./", "."),
            ("../", ".."),
            ("../../", "../.."),
            ("/abc/", "/abc"),
            ("abc//def//ghi", "abc/def/ghi"),
            ("//abc", "/abc"),
            ("///abc", "/abc"),
            ("//abc//", "/abc"),
            ("abc//", "abc"),
            ("abc/./def", "abc/def"),
            ("/./abc/def", "/abc/def"),
            ("abc/.", "abc"),
            ("abc/def/ghi/../jkl", "abc/def/jkl"),
            ("abc/def/../ghi/../jkl", "abc/jkl"),
            ("abc/def/..", "abc"),
            ("abc/def/../..", "."),
            ("/abc/def/../..", "/"),
            ("abc/def/../../..", ".."),
            ("/abc/def/../../..", "/"),
            ("abc/def/../../../ghi/jkl/../../../mno", "../../mno"),
            ("abc/./../def", "def"),
            ("abc//./../def", "def"),
            ("abc/../../././../def", "../../def"),
        ];
        for (input, want) in cases {
            assert_eq!(
                String::from_utf8(clean(input.as_bytes())).unwrap(),
                want,
                "Clean({input:?})"
            );
        }
    }

    #[test]
    fn quote_bytes_escapes_invalid_utf8() {
        assert_eq!(quote_bytes(b"a\xffb\"\n"), r#""a\xffb\"\n""#);
        assert_eq!(quote_bytes("é\u{1}".as_bytes()), r#""é\x01""#);
    }

    #[test]
    fn collisions_follow_go() {
        let mut c = Collisions::default();
        assert_eq!(c.check("a/b.go", false), Ok(()));
        assert_eq!(c.check("a/c.go", false), Ok(()));
        assert_eq!(c.check("a", true), Ok(()));
        assert_eq!(
            c.check("A/d.go", false),
            Err(FileProblem::CaseCollision("a".into(), "A".into()))
        );
        assert_eq!(
            c.check("a/b.go", false),
            Err(FileProblem::Duplicate("a/b.go".into()))
        );
        assert_eq!(
            c.check("a/b.go/x", false),
            Err(FileProblem::FileAndDirectory("a/b.go".into()))
        );
        assert_eq!(
            c.check("\u{212a}.go", false),
            Ok(()),
            "first spelling of k.go"
        );
        assert_eq!(
            c.check("k.go", false),
            Err(FileProblem::CaseCollision(
                "\u{212a}.go".into(),
                "k.go".into()
            ))
        );
    }
}
