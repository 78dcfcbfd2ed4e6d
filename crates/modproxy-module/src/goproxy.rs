//! The `GOPROXY` list syntax (`modfetch.proxyList`): proxy URLs, `direct`
//! and `off`, separated by `,` (fall through on 404/410 only) or `|` (fall
//! through on any error).

use std::fmt;

use crate::goquote::quote;

/// A bad `GOPROXY` value.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ProxyListError {
    #[error("GOPROXY list is empty")]
    Empty,
    #[error("GOPROXY list is not the empty string, but contains no entries")]
    NoEntries,
    #[error("invalid GOPROXY entry {}: contains white space", quote(entry))]
    WhiteSpace { entry: String },
    #[error("invalid proxy URL missing scheme: {entry}")]
    MissingScheme { entry: String },
    #[error(
        "invalid proxy URL {entry}: file:// proxies are valid in Go, \
         but this proxy speaks HTTP only (use http:// or https://)"
    )]
    FileScheme { entry: String },
    #[error("invalid proxy URL scheme (must be https or http): {entry}")]
    UnsupportedScheme { entry: String },
    #[error("invalid proxy URL {entry}: {reason}")]
    InvalidUrl { entry: String, reason: &'static str },
}

/// One element of a `GOPROXY` list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ProxySpec {
    /// An `http://` or `https://` base URL without a trailing slash.
    Url(String),
    /// Fetch from the origin version control system.
    Direct,
    /// Fail: module downloads are disallowed.
    Off,
}

/// A list entry and how to treat its errors.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProxyEntry {
    pub spec: ProxySpec,
    /// True when the entry was followed by `|`: try the next entry after
    /// any error, not only after "not found" (404/410).
    pub fall_through_on_error: bool,
}

/// A parsed `GOPROXY` value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProxyList {
    pub entries: Vec<ProxyEntry>,
}

impl ProxyList {
    /// Parses a `GOPROXY` value like Go's `proxyList`:
    ///
    /// * entries are separated by `,` or `|`; white space around an entry
    ///   is trimmed and empty entries are skipped;
    /// * `off` and `direct` end the list: Go ignores everything after them
    ///   (without even checking it), and so do we;
    /// * an entry containing `.`, `:` or `/` but no `:/` (and not an
    ///   absolute path) gets `https://` prepended, so `proxy.example.com`
    ///   means `https://proxy.example.com`;
    /// * only `http` and `https` URLs are accepted (Go also accepts
    ///   `file://`, but this proxy speaks HTTP only); trailing slashes are
    ///   removed.
    ///
    /// An empty string is an error here (Go substitutes its default,
    /// `https://proxy.golang.org,direct`), as is an entry with white space
    /// inside it.
    pub fn parse(s: &str) -> Result<ProxyList, ProxyListError> {
        if s.is_empty() {
            return Err(ProxyListError::Empty);
        }
        let mut entries = Vec::new();
        let mut rest = s;
        while !rest.is_empty() {
            let (raw, fall_through_on_error) = match rest.find([',', '|']) {
                Some(i) => {
                    let fall = rest.as_bytes()[i] == b'|';
                    let raw = &rest[..i];
                    rest = &rest[i + 1..];
                    (raw, fall)
                }
                None => (std::mem::take(&mut rest), false),
            };
            let entry = raw.trim();
            match entry {
                "" => continue,
                "off" | "direct" => {
                    let spec = if entry == "off" {
                        ProxySpec::Off
                    } else {
                        ProxySpec::Direct
                    };
                    entries.push(ProxyEntry {
                        spec,
                        fall_through_on_error: false,
                    });
                    break;
                }
                _ => {
                    let url = parse_proxy_url(entry)?;
                    entries.push(ProxyEntry {
                        spec: ProxySpec::Url(url),
                        fall_through_on_error,
                    });
                }
            }
        }
        if entries.is_empty() {
            return Err(ProxyListError::NoEntries);
        }
        Ok(ProxyList { entries })
    }
}

