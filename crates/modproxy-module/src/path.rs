//! Module paths and versions as they appear in URLs: validation
//! (`module.CheckPath`, `CheckImportPath`, `CheckFilePath`, `checkElem`),
//! the `!`-escaping of upper-case letters (`EscapePath`, `UnescapePath`,
//! `EscapeVersion`, `UnescapeVersion`) and the major-version suffix
//! (`SplitPathVersion`).

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;

use crate::goquote::{quote, quote_rune};
use crate::semver;

/// Why a path (or a path element) is malformed. The messages are Go's.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum PathProblem {
    #[error("empty string")]
    Empty,
    #[error("leading dash")]
    LeadingDash,
    #[error("double slash")]
    DoubleSlash,
    #[error("trailing slash")]
    TrailingSlash,
    #[error("empty path element")]
    EmptyElement,
    #[error("invalid path element {}", quote(.0))]
    DotsElement(String),
    #[error("leading dot in path element")]
    LeadingDot,
    #[error("trailing dot in path element")]
    TrailingDot,
    #[error("invalid char {}", quote_rune(*.0))]
    InvalidChar(char),
    #[error("{} disallowed as path element component on Windows", quote(.0))]
    WindowsReserved(String),
    #[error("trailing tilde and digits in path element")]
    TildeDigits,
    #[error("leading slash")]
    LeadingSlash,
    #[error("missing dot in first path element")]
    MissingDotInFirstElement,
    #[error("leading dash in first path element")]
    LeadingDashInFirstElement,
    #[error("invalid char {} in first path element", quote_rune(*.0))]
    InvalidCharInFirstElement(char),
    #[error("invalid version")]
    InvalidVersion,
}

/// Errors about module paths and versions, worded like Go's.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum PathError {
    /// `module.CheckPath` failed.
    #[error("malformed module path {}: {problem}", quote(path))]
    MalformedModulePath { path: String, problem: PathProblem },
    /// `module.CheckImportPath` failed.
    #[error("malformed import path {}: {problem}", quote(path))]
    MalformedImportPath { path: String, problem: PathProblem },
    /// `module.CheckFilePath` failed.
    #[error("malformed file path {}: {problem}", quote(path))]
    MalformedFilePath { path: String, problem: PathProblem },
    /// `module.EscapeVersion` refused the version.
    #[error("version {} invalid: disallowed version string", quote(version))]
    DisallowedVersion { version: String },
    /// The escaped path is not a valid `!`-encoding.
    #[error("invalid escaped module path {}", quote(escaped))]
    InvalidEscapedPath { escaped: String },
    /// The escaped path decodes to an invalid module path.
    #[error("invalid escaped module path {}: {reason}", quote(escaped))]
    EscapedPathInvalid {
        escaped: String,
        reason: Box<PathError>,
    },
    /// The escaped version is not a valid `!`-encoding.
    #[error("invalid escaped version {}", quote(escaped))]
    InvalidEscapedVersion { escaped: String },
    /// The escaped version decodes to a disallowed version string
    /// (Go quotes the decoded version here, not the escaped one).
    #[error("invalid escaped version {}: {problem}", quote(version))]
    EscapedVersionInvalid {
        version: String,
        problem: PathProblem,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Module,
    Import,
    File,
}

/// A module path valid according to Go's `module.CheckPath`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModulePath(String);

