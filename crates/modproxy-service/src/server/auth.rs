//! Client authentication (off unless `--auth-file` is given): bearer
//! tokens or basic auth from a tokens file, each token optionally limited
//! to module path patterns, so private modules can be shared with one team.
//!
//! The file has one client per line; blank lines and comments (from a `#`
//! at the start of a line or after a space) are skipped:
//!
//! ```text
//! # name    secret              module path patterns (GOPRIVATE syntax; none: all)
//! ci        3f9a…               
//! team-a    8c1d…               example.com/team-a/*,example.com/shared
//! ```
//!
//! A client sends `Authorization: Bearer SECRET`, or basic auth with the
//! name and the secret (what the go command sends for
//! `GOPROXY=https://NAME:SECRET@host`, or from `.netrc`).

use std::path::Path;

use base64::Engine;
use hyper::header::HeaderValue;
use modproxy_module::path::ModulePath;
use modproxy_module::pattern::PathPatterns;

/// One client allowed in.
#[derive(Debug)]
pub struct Client {
    pub name: String,
    /// SHA-256 of the secret: compared in constant time, and equal length
    /// whatever the secret's.
    secret: [u8; 32],
    /// `None`: every module.
    patterns: Option<PathPatterns>,
}

impl Client {
    /// Whether this client may fetch `module`.
    pub fn allows(&self, module: &str) -> bool {
        self.patterns.as_ref().is_none_or(|p| p.matches(module))
    }

    /// Whether this client may fetch every module (and so see the
    /// dashboard and metrics).
    pub fn is_unrestricted(&self) -> bool {
        self.patterns.is_none()
    }
}

/// Why a request was not let in.
pub enum Denied {
    /// No credentials, or wrong ones: 401.
    Unauthenticated,
    /// Known client, module outside its patterns: 403.
    Forbidden { client: String, module: String },
    /// A client limited to module patterns asked for the dashboard or
    /// metrics (which show every module): 403.
    NotOperator { client: String },
}

#[derive(Debug)]
pub struct Auth {
    clients: Vec<Client>,
}

impl Auth {
    /// Reads the tokens file; the error names the file and the line.
    pub fn load(path: &Path) -> Result<Auth, String> {
        let text = crate::settings::read_settings_file(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Auth::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn parse(text: &str) -> Result<Auth, String> {
        let mut clients: Vec<Client> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            // A comment starts with `#` at the start of a line or after a
            // space; a `#` inside a secret is part of it.
            let b = line.as_bytes();
            let comment =
                (0..b.len()).find(|&i| b[i] == b'#' && (i == 0 || b[i - 1].is_ascii_whitespace()));
            let line = line[..comment.unwrap_or(line.len())].trim();
            if line.is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (name, secret, patterns) = match fields[..] {
                [name, secret] => (name, secret, None),
                [name, secret, patterns] => (name, secret, Some(patterns)),
                _ => {
                    return Err(format!(
                        "line {}: expected `name secret [patterns]`, found {} fields",
                        n + 1,
                        fields.len()
                    ))
                }
            };
            if secret.len() < 16 {
                return Err(format!(
                    "line {}: the secret of {name} is shorter than 16 characters",
                    n + 1
                ));
            }
            if name.contains(':') {
                return Err(format!("line {}: a name cannot contain ':'", n + 1));
            }
            if clients.iter().any(|c| c.name == name) {
                return Err(format!("line {}: {name} is listed twice", n + 1));
            }
            let patterns = patterns
                .map(PathPatterns::parse)
                .transpose()
                .map_err(|e| format!("line {}: {e}", n + 1))?;
            clients.push(Client {
                name: name.to_string(),
                secret: digest(secret),
                patterns,
            });
        }
        if clients.is_empty() {
            return Err("no clients in it (lines `name secret [patterns]`)".into());
        }
        Ok(Auth { clients })
    }

    /// The client an `Authorization` header names.
    pub fn identify(&self, header: Option<&HeaderValue>) -> Result<&Client, Denied> {
        let value = header
            .and_then(|h| h.to_str().ok())
            .ok_or(Denied::Unauthenticated)?;
        let (scheme, credentials) = value.split_once(' ').ok_or(Denied::Unauthenticated)?;
        let credentials = credentials.trim();
        let (name, secret) = if scheme.eq_ignore_ascii_case("bearer") {
            (None, credentials.to_string())
        } else if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(credentials)
                .map_err(|_| Denied::Unauthenticated)?;
            let decoded = String::from_utf8(decoded).map_err(|_| Denied::Unauthenticated)?;
            let (name, secret) = decoded.split_once(':').ok_or(Denied::Unauthenticated)?;
            (Some(name.to_string()), secret.to_string())
        } else {
            return Err(Denied::Unauthenticated);
        };
        // Every client is compared, in time that depends neither on the
        // secret nor on which client (if any) it belongs to.
        let presented = digest(&secret);
        let mut found = None;
        for c in &self.clients {
            let matches = same(&c.secret, &presented);
            if matches && name.as_deref().is_none_or(|n| n == c.name) {
                found = Some(c);
            }
        }
        found.ok_or(Denied::Unauthenticated)
    }
}

