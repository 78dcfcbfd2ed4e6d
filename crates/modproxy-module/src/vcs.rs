//! Import path → repository: where the `go` command fetches a module that no
//! proxy serves ("direct" mode). A port of Go's `cmd/go/internal/vcs`
//! (`RepoRootForImportPath`, as `modfetch.lookupDirect` calls it):
//!
//! - the statically known hosts (`vcsPaths`: GitHub, Bitbucket, IBM
//!   DevOps, Apache, OpenStack, chiselapp, and the `host/path/repo.git/…`
//!   qualifier rule), answered by [`known_host`] without any request;
//! - for every other path, the `?go-get=1` discovery protocol: the page to
//!   request ([`meta_urls`]), its `<meta name="go-import">` tags
//!   ([`parse_meta_imports`], with the lenient `encoding/xml` tokenizer Go
//!   uses, ported byte for byte), the tag that applies ([`match_import`]),
//!   the check against the prefix's own page ([`confirm`]) and the checks
//!   on the tag's fields ([`repo_root_from_meta`]).
//!
//! No I/O: the caller fetches the pages. The whole flow, as Go runs it:
//!
//! 1. `known_host(path, insecure)`: `Some(result)` is the answer.
//! 2. Otherwise request the URLs of `meta_urls(path, insecure)` in order,
//!    moving to the next one only when the request itself fails (no
//!    connection, TLS error); any HTTP status is a response, and its body
//!    is parsed (people serve the tags on their 404 pages). When
//!    `insecure`, Go skips certificate verification for `https`; otherwise
//!    it refuses redirects from `https` to `http`.
//! 3. `imports = parse_meta_imports(body, true)`. If it is empty and the
//!    status was not 200, report the status instead.
//! 4. `mi = match_import(&imports, path)?`.
//! 5. If `mi.prefix != path`, fetch the prefix's page the same way
//!    (`meta_urls(&mi.prefix, insecure)`), parse it, and
//!    `confirm(path, &mi, &imports2)?` (Go caches this page per prefix).
//! 6. `repo_root_from_meta(path, &mi)?`.
//!
//! Go words errors of steps 2–6 as `unrecognized import path "PATH": …`
//! and prefixes those of steps 4 and 6 with the page URL (`parse URL: …`,
//! `URL: …`); the messages here are the parts after those prefixes.
//!
//! This proxy fetches only git repositories (and `mod` go-import entries,
//! i.e. another module proxy): other version control systems are errors.

use std::fmt;

use crate::goquote::quote;

/// The version control systems Go knows (`vcsList`, in its order).
const VCS_NAMES: [&str; 4] = ["hg", "git", "svn", "fossil"];

/// Where a module's code comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Vcs {
    /// A git repository, cloned from [`RepoRoot::repo`].
    Git,
    /// A `mod` go-import entry: [`RepoRoot::repo`] is the base URL of a
    /// module proxy serving the module.
    Mod,
}

impl Vcs {
    /// The name Go uses (`git`, `mod`).
    pub fn as_str(self) -> &'static str {
        match self {
            Vcs::Git => "git",
            Vcs::Mod => "mod",
        }
    }
}

impl fmt::Display for Vcs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The repository for an import path (Go's `vcs.RepoRoot`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoRoot {
    /// The import path prefix the repository (or its `subdir`) holds,
    /// e.g. `github.com/acme/widget`.
    pub root: String,
    /// The URL to clone (or, for [`Vcs::Mod`], the proxy base URL).
    pub repo: String,
    /// How to fetch `repo`.
    pub vcs: Vcs,
    /// The directory of the repository that corresponds to `root`, from a
    /// four-field go-import tag (Go 1.25+); `None` for the repository root.
    pub subdir: Option<String>,
}

/// One `<meta name="go-import" content="prefix vcs repo [subdir]">` tag
/// (Go's `metaImport`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaImport {
    /// The import path prefix the tag is about.
    pub prefix: String,
    /// The version control system named by the tag (`git`, `mod`, …).
    pub vcs: String,
    /// The repository URL (Go's `RepoRoot`), not yet validated.
    pub repo_root: String,
    /// The optional fourth field: a directory within the repository.
    pub subdir: Option<String>,
}

/// Why an import path has no usable repository; the messages follow Go's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct VcsError(String);

fn err(msg: impl Into<String>) -> VcsError {
    VcsError(msg.into())
}

fn unsupported(vcs: &str, root: &str) -> VcsError {
    err(format!(
        "{root}: version control system {vcs} is not supported (only git repositories can be fetched)"
    ))
}

/// Go's `str.HasPathPrefix`: whether `s` is `prefix` or lies below it.
pub fn has_path_prefix(s: &str, prefix: &str) -> bool {
    if s.len() == prefix.len() {
        return s == prefix;
    }
    if prefix.is_empty() {
        return true;
    }
    s.len() > prefix.len()
        && (prefix.ends_with('/') || s.as_bytes()[prefix.len()] == b'/')
        && s.as_bytes()[..prefix.len()] == *prefix.as_bytes()
}

mod known;
mod meta;
mod url;
mod xml;

pub use known::known_host;
use known::*;
#[cfg(test)]
use meta::*;
pub use meta::{confirm, match_import, meta_urls, parse_meta_imports, repo_root_from_meta};
use url::*;
use xml::*;

#[cfg(test)]
mod tests;
