//! `net/url`: `Parse`'s checks, and escaping, as the go command uses them.

use super::*;

/// The `net/url` encoding modes used here.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Path,
    Host,
    Zone,
    UserPassword,
    Fragment,
}

/// Go's `url.shouldEscape`.
pub(super) fn should_escape(c: u8, mode: Mode) -> bool {
    if c.is_ascii_alphanumeric() {
        return false;
    }
    if matches!(mode, Mode::Host | Mode::Zone)
        && matches!(
            c,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'['
                | b']'
                | b'<'
                | b'>'
                | b'"'
        )
    {
        return false;
    }
    match c {
        b'-' | b'_' | b'.' | b'~' => return false,
        b'$' | b'&' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'?' | b'@' => match mode {
            Mode::Path => return c == b'?',
            Mode::UserPassword => return matches!(c, b'@' | b'/' | b'?' | b':'),
            Mode::Fragment => return false,
            Mode::Host | Mode::Zone => {}
        },
        _ => {}
    }
    !(mode == Mode::Fragment && matches!(c, b'!' | b'(' | b')' | b'*'))
}

/// Go's `url.escape` (for the modes without `+` for space).
pub(super) fn escape(s: &str, mode: Mode) -> String {
    let mut out = String::with_capacity(s.len());
    for &c in s.as_bytes() {
        if should_escape(c, mode) {
            out.push_str(&format!("%{c:02X}"));
        } else {
            out.push(char::from(c));
        }
    }
    out
}

/// The checks of Go's `url.unescape`, returning the unescaped bytes.
pub(super) fn unescape(s: &str, mode: Mode) -> Result<Vec<u8>, String> {
    let b = s.as_bytes();
    let hex = |c: u8| char::from(c).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let (Some(hi), Some(lo)) = (
                b.get(i + 1).and_then(|&c| hex(c)),
                b.get(i + 2).and_then(|&c| hex(c)),
            ) else {
                let bad = String::from_utf8_lossy(&b[i..(i + 3).min(b.len())]);
                return Err(format!("invalid URL escape {}", quote(&bad)));
            };
            let v = (hi << 4 | lo) as u8;
            let is25 = &b[i..i + 3] == b"%25";
            let bad = match mode {
                Mode::Host => hi < 8 && !is25,
                Mode::Zone => !is25 && v != b' ' && should_escape(v, Mode::Host),
                _ => false,
            };
            if bad {
                return Err(format!("invalid URL escape {}", quote(&s[i..i + 3])));
            }
            out.push(v);
            i += 3;
        } else {
            if matches!(mode, Mode::Host | Mode::Zone) && b[i] < 0x80 && should_escape(b[i], mode) {
                let bad = char::from(b[i]).to_string();
                return Err(format!("invalid character {} in host name", quote(&bad)));
            }
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// Go's `url.Parse`, reduced to its verdict: the lower-cased scheme (empty
/// for none), or Go's error message.
pub(super) fn url_scheme(raw: &str) -> Result<String, String> {
    let (u, frag) = raw.split_once('#').unwrap_or((raw, ""));
    let scheme = parse_url(u).map_err(|e| format!("parse {}: {e}", quote(u)))?;
    if !frag.is_empty() {
        unescape(frag, Mode::Fragment).map_err(|e| format!("parse {}: {e}", quote(raw)))?;
    }
    Ok(scheme)
}

pub(super) fn parse_url(raw: &str) -> Result<String, String> {
    if raw.bytes().any(|b| b < b' ' || b == 0x7f) {
        return Err("net/url: invalid control character in URL".into());
    }
    if raw == "*" {
        return Ok(String::new());
    }
    let (scheme, rest) = get_scheme(raw)?;
    let scheme = scheme.to_ascii_lowercase();
    let rest = if rest.ends_with('?') && rest.matches('?').count() == 1 {
        &rest[..rest.len() - 1]
    } else {
        rest.split_once('?').map_or(rest, |(r, _)| r)
    };
    if !rest.starts_with('/') {
        if !scheme.is_empty() {
            return Ok(scheme); // opaque
        }
        if rest.split('/').next().unwrap_or("").contains(':') {
            return Err("first path segment in URL cannot contain colon".into());
        }
    }
    let mut path = rest;
    if (!scheme.is_empty() || !rest.starts_with("///")) && rest.starts_with("//") {
        let authority = &rest[2..];
        let (authority, p) = authority.split_at(authority.find('/').unwrap_or(authority.len()));
        parse_authority(&scheme, authority)?;
        path = p;
    }
    unescape(path, Mode::Path)?;
    Ok(scheme)
}

/// Go's `getScheme`.
pub(super) fn get_scheme(raw: &str) -> Result<(&str, &str), String> {
    for (i, c) in raw.bytes().enumerate() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i == 0 => return Ok(("", raw)),
            b'0'..=b'9' | b'+' | b'-' | b'.' => {}
            b':' if i == 0 => return Err("missing protocol scheme".into()),
            b':' => return Ok((&raw[..i], &raw[i + 1..])),
            _ => return Ok(("", raw)),
        }
    }
    Ok(("", raw))
}

