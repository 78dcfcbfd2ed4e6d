//! Module zips: validation by Go's `modzip.CheckZip` rules
//! (golang.org/x/mod/zip) and the `h1:` hash of Go's `dirhash.HashZip` /
//! `dirhash.Hash1` (golang.org/x/mod/sumdb/dirhash), computed together in
//! one pass: the central directory is read and checked first, then every
//! entry's content is streamed through CRC-32 and SHA-256 (nothing larger
//! than a 32 KiB buffer is held, except the root go.mod, which is kept).
//!
//! The zip container is read as Go's `archive/zip` reads it (see
//! `archive.rs` and `content.rs`); deflate is miniz_oxide's.

mod archive;
mod content;
mod crc32;
mod names;
mod select;
mod write;

use std::io::{Read, Seek};

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use crate::goquote::quote;
use crate::path::{check_path, split_path_version, PathError};
use crate::semver;

pub use names::{FileError, FileProblem};
pub use select::{
    select_files, CreateError, CreateFileError, CreateProblem, Selected, SourceFile, SourceKind,
};
pub use write::stored_zip;
pub use write::ZipWriter;

/// The largest module zip, and the largest total of its uncompressed
/// files (`modzip.MaxZipFile`).
pub const MAX_ZIP_FILE: u64 = 500 << 20;
/// The largest go.mod in a module zip (`modzip.MaxGoMod`).
pub const MAX_GO_MOD: u64 = 16 << 20;
/// The largest LICENSE in a module zip (`modzip.MaxLICENSE`).
pub const MAX_LICENSE: u64 = 16 << 20;

/// At most this many file errors are spelled out in a message.
const MAX_LISTED_FILE_ERRORS: usize = 20;

/// What checking a module zip found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipReport {
    /// `"h1:"` + base64(SHA-256 summary): Go's `dirhash.HashZip` value, as
    /// recorded in go.sum and the checksum database.
    pub h1: String,
    /// The contents of `MODULE@VERSION/go.mod`, if the zip has one.
    pub gomod: Option<Vec<u8>>,
    /// The number of files (entries other than directories).
    pub files: usize,
    /// The total uncompressed size of the files, as read.
    pub uncompressed: u64,
}

/// Why a module zip was refused. Messages follow Go's where Go has one.
#[derive(Debug, thiserror::Error)]
pub enum ZipError {
    /// `module.CanonicalVersion(version) != version`.
    #[error(
        "version {} is not canonical (should be {})",
        quote(version),
        quote(canonical)
    )]
    NonCanonicalVersion { version: String, canonical: String },
    /// The module path is malformed (`module.CheckPath`).
    #[error(transparent)]
    ModulePath(PathError),
    /// The version is not valid for the path (`module.Check`).
    #[error("{path}@{version}: invalid version: {reason}")]
    InvalidVersion {
        path: String,
        version: String,
        reason: String,
    },
    #[error("module zip file is too large ({size} bytes; limit is {MAX_ZIP_FILE} bytes)")]
    ZipTooLarge { size: u64 },
    /// The declared uncompressed sizes add up to more than [`MAX_ZIP_FILE`].
    #[error(
        "total uncompressed size of module contents too large (max size is {MAX_ZIP_FILE} bytes)"
    )]
    ContentsTooLarge,
    /// Files that break the name or size rules (Go's `FileErrorList`:
    /// one per line).
    #[error("{}", list_file_errors(.0))]
    InvalidFiles(Vec<FileError>),
    /// The archive structure is broken (Go: `zip: not a valid zip file`);
    /// the text says where.
    #[error("zip: not a valid zip file: {0}")]
    Format(String),
    #[error("{name}: zip: unsupported compression algorithm {method}")]
    UnsupportedMethod { name: String, method: u16 },
    /// The content's CRC-32 (or its data descriptor's) is not the
    /// recorded one.
    #[error("{name}: zip: checksum error")]
    Checksum { name: String },
    /// The content is longer than its declared uncompressed size (reading
    /// stops right there).
    #[error("{name}: uncompressed size is larger than declared size ({declared} bytes)")]
    LargerThanDeclared { name: String, declared: u64 },
    /// The content (or its data descriptor) ends before its declared size.
    #[error("{name}: unexpected EOF")]
    UnexpectedEof { name: String },
    #[error("{name}: flate: corrupt input")]
    CorruptDeflate { name: String },
    /// Reading failed; the message includes the I/O error's (so it is
    /// not also offered as the source).
    #[error("reading zip: {0}")]
    Io(std::io::Error),
}

impl From<std::io::Error> for ZipError {
    fn from(e: std::io::Error) -> Self {
        ZipError::Io(e)
    }
}

fn list_file_errors(errors: &[FileError]) -> String {
    let mut lines: Vec<String> = errors
        .iter()
        .take(MAX_LISTED_FILE_ERRORS)
        .map(ToString::to_string)
        .collect();
    if errors.len() > MAX_LISTED_FILE_ERRORS {
        lines.push(format!(
            "(and {} more)",
            errors.len() - MAX_LISTED_FILE_ERRORS
        ));
    }
    lines.join("\n")
}

