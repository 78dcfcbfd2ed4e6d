//! The GOPROXY protocol's request paths, parsed and validated.
//!
//! Everything that reaches the cache or the store has passed through
//! [`Route::parse`]: module paths and versions are decoded with Go's case
//! encoding and checked with Go's rules, so a store key built from them can
//! never leave the data directory.

use std::fmt;

use modproxy_module::path::{escape_version, unescape_version, ModulePath};
use modproxy_module::semver;

/// Longest path element accepted (file systems refuse longer names).
const MAX_ELEMENT: usize = 250;
/// Longest protocol path accepted: with the store directory in front it
/// must stay under the file systems' limit on a whole path (4096 on Linux).
const MAX_PATH: usize = 2048;

/// What a protocol request asks for about one module.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `@v/list`
    List,
    /// `@latest`
    Latest,
    /// `@v/$version.info` with a canonical version.
    Info(String),
    /// `@v/$query.info` with anything else (branch, tag, commit prefix,
    /// non-canonical semver): answered with the canonical version.
    Query(String),
    /// `@v/$version.mod`
    Mod(String),
    /// `@v/$version.zip`
    Zip(String),
}

impl Endpoint {
    /// Canonical `.info`, `.mod` and `.zip` never change once published.
    pub fn is_immutable(&self) -> bool {
        matches!(
            self,
            Endpoint::Info(_) | Endpoint::Mod(_) | Endpoint::Zip(_)
        )
    }

    /// The protocol file name below the module path (`@v/v1.0.0.zip`).
    pub fn file_name(&self) -> String {
        let file = |v: &str, ext: &str| {
            // Versions reaching here were unescaped successfully, so they escape back.
            let escaped = escape_version(v).unwrap_or_else(|_| v.to_string());
            format!("@v/{escaped}.{ext}")
        };
        match self {
            Endpoint::List => "@v/list".to_string(),
            Endpoint::Latest => "@latest".to_string(),
            Endpoint::Info(v) | Endpoint::Query(v) => file(v, "info"),
            Endpoint::Mod(v) => file(v, "mod"),
            Endpoint::Zip(v) => file(v, "zip"),
        }
    }

    /// The `Content-Type` of the immutable file (`.info`, `.mod`, `.zip`)
    /// a protocol path names, by its extension alone.
    pub fn immutable_content_type(path: &str) -> Option<&'static str> {
        let endpoint = match path.rsplit_once('.')?.1 {
            "info" => Endpoint::Info(String::new()),
            "mod" => Endpoint::Mod(String::new()),
            "zip" => Endpoint::Zip(String::new()),
            _ => return None,
        };
        Some(endpoint.content_type())
    }

    /// The `Content-Type` the go command expects for this file.
    pub fn content_type(&self) -> &'static str {
        match self {
            Endpoint::Latest | Endpoint::Info(_) | Endpoint::Query(_) => "application/json",
            Endpoint::List | Endpoint::Mod(_) => "text/plain; charset=utf-8",
            Endpoint::Zip(_) => "application/zip",
        }
    }
}

/// One module file, as named by a protocol path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModuleRequest {
    pub module: ModulePath,
    pub endpoint: Endpoint,
}

impl ModuleRequest {
    /// The protocol path below the base URL (`github.com/!foo/bar/@v/list`),
    /// which is also the object's key in the store.
    pub fn protocol_path(&self) -> String {
        format!("{}/{}", self.module.escaped(), self.endpoint.file_name())
    }
}

impl fmt::Display for ModuleRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.endpoint {
            Endpoint::List => write!(f, "{} (version list)", self.module),
            Endpoint::Latest => write!(f, "{}@latest", self.module),
            Endpoint::Info(v) | Endpoint::Query(v) => write!(f, "{}@{v} (.info)", self.module),
            Endpoint::Mod(v) => write!(f, "{}@{v} (.mod)", self.module),
            Endpoint::Zip(v) => write!(f, "{}@{v} (.zip)", self.module),
        }
    }
}

