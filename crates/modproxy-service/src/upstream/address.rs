//! The address policy: where a URL that a module path names may lead.
//!
//! Everything a public module path names is attacker-controlled: the
//! host of its `?go-get=1` page, the proxy or repository its go-import tag
//! points to, every redirect on the way. Such URLs may reach only public
//! addresses: no loopback, private, link-local, unique-local, CGNAT,
//! multicast, reserved or unspecified ones, v4 or v6. The check is made on
//! the *resolved* address of every connection (a DNS resolver that drops
//! internal addresses, so a name that rebinds to one gets nowhere), on
//! address literals in URLs, and on every redirect hop (never from https
//! to plain http, at most [`MAX_REDIRECTS`]).
//!
//! Not subject to it: the configured upstreams and checksum database
//! (trusted as given), module paths matching `--private` (where a
//! company's git lives), and hosts matching `--allow-internal`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use modproxy_module::pattern::PathPatterns;

/// Redirect hops followed at most (the go command's client follows 10).
pub const MAX_REDIRECTS: usize = 10;

/// A connection the address policy does not allow.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{host} {why}: not reached for a public module path (address policy; list the module in --private, or the host in --allow-internal, to allow it)")]
pub struct Refused {
    pub host: String,
    pub why: String,
}

/// Which hosts may be internal.
#[derive(Debug, Default)]
pub struct AddressPolicy {
    allow: PathPatterns,
    /// The HTTP proxies of the environment (`HTTPS_PROXY`…): the operator's
    /// own, so they may be internal (what they reach is theirs to decide).
    proxies: Vec<String>,
}

impl AddressPolicy {
    /// `allow`: host names (or address literals) that may resolve to
    /// internal addresses (`--allow-internal`, GOPRIVATE-style globs).
    pub fn new(allow: PathPatterns) -> AddressPolicy {
        let proxies = [
            "HTTPS_PROXY",
            "https_proxy",
            "HTTP_PROXY",
            "http_proxy",
            "ALL_PROXY",
            "all_proxy",
        ]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .filter_map(|p| {
            let url = if p.contains("://") {
                p
            } else {
                format!("http://{p}")
            };
            Some(reqwest::Url::parse(&url).ok()?.host_str()?.to_string())
        })
        .collect();
        AddressPolicy { allow, proxies }
    }

    fn allows_host(&self, host: &str) -> bool {
        let host = host.trim_matches(['[', ']']);
        (!self.allow.is_empty() && self.allow.matches(host))
            || self
                .proxies
                .iter()
                .any(|p| p.trim_matches(['[', ']']) == host)
    }

    /// Checks a URL before a request: its scheme, and its host when that
    /// is an address literal (a name is checked when it is resolved).
    pub fn check_url(&self, url: &str) -> Result<(), Refused> {
        let parsed = reqwest::Url::parse(url).map_err(|e| Refused {
            host: url.to_string(),
            why: format!("is not a valid URL ({e})"),
        })?;
        let host = parsed.host_str().unwrap_or("").to_string();
        if self.allows_host(&host) {
            return Ok(());
        }
        if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
            if !is_public(ip) {
                return Err(Refused {
                    host,
                    why: "is an internal address".into(),
                });
            }
        }
        Ok(())
    }

    /// The addresses `host` resolved to that may be used; refused when
    /// none may (an internal address among public ones is dropped; with
    /// `strict`, for a tool that resolves the name again itself, any
    /// internal one refuses them all). The addresses go to the log only:
    /// the client is not told what internal names resolve to.
    pub fn filter(
        &self,
        host: &str,
        addrs: Vec<SocketAddr>,
        strict: bool,
    ) -> Result<Vec<SocketAddr>, Refused> {
        if self.allows_host(host) {
            return Ok(addrs);
        }
        let (public, internal): (Vec<SocketAddr>, Vec<SocketAddr>) =
            addrs.into_iter().partition(|a| is_public(a.ip()));
        if public.is_empty() || (strict && !internal.is_empty()) {
            tracing::warn!(
                host,
                ?internal,
                "address policy: refused a host with internal addresses"
            );
            return Err(Refused {
                host: host.to_string(),
                why: "resolves to an internal address".into(),
            });
        }
        Ok(public)
    }

    /// Resolves `host:port` (bounded by `limit`) and checks the answer,
    /// for a tool (git, ssh) that connects by itself: its addresses, to
    /// pin where the tool can be told to use them (`strict` where it
    /// cannot), or `None` for an allowed host (no check, nothing pinned).
    /// A name that cannot be resolved now is refused: where it leads
    /// cannot be checked, and the tool's own lookup might go elsewhere.
    pub async fn resolve(
        self: &Arc<Self>,
        host: &str,
        port: u16,
        limit: Duration,
        strict: bool,
    ) -> Result<Option<Vec<SocketAddr>>, Refused> {
        if self.allows_host(host) {
            return Ok(None);
        }
        if host.ends_with('.') {
            return Err(Refused {
                host: host.to_string(),
                why: "ends with a dot (fully qualified names are not pinned)".into(),
            });
        }
        if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
            let addr = SocketAddr::new(ip, port);
            return self.filter(host, vec![addr], strict).map(Some);
        }
        let name = format!("{host}:{port}");
        let lookup = tokio::task::spawn_blocking(move || name.to_socket_addrs());
        match tokio::time::timeout(limit, lookup).await {
            Ok(Ok(Ok(addrs))) => self.filter(host, addrs.collect(), strict).map(Some),
            Ok(Ok(Err(e))) => Err(Refused {
                host: host.to_string(),
                why: format!("cannot be resolved now ({e}), so where it leads cannot be checked"),
            }),
            _ => Err(Refused {
                host: host.to_string(),
                why: "did not resolve in time, so where it leads cannot be checked".into(),
            }),
        }
    }

    /// Applies the policy to a client being built: its resolver and its
    /// redirects.
    pub fn guard(self: &Arc<Self>, builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        builder
            .dns_resolver(Arc::new(GuardedDns(Arc::clone(self))))
            .redirect(redirects(Some(Arc::clone(self))))
    }
}