/// The module a checksum database path is about (`lookup/MODULE@VERSION`),
/// for scoped clients; `None` for tiles, `latest`, `supported`.
pub fn sumdb_module(rest: &str) -> Option<String> {
    let lookup = rest.split_once("/lookup/").map(|(_, l)| l)?;
    let (module, _) = lookup.rsplit_once('@')?;
    Some(ModulePath::unescape(module).map_or_else(|_| module.to_string(), |m| m.into_string()))
}

/// Compares digests in time that does not depend on where they differ.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn digest(secret: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(secret.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(s: &str) -> HeaderValue {
        HeaderValue::from_str(s).unwrap()
    }

    #[test]
    fn bearer_and_basic_clients_with_and_without_patterns() {
        let auth = Auth::parse(
            "# clients\nci 0123456789abcdef # the CI farm\n\nteam s3cret#s3cret-s3cret example.com/team/*\n",
        )
        .unwrap();
        let ci = auth
            .identify(Some(&header("Bearer 0123456789abcdef")))
            .ok()
            .unwrap();
        assert_eq!(ci.name, "ci");
        assert!(ci.allows("rsc.io/quote"));
        let basic = base64::engine::general_purpose::STANDARD.encode("team:s3cret#s3cret-s3cret");
        let team = auth
            .identify(Some(&header(&format!("Basic {basic}"))))
            .ok()
            .unwrap();
        assert!(team.allows("example.com/team/app"));
        assert!(!team.allows("rsc.io/quote"));
        assert!(!team.is_unrestricted() && ci.is_unrestricted());
        for bad in [
            "Bearer wrong",
            "Basic !!",
            "Token 0123456789abcdef",
            "Bearer",
        ] {
            assert!(auth.identify(Some(&header(bad))).is_err(), "{bad}");
        }
        assert!(auth.identify(None).is_err());
        let wrong_name =
            base64::engine::general_purpose::STANDARD.encode("ci:s3cret#s3cret-s3cret");
        assert!(auth
            .identify(Some(&header(&format!("Basic {wrong_name}"))))
            .is_err());
    }

    #[test]
    fn bad_files_are_refused_with_the_line() {
        for (text, want) in [
            ("ci short\n", "line 1: the secret of ci is shorter"),
            ("a 0123456789abcdef x y\n", "line 1: expected"),
            (
                "a 0123456789abcdef\na 0123456789abcdef\n",
                "line 2: a is listed twice",
            ),
            ("# nothing\n", "no clients"),
        ] {
            let err = Auth::parse(text).unwrap_err();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn lookups_name_their_module() {
        assert_eq!(
            sumdb_module("sum.golang.org/lookup/github.com/!azure/x@v1.0.0").as_deref(),
            Some("github.com/Azure/x")
        );
        assert_eq!(sumdb_module("sum.golang.org/tile/8/0/000"), None);
    }
}