/// Where a request path leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// A module file; `cached_only` when asked under `/cached-only/`;
    /// `key` is the path asked, the request's
    /// [`protocol_path`](ModuleRequest::protocol_path) (escaping is one to
    /// one), without building it again.
    Module {
        request: ModuleRequest,
        cached_only: bool,
        key: String,
    },
    /// `/sumdb/$name/…`: the rest of the path after `sumdb/`.
    SumDb(String),
}

/// Why a path is not a valid protocol request (answered with 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadPath {
    #[error("not a module proxy path: {0:?} (expected MODULE/@v/list, MODULE/@v/VERSION.info|.mod|.zip or MODULE/@latest)")]
    Unrecognized(String),
    #[error(transparent)]
    Module(#[from] modproxy_module::path::PathError),
    #[error("a path element is longer than {0} bytes")]
    TooLong(usize),
    #[error("the path is longer than {0} bytes")]
    PathTooLong(usize),
    #[error("invalid percent-encoding in path {0:?}")]
    Percent(String),
    #[error("version {version:?} is not canonical: .{ext} files are served for canonical versions only (ask for {version}.info to resolve it)")]
    NotCanonical { version: String, ext: &'static str },
}

impl Route {
    /// Parses a path relative to the base URL (no leading `/`).
    pub fn parse(path: &str) -> Result<Route, BadPath> {
        let decoded = percent_decode(path).ok_or_else(|| BadPath::Percent(path.to_string()))?;
        let path = decoded.as_str();
        if let Some(rest) = path.strip_prefix("sumdb/") {
            return Ok(Route::SumDb(rest.to_string()));
        }
        let (cached_only, key) = match path.strip_prefix("cached-only/") {
            Some(rest) => (true, rest.to_string()),
            None => (false, decoded),
        };
        let request = parse_module_request(&key)?;
        debug_assert_eq!(key, request.protocol_path());
        Ok(Route::Module {
            request,
            cached_only,
            key,
        })
    }
}

fn parse_module_request(path: &str) -> Result<ModuleRequest, BadPath> {
    let unrecognized = || BadPath::Unrecognized(path.to_string());
    // Module paths cannot contain '@', so the first "/@" splits unambiguously.
    let (escaped_module, file) = path.split_once("/@").ok_or_else(unrecognized)?;
    if path.split('/').any(|element| element.len() > MAX_ELEMENT) {
        return Err(BadPath::TooLong(MAX_ELEMENT));
    }
    if path.len() > MAX_PATH {
        return Err(BadPath::PathTooLong(MAX_PATH));
    }
    let module = ModulePath::unescape(escaped_module)?;
    let endpoint = if file == "latest" {
        Endpoint::Latest
    } else if file == "v/list" {
        Endpoint::List
    } else {
        let name = file.strip_prefix("v/").ok_or_else(unrecognized)?;
        let (escaped_version, ext) = name.rsplit_once('.').ok_or_else(unrecognized)?;
        let version = unescape_version(escaped_version)?;
        let canonical = semver::is_canonical_module_version(&version);
        match ext {
            // A canonical version without its needed `+incompatible` (or of
            // the wrong major) is a query: the answer names the real version.
            "info" if canonical && module.matches_major(&version) => Endpoint::Info(version),
            "info" => Endpoint::Query(version),
            "mod" | "zip" if !canonical => {
                let ext = if ext == "mod" { "mod" } else { "zip" };
                return Err(BadPath::NotCanonical { version, ext });
            }
            "mod" => Endpoint::Mod(version),
            "zip" => Endpoint::Zip(version),
            _ => return Err(unrecognized()),
        }
    };
    Ok(ModuleRequest { module, endpoint })
}

/// Decodes `%XX` escapes; `None` when one is malformed or the result is not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_string());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None; // from_str_radix alone would take `+f`
            }
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(path: &str) -> ModuleRequest {
        match Route::parse(path).unwrap() {
            Route::Module { request, .. } => request,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn an_immutable_file_has_the_content_type_of_its_parsed_request() {
        for path in [
            "rsc.io/quote/@v/v1.5.2.info",
            "rsc.io/quote/@v/v1.5.2.mod",
            "rsc.io/quote/@v/v1.5.2.zip",
        ] {
            let parsed = module(path).endpoint.content_type();
            assert_eq!(Endpoint::immutable_content_type(path), Some(parsed));
        }
        assert_eq!(
            Endpoint::immutable_content_type("rsc.io/quote/@v/list"),
            None
        );
    }

    #[test]
    fn parses_every_protocol_file() {
        let r = module("github.com/!azure/azure-sdk/@v/list");
        assert_eq!(r.module.as_str(), "github.com/Azure/azure-sdk");
        assert_eq!(r.endpoint, Endpoint::List);
        assert_eq!(module("rsc.io/quote/@latest").endpoint, Endpoint::Latest);
        assert_eq!(
            module("rsc.io/quote/@v/v1.5.2.info").endpoint,
            Endpoint::Info("v1.5.2".into())
        );
        assert_eq!(
            module("rsc.io/quote/@v/v1.5.2.mod").endpoint,
            Endpoint::Mod("v1.5.2".into())
        );
        assert_eq!(
            module("rsc.io/quote/@v/v2.0.0+incompatible.zip").endpoint,
            Endpoint::Zip("v2.0.0+incompatible".into())
        );
        assert_eq!(
            module("rsc.io/quote/@v/v2.0.0%2Bincompatible.zip").endpoint,
            Endpoint::Zip("v2.0.0+incompatible".into())
        );
        assert_eq!(
            module("rsc.io/quote/@v/master.info").endpoint,
            Endpoint::Query("master".into())
        );
        assert_eq!(
            module("rsc.io/quote/@v/v1.5.info").endpoint,
            Endpoint::Query("v1.5".into())
        );
        // Needs +incompatible: the upstream names the real version.
        assert_eq!(
            module("github.com/docker/docker/@v/v20.10.24.info").endpoint,
            Endpoint::Query("v20.10.24".into())
        );
    }

    #[test]
    fn protocol_path_round_trips() {
        for p in [
            "github.com/!azure/azure-sdk/@v/list",
            "rsc.io/quote/@latest",
            "rsc.io/quote/@v/v1.5.2.zip",
            "example.com/m/@v/v1.0.0-!r!c1.info",
        ] {
            assert_eq!(module(p).protocol_path(), p);
        }
    }

    #[test]
    fn cached_only_and_sumdb_prefixes() {
        assert_eq!(
            Route::parse("cached-only/rsc.io/quote/@v/list").unwrap(),
            Route::Module {
                request: module("rsc.io/quote/@v/list"),
                cached_only: true,
                key: "rsc.io/quote/@v/list".into(),
            }
        );
        assert_eq!(
            Route::parse("sumdb/sum.golang.org/supported").unwrap(),
            Route::SumDb("sum.golang.org/supported".into())
        );
    }

    #[test]
    fn percent_escapes_are_two_hex_digits() {
        assert_eq!(
            percent_decode("v2%2Bincompatible").as_deref(),
            Some("v2+incompatible")
        );
        for bad in ["%+f", "%-1", "%2", "%zz", "%c3%28"] {
            assert_eq!(percent_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn rejects_malformed_paths() {
        for p in [
            "../etc/passwd/@v/list",
            "rsc.io/../quote/@v/list",
            "github.com/Azure/x/@v/list",
            "rsc.io/quote/@v/v1.0.0.tar",
            "rsc.io/quote/@v/../../x.zip",
            "rsc.io/quote/@v/%2e%2e%2fx.info",
            "rsc.io/quote/@v/master.zip",
            "rsc.io/quote/@v/v1.0.0.zip/extra",
            "rsc.io/quote",
            "rsc.io/quote/@v/",
            "rsc.io/qu!Ote/@v/list",
            "rsc.io/quote/@v/%zz.info",
            "rsc.io/quote/@v/v1.0.0%+f.info",
            &format!("rsc.io/quote/@v/v1.0.0-{}.info", "a".repeat(300)),
            "",
        ] {
            assert!(Route::parse(p).is_err(), "{p} should be rejected");
        }
    }
}