/// The redirect policy of the trusted client (configured upstreams):
/// any address, but never from https to plain http, at most
/// [`MAX_REDIRECTS`] hops.
pub fn trusted_redirects() -> reqwest::redirect::Policy {
    redirects(None)
}

/// Never from https to plain http, at most [`MAX_REDIRECTS`] hops, and
/// with `check`, every hop's address literal checked (names are checked
/// when they are resolved).
fn redirects(check: Option<Arc<AddressPolicy>>) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        let from_https = attempt
            .previous()
            .last()
            .is_some_and(|u| u.scheme() == "https");
        if from_https && attempt.url().scheme() != "https" {
            let refused = Refused {
                host: attempt.url().host_str().unwrap_or("").to_string(),
                why: "is a redirect from https to plain http".into(),
            };
            return attempt.error(refused);
        }
        match check.as_ref().map(|c| c.check_url(attempt.url().as_str())) {
            Some(Err(refused)) => attempt.error(refused),
            _ => attempt.follow(),
        }
    })
}

/// The first [`Refused`] in an error's chain, if the policy is why it failed.
pub fn refused_in(e: &(dyn std::error::Error + 'static)) -> Option<Refused> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(refused) = c.downcast_ref::<Refused>() {
            return Some(refused.clone());
        }
        cause = c.source();
    }
    None
}

/// A resolver that drops internal addresses (see [`AddressPolicy::filter`]).
struct GuardedDns(Arc<AddressPolicy>);

impl reqwest::dns::Resolve for GuardedDns {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = Arc::clone(&self.0);
        Box::pin(async move {
            let host = name.as_str().to_string();
            let lookup = host.clone();
            let addrs = tokio::task::spawn_blocking(move || (lookup.as_str(), 0).to_socket_addrs())
                .await
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)??;
            let allowed = policy.filter(&host, addrs.collect(), false)?;
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// Whether `ip` is a public unicast address (see the module docs).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            is_public_v6(v6)
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // CGNAT 100.64.0.0/10.
        || (a == 100 && (64..128).contains(&b))
        // IETF protocol assignments 192.0.0.0/24, benchmarking 198.18.0.0/15.
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b == 18 || b == 19))
        // Reserved 240.0.0.0/4.
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // Unique local fc00::/7, link-local fe80::/10, site-local fec0::/10.
        || (s[0] & 0xfe00) == 0xfc00
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] & 0xffc0) == 0xfec0
        // Documentation 2001:db8::/32; IPv4-compatible ::/96.
        || (s[0] == 0x2001 && s[1] == 0x0db8)
        || s[..6].iter().all(|&x| x == 0)
        // Local-use NAT64 64:ff9b:1::/48 translates to anything.
        || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1)
        // NAT64 64:ff9b::/96: the embedded IPv4 address decides.
        || (s[0] == 0x64 && s[1] == 0xff9b && s[2..6].iter().all(|&x| x == 0) && {
            let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
            !is_public_v4(v4)
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_not_public() {
        for internal in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "64:ff9b::7f00:1",
            "ff02::1",
            "64:ff9b:1::a00:1",
        ] {
            assert!(!is_public(internal.parse().unwrap()), "{internal}");
        }
        for public in ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "64:ff9b::808:808"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn urls_naming_internal_addresses_are_refused_unless_allowed() {
        let policy = AddressPolicy::default();
        assert!(policy.check_url("https://127.0.0.1/x?go-get=1").is_err());
        assert!(policy.check_url("http://[::1]:8080/").is_err());
        assert!(policy.check_url("https://169.254.169.254/latest").is_err());
        assert!(policy.check_url("https://example.com/x").is_ok());
        let allowing = AddressPolicy::new(PathPatterns::parse("127.0.0.1,*.corp.example").unwrap());
        assert!(allowing.check_url("http://127.0.0.1:9/").is_ok());
        let addrs = vec!["10.1.1.1:443".parse().unwrap()];
        assert!(allowing
            .filter("git.corp.example", addrs.clone(), true)
            .is_ok());
        let refused = policy.filter("evil.example", addrs, false).unwrap_err();
        assert!(
            refused.to_string().contains("--allow-internal"),
            "{refused}"
        );
        // An internal address among public ones is dropped.
        let mixed = vec![
            "10.1.1.1:443".parse().unwrap(),
            "8.8.8.8:443".parse().unwrap(),
        ];
        let kept = policy
            .filter("mixed.example", mixed.clone(), false)
            .unwrap();
        assert_eq!(kept, vec!["8.8.8.8:443".parse::<SocketAddr>().unwrap()]);
        // …unless the tool resolves the name again itself (ssh).
        assert!(policy.filter("mixed.example", mixed, true).is_err());
    }
}
