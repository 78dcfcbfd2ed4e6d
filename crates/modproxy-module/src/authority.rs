//! One reading of a URL's authority, `[userinfo@]host[:port]` with an IPv6
//! host in brackets, shared by every place that takes a host and port out
//! of a configured URL: the GOPROXY list checks, the `--upstream` loop
//! check, doctor's probes. It splits; each caller judges the parts.

/// The parts of an authority. `host` has no brackets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authority<'a> {
    pub userinfo: Option<&'a str>,
    pub host: &'a str,
    /// The host was written in brackets (an IPv6 address).
    pub bracketed: bool,
    /// As written (not checked to be a number).
    pub port: Option<&'a str>,
}

impl Authority<'_> {
    /// The port as a number, or the scheme's (`https` 443, else 80).
    pub fn port_or_default(&self, scheme: &str) -> Option<u16> {
        match self.port {
            Some(port) => port.parse().ok(),
            None if scheme.eq_ignore_ascii_case("https") => Some(443),
            None => Some(80),
        }
    }
}

/// Splits an authority; the error says what is malformed.
pub fn parse(authority: &str) -> Result<Authority<'_>, &'static str> {
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((user, rest)) => (Some(user), rest),
        None => (None, authority),
    };
    if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or("unterminated IPv6 address")?;
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or("invalid character after IPv6 address")?,
            ),
        };
        return Ok(Authority {
            userinfo,
            host,
            bracketed: true,
            port,
        });
    }
    let (host, port) = match hostport.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (hostport, None),
    };
    Ok(Authority {
        userinfo,
        host,
        bracketed: false,
        port,
    })
}

/// `scheme://authority/path` as (scheme, authority, path); the path is
/// `""` or starts with `/`. `None` without `://`.
pub fn split_url(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find('/').unwrap_or(rest.len());
    Some((scheme, &rest[..end], &rest[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities() {
        let a = parse("u:p@[::1]:3000").unwrap();
        assert_eq!(
            (a.userinfo, a.host, a.bracketed, a.port),
            (Some("u:p"), "::1", true, Some("3000"))
        );
        let a = parse("proxy.example").unwrap();
        assert_eq!(
            (a.host, a.port_or_default("https")),
            ("proxy.example", Some(443))
        );
        assert_eq!(parse("h:8080").unwrap().port_or_default("http"), Some(8080));
        assert_eq!(parse("h:x").unwrap().port_or_default("http"), None);
        assert!(parse("[::1").is_err());
        assert!(parse("[::1]x").is_err());
        assert_eq!(
            split_url("https://a@h:1/p/q"),
            Some(("https", "a@h:1", "/p/q"))
        );
        assert_eq!(split_url("http://h"), Some(("http", "h", "")));
    }
}