impl fmt::Display for ProxyList {
    /// Prints the list back in `GOPROXY` syntax.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.entries.iter().enumerate() {
            if i > 0 && !self.entries[i - 1].fall_through_on_error {
                f.write_str(",")?;
            }
            write!(f, "{}", e.spec)?;
            if e.fall_through_on_error {
                f.write_str("|")?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for ProxySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxySpec::Url(u) => f.write_str(u),
            ProxySpec::Direct => f.write_str("direct"),
            ProxySpec::Off => f.write_str("off"),
        }
    }
}

/// Validates one URL entry, adding `https://` where Go would.
fn parse_proxy_url(entry: &str) -> Result<String, ProxyListError> {
    if entry.chars().any(char::is_whitespace) {
        return Err(ProxyListError::WhiteSpace {
            entry: entry.to_owned(),
        });
    }
    let is_abs_path = entry.starts_with('/') || entry.starts_with('\\');
    let url = if entry.contains(['.', ':', '/']) && !entry.contains(":/") && !is_abs_path {
        format!("https://{entry}")
    } else {
        entry.to_owned()
    };
    normalize_http_url(&url).map_err(|e| match e {
        UrlProblem::MissingScheme => ProxyListError::MissingScheme { entry: url.clone() },
        UrlProblem::FileScheme => ProxyListError::FileScheme { entry: url.clone() },
        UrlProblem::BadScheme => ProxyListError::UnsupportedScheme { entry: url.clone() },
        UrlProblem::Invalid(reason) => ProxyListError::InvalidUrl {
            entry: url.clone(),
            reason,
        },
    })
}

/// Why a string is not an acceptable `http(s)://host[/path]` URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UrlProblem {
    MissingScheme,
    FileScheme,
    BadScheme,
    Invalid(&'static str),
}

/// Checks that `url` is `http://` or `https://` (any case) followed by a
/// non-empty host and an optional path, and returns it with the scheme
/// lower-cased and trailing slashes removed.
pub(crate) fn normalize_http_url(url: &str) -> Result<String, UrlProblem> {
    check_http_url(url)?;
    let (scheme, rest) = url.split_once(':').expect("checked");
    let rest = rest.trim_end_matches('/');
    Ok(format!("{}:{rest}", scheme.to_ascii_lowercase()))
}

fn check_http_url(url: &str) -> Result<(), UrlProblem> {
    // Go's url.getScheme: a letter, then letters, digits, '+', '-', '.'.
    let scheme_len = url
        .bytes()
        .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')))
        .unwrap_or(url.len());
    let scheme = &url[..scheme_len];
    let valid_scheme = url.as_bytes().get(scheme_len) == Some(&b':')
        && scheme
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic());
    if !valid_scheme {
        return Err(UrlProblem::MissingScheme);
    }
    match scheme.to_ascii_lowercase().as_str() {
        "http" | "https" => {}
        "file" => return Err(UrlProblem::FileScheme),
        _ => return Err(UrlProblem::BadScheme),
    }
    let Some(rest) = url[scheme_len + 1..].strip_prefix("//") else {
        return Err(UrlProblem::Invalid("expected scheme://host"));
    };
    let host_end = rest.find('/').unwrap_or(rest.len());
    let host = &rest[..host_end];
    if host.is_empty() {
        return Err(UrlProblem::Invalid("missing host"));
    }
    if rest.contains(['?', '#']) {
        return Err(UrlProblem::Invalid("query and fragment not allowed"));
    }
    if rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(UrlProblem::Invalid(
            "contains white space or control characters",
        ));
    }
    check_host(host)
}

/// `[userinfo@]hostname[:port]` or `[userinfo@][ipv6][:port]`.
fn check_host(host: &str) -> Result<(), UrlProblem> {
    let authority = crate::authority::parse(host).map_err(UrlProblem::Invalid)?;
    let addr = authority.host;
    if authority.bracketed {
        if addr.is_empty()
            || !addr
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err(UrlProblem::Invalid("invalid IPv6 address"));
        }
    } else if addr.is_empty() {
        return Err(UrlProblem::Invalid("missing host"));
    } else if !addr
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b))
    {
        return Err(UrlProblem::Invalid("invalid character in host"));
    }
    if let Some(port) = authority.port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(UrlProblem::Invalid("invalid port"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