pub(super) fn parse_authority(scheme: &str, authority: &str) -> Result<(), String> {
    let (userinfo, host) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    parse_host(scheme, host)?;
    if let Some(userinfo) = userinfo {
        let valid = userinfo.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(
                    c,
                    '-' | '.'
                        | '_'
                        | ':'
                        | '~'
                        | '!'
                        | '$'
                        | '&'
                        | '\''
                        | '('
                        | ')'
                        | '*'
                        | '+'
                        | ','
                        | ';'
                        | '='
                        | '%'
                        | '@'
                )
        });
        if !valid {
            return Err("net/url: invalid userinfo".into());
        }
        // Splitting at the first ':' does not change which escapes are bad.
        unescape(userinfo, Mode::UserPassword)?;
    }
    Ok(())
}

pub(super) fn valid_optional_port(port: &str) -> bool {
    port.is_empty() || (port.starts_with(':') && port[1..].bytes().all(|b| b.is_ascii_digit()))
}

pub(super) fn parse_host(scheme: &str, host: &str) -> Result<(), String> {
    match host.rfind('[') {
        Some(i) if i > 0 => return Err("invalid IP-literal".into()),
        Some(_) => {
            let close = host.rfind(']').ok_or("missing ']' in host")?;
            let colon_port = &host[close + 1..];
            if !valid_optional_port(colon_port) {
                return Err(format!("invalid port {} after host", quote(colon_port)));
            }
            let hostname = &host[1..close];
            let addr = match hostname.find("%25") {
                Some(z) => {
                    let mut a = unescape(&hostname[..z], Mode::Host)?;
                    a.extend(unescape(&hostname[z..], Mode::Zone)?);
                    a
                }
                None => unescape(hostname, Mode::Host)?,
            };
            let addr = String::from_utf8_lossy(&addr);
            return parse_ipv6_literal(&addr);
        }
        None => {}
    }
    if let Some(first) = host.find(':') {
        let last = host.rfind(':').unwrap_or(first);
        // Strict about extra colons for http(s) only (godebug
        // urlstrictcolons=1, the default since Go 1.26).
        let i = if last != first && scheme != "http" && scheme != "https" {
            last
        } else {
            first
        };
        let colon_port = &host[i..];
        if !valid_optional_port(colon_port) {
            return Err(format!("invalid port {} after host", quote(colon_port)));
        }
    }
    unescape(host, Mode::Host)?;
    Ok(())
}

/// `netip.ParseAddr` on a bracketed host: an IPv6 address, with an
/// optional non-empty zone.
pub(super) fn parse_ipv6_literal(s: &str) -> Result<(), String> {
    let invalid = |msg: &str| Err(format!("invalid host: ParseAddr({}): {msg}", quote(s)));
    match s.bytes().find(|b| matches!(b, b'.' | b':' | b'%')) {
        Some(b'.') if s.parse::<std::net::Ipv4Addr>().is_ok() => Err("invalid IP-literal".into()),
        Some(b':') => {
            let (addr, zone) = match s.split_once('%') {
                Some((a, z)) => (a, Some(z)),
                None => (s, None),
            };
            if zone == Some("") {
                return invalid("zone must be a non-empty string");
            }
            match addr.parse::<std::net::Ipv6Addr>() {
                Ok(_) => Ok(()),
                Err(_) => invalid("invalid IPv6 address"),
            }
        }
        Some(b'%') => invalid("missing IPv6 address"),
        _ => invalid("unable to parse IP"),
    }
}