impl ModulePath {
    /// Validates `path` with `module.CheckPath`.
    pub fn new(path: &str) -> Result<ModulePath, PathError> {
        check_path(path)?;
        Ok(ModulePath(path.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The escaped form used in proxy URLs (`module.EscapePath`): every
    /// upper-case letter becomes `!` followed by its lower-case form.
    pub fn escaped(&self) -> String {
        escape_string(&self.0)
    }

    /// Decodes an escaped path (`module.UnescapePath`) and validates it.
    pub fn unescape(escaped: &str) -> Result<ModulePath, PathError> {
        let path = unescape_string(escaped).ok_or_else(|| PathError::InvalidEscapedPath {
            escaped: escaped.to_owned(),
        })?;
        check_path(&path).map_err(|e| PathError::EscapedPathInvalid {
            escaped: escaped.to_owned(),
            reason: Box::new(e),
        })?;
        Ok(ModulePath(path))
    }

    /// The major-version suffix: `"/v2"`, or `".v2"` / `".v0"` /
    /// `".v1-unstable"` for `gopkg.in` paths; `None` for v0/v1 paths.
    pub fn major_suffix(&self) -> Option<&str> {
        match split_path_version(&self.0) {
            Some((_, "")) | None => None,
            Some((_, major)) => Some(major),
        }
    }

    /// The path without its major-version suffix.
    pub fn prefix(&self) -> &str {
        split_path_version(&self.0).map_or(&self.0, |(prefix, _)| prefix)
    }

    /// Reports whether version `v` belongs to this path's major version
    /// (`module.MatchPathMajor`): `v0`/`v1`/`+incompatible` for unsuffixed
    /// paths, `vN` for `/vN` paths.
    pub fn matches_major(&self, v: &str) -> bool {
        let major = split_path_version(&self.0).map_or("", |(_, m)| m);
        match_path_major(v, major)
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for ModulePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ModulePath {
    type Err = PathError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ModulePath::new(s)
    }
}

impl AsRef<str> for ModulePath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for ModulePath {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<ModulePath> for String {
    fn from(p: ModulePath) -> String {
        p.0
    }
}

/// `module.CheckPath`: `path` is a valid module path.
pub fn check_path(path: &str) -> Result<(), PathError> {
    check_module_path(path).map_err(|problem| PathError::MalformedModulePath {
        path: path.to_owned(),
        problem,
    })
}

fn check_module_path(path: &str) -> Result<(), PathProblem> {
    check_general_path(path, Kind::Module)?;
    let first = path.split('/').next().unwrap_or("");
    if first.is_empty() {
        return Err(PathProblem::LeadingSlash);
    }
    if !first.contains('.') {
        return Err(PathProblem::MissingDotInFirstElement);
    }
    if path.starts_with('-') {
        return Err(PathProblem::LeadingDashInFirstElement);
    }
    if let Some(c) = first
        .chars()
        .find(|&c| !(c == '-' || c == '.' || c.is_ascii_digit() || c.is_ascii_lowercase()))
    {
        return Err(PathProblem::InvalidCharInFirstElement(c));
    }
    if split_path_version(path).is_none() {
        return Err(PathProblem::InvalidVersion);
    }
    Ok(())
}

/// `module.CheckImportPath`: `path` is a valid package import path.
pub fn check_import_path(path: &str) -> Result<(), PathError> {
    check_general_path(path, Kind::Import).map_err(|problem| PathError::MalformedImportPath {
        path: path.to_owned(),
        problem,
    })
}

/// `module.CheckFilePath`: `path` is a valid slash-separated file path
/// inside a module (as in a module zip, after the `module@version/` prefix).
pub fn check_file_path(path: &str) -> Result<(), PathError> {
    check_general_path(path, Kind::File).map_err(|problem| PathError::MalformedFilePath {
        path: path.to_owned(),
        problem,
    })
}

fn check_general_path(path: &str, kind: Kind) -> Result<(), PathProblem> {
    if path.is_empty() {
        return Err(PathProblem::Empty);
    }
    if path.starts_with('-') && kind != Kind::File {
        return Err(PathProblem::LeadingDash);
    }
    if path.contains("//") {
        return Err(PathProblem::DoubleSlash);
    }
    if path.ends_with('/') {
        return Err(PathProblem::TrailingSlash);
    }
    path.split('/').try_for_each(|elem| check_elem(elem, kind))
}

fn mod_path_ok(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')
}

fn import_path_ok(c: char) -> bool {
    mod_path_ok(c) || c == '+'
}

fn file_name_ok(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric() || "!#$%&()+,-.=@[]^_{}~ ".contains(c)
    } else {
        crate::unicode_tables::is_letter(c)
    }
}

const BAD_WINDOWS_NAMES: [&str; 22] = [
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// `module.checkElem`: one path element (or a version string, for `File`).
fn check_elem(elem: &str, kind: Kind) -> Result<(), PathProblem> {
    if elem.is_empty() {
        return Err(PathProblem::EmptyElement);
    }
    if elem.bytes().all(|b| b == b'.') {
        return Err(PathProblem::DotsElement(elem.to_owned()));
    }
    if elem.starts_with('.') && kind == Kind::Module {
        return Err(PathProblem::LeadingDot);
    }
    if elem.ends_with('.') {
        return Err(PathProblem::TrailingDot);
    }
    let ok = match kind {
        Kind::Module => mod_path_ok,
        Kind::Import => import_path_ok,
        Kind::File => file_name_ok,
    };
    if let Some(c) = elem.chars().find(|&c| !ok(c)) {
        return Err(PathProblem::InvalidChar(c));
    }
    let short = elem.split('.').next().unwrap_or(elem);
    if BAD_WINDOWS_NAMES
        .iter()
        .any(|bad| bad.eq_ignore_ascii_case(short))
    {
        return Err(PathProblem::WindowsReserved(short.to_owned()));
    }
    if kind == Kind::File {
        return Ok(());
    }
    if let Some(tilde) = short.rfind('~') {
        let suffix = &short[tilde + 1..];
        if !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PathProblem::TildeDigits);
        }
    }
    Ok(())
}

/// `module.SplitPathVersion`: splits `path` into a prefix and a major
/// version suffix (`""`, `"/vN"` for N >= 2, or `".vN"` for `gopkg.in`).
/// Returns `None` when the last element is a malformed version suffix
/// (like `/v1`, `/v0`, `/v2.0`, or a `gopkg.in` path without `.vN`).
pub fn split_path_version(path: &str) -> Option<(&str, &str)> {
    if path.starts_with("gopkg.in/") {
        return split_gopkg_in(path);
    }
    let b = path.as_bytes();
    let mut i = b.len();
    let mut dot = false;
    while i > 0 && (b[i - 1].is_ascii_digit() || b[i - 1] == b'.') {
        dot |= b[i - 1] == b'.';
        i -= 1;
    }
    if i <= 1 || i == b.len() || b[i - 1] != b'v' || b[i - 2] != b'/' {
        return Some((path, ""));
    }
    let (prefix, major) = path.split_at(i - 2);
    if dot || major.len() <= 2 || major.as_bytes()[2] == b'0' || major == "/v1" {
        return None;
    }
    Some((prefix, major))
}

fn split_gopkg_in(path: &str) -> Option<(&str, &str)> {
    let b = path.as_bytes();
    let mut i = b.len();
    if path.ends_with("-unstable") {
        i -= "-unstable".len();
    }
    while i > 0 && b[i - 1].is_ascii_digit() {
        i -= 1;
    }
    if i <= 1 || b[i - 1] != b'v' || b[i - 2] != b'.' {
        return None;
    }
    let (prefix, major) = path.split_at(i - 2);
    if major.len() <= 2 || (major.as_bytes()[2] == b'0' && major != ".v0") {
        return None;
    }
    Some((prefix, major))
}

/// `module.MatchPathMajor`: version `v` matches the path major suffix
/// `path_major` (as returned by [`split_path_version`]).
pub fn match_path_major(v: &str, path_major: &str) -> bool {
    let mut path_major = path_major;
    if path_major.starts_with(".v") {
        path_major = path_major.strip_suffix("-unstable").unwrap_or(path_major);
    }
    if v.starts_with("v0.0.0-") && path_major == ".v1" {
        // Old bug: v0.0.0- pseudo-versions were generated for gopkg.in .v1.
        return true;
    }
    let m = semver::major(v).unwrap_or("");
    if path_major.is_empty() {
        return m == "v0" || m == "v1" || semver::build(v) == Some("+incompatible");
    }
    if path_major.starts_with('/') || path_major.starts_with('.') {
        return m == &path_major[1..];
    }
    false
}

/// `module.EscapeVersion`: versions may be non-semver but must be valid
/// file names without `!`; upper-case letters are escaped as in paths.
pub fn escape_version(v: &str) -> Result<String, PathError> {
    if check_elem(v, Kind::File).is_err() || v.contains('!') || !v.is_ascii() {
        return Err(PathError::DisallowedVersion {
            version: v.to_owned(),
        });
    }
    Ok(escape_string(v))
}

/// `module.UnescapeVersion`: decodes an escaped version.
pub fn unescape_version(escaped: &str) -> Result<String, PathError> {
    let v = unescape_string(escaped).ok_or_else(|| PathError::InvalidEscapedVersion {
        escaped: escaped.to_owned(),
    })?;
    if let Err(problem) = check_elem(&v, Kind::File) {
        return Err(PathError::EscapedVersionInvalid {
            version: v,
            problem,
        });
    }
    Ok(v)
}

/// Escapes upper-case ASCII letters; input is known to be ASCII without `!`.
fn escape_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if c.is_ascii_uppercase() {
            out.push('!');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn unescape_string(escaped: &str) -> Option<String> {
    let mut out = String::with_capacity(escaped.len());
    let mut bang = false;
    for c in escaped.chars() {
        if !c.is_ascii() {
            return None;
        }
        if bang {
            bang = false;
            if !c.is_ascii_lowercase() {
                return None;
            }
            out.push(c.to_ascii_uppercase());
            continue;
        }
        if c == '!' {
            bang = true;
            continue;
        }
        if c.is_ascii_uppercase() {
            return None;
        }
        out.push(c);
    }
    if bang {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests;