/// Validates a module zip by Go's CheckZip rules for `module`@`version` and
/// computes its h1: hash, in one pass over the central directory and entries.
///
/// `size` is the size of the zip (the data `r` holds from its start); bytes
/// beyond it are never read.
pub fn check_zip<R: Read + Seek>(
    r: &mut R,
    size: u64,
    module: &str,
    version: &str,
) -> Result<ZipReport, ZipError> {
    check_module_version(module, version)?;
    if size > MAX_ZIP_FILE {
        return Err(ZipError::ZipTooLarge { size });
    }
    let mut src = archive::Source::new(r, size);
    let entries = archive::read_central_directory(&mut src)?;
    let prefix = format!("{module}@{version}/");
    names::check_names(&entries, &prefix)?;

    // HashZip hashes every entry under its full name, directories (empty)
    // and the bare prefix included. For a repeated name (only directories
    // get past check_names) Go opens the last entry of that name each time.
    let mut last = std::collections::HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        last.entry(e.name.as_slice())
            .and_modify(|v: &mut (usize, usize)| *v = (i, v.1 + 1))
            .or_insert((i, 1));
    }
    let gomod_name = format!("{prefix}go.mod");
    let mut bufs = content::Buffers::new();
    let mut sums = Vec::with_capacity(entries.len());
    let mut report = ZipReport {
        h1: String::new(),
        gomod: None,
        files: 0,
        uncompressed: 0,
    };
    for (i, e) in entries.iter().enumerate() {
        let (last_index, count) = last[e.name.as_slice()];
        if last_index != i {
            continue;
        }
        let mut gomod = (e.name == gomod_name.as_bytes()).then(Vec::new);
        let mut hasher = Sha256::new();
        let mut n = 0u64;
        content::read_entry(&mut src, e, &mut bufs, &mut |chunk| {
            hasher.update(chunk);
            n += chunk.len() as u64;
            if let Some(g) = gomod.as_mut() {
                g.extend_from_slice(chunk);
            }
        })?;
        if !e.name.ends_with(b"/") {
            report.files += 1;
            report.uncompressed += n;
        }
        if gomod.is_some() {
            report.gomod = gomod;
        }
        let name = String::from_utf8(e.name.clone())
            .map_err(|_| ZipError::Format("file name is not UTF-8".into()))?;
        let sum: [u8; 32] = hasher.finalize().into();
        for _ in 0..count {
            sums.push((name.clone(), sum));
        }
    }
    report.h1 = hash1(&mut sums);
    Ok(report)
}

/// The module and version checks at the start of Go's `checkZip`.
fn check_module_version(path: &str, version: &str) -> Result<(), ZipError> {
    let canonical = semver::canonical_module_version(version).unwrap_or_default();
    if canonical != version {
        return Err(ZipError::NonCanonicalVersion {
            version: version.to_owned(),
            canonical,
        });
    }
    // module.Check
    check_path(path).map_err(ZipError::ModulePath)?;
    let invalid = |reason: String| ZipError::InvalidVersion {
        path: path.to_owned(),
        version: version.to_owned(),
        reason,
    };
    if !semver::is_valid(version) {
        return Err(invalid("not a semantic version".into()));
    }
    // module.CheckPathMajor
    let (_, path_major) = split_path_version(path).unwrap_or((path, ""));
    let mut path_major = path_major;
    if path_major.starts_with(".v") {
        path_major = path_major.strip_suffix("-unstable").unwrap_or(path_major);
    }
    if version.starts_with("v0.0.0-") && path_major == ".v1" {
        return Ok(());
    }
    let major = semver::major(version).unwrap_or("");
    let want = if path_major.is_empty() {
        if major == "v0" || major == "v1" || semver::build(version) == Some("+incompatible") {
            return Ok(());
        }
        "v0 or v1"
    } else {
        let m = &path_major[1..];
        if major == m {
            return Ok(());
        }
        m
    };
    Err(invalid(format!("should be {want}, not {major}")))
}

/// Go's dirhash.Hash1 for the given (name, sha256-of-content) pairs (sorted inside).
///
/// The summary has one line per file, `"{hex sha256}  {name}\n"`, in
/// byte order of the names. (Go refuses names containing a newline; such a
/// name never passes [`check_zip`], and here it is hashed as given.)
#[allow(clippy::ptr_arg)] // the signature is part of the agreed API
pub fn hash1(files: &mut Vec<(String, [u8; 32])>) -> String {
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let mut h = Sha256::new();
    let mut line = String::new();
    for (name, sum) in files.iter() {
        line.clear();
        for b in sum {
            line.push(char::from(HEX[usize::from(b >> 4)]));
            line.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        line.push_str("  ");
        line.push_str(name);
        line.push('\n');
        h.update(line.as_bytes());
    }
    format!(
        "h1:{}",
        base64::engine::general_purpose::STANDARD.encode(h.finalize())
    )
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The h1: hash of a go.mod file as the go command records it (`.../go.mod h1:`), i.e. Hash1 over one file named "go.mod".
pub fn hash_gomod(content: &[u8]) -> String {
    hash1(&mut vec![(
        "go.mod".to_owned(),
        Sha256::digest(content).into(),
    )])
}

#[cfg(test)]
mod tests;
