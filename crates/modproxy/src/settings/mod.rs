//! Settings: each declared once in [`defs`], given as flags, `MODPROXY_*`
//! variables or keys of the TOML file ([`layers`]: flags and variables
//! over the file over the default), parsed here once into the service's
//! [`Settings`]. Every error names where the wrong value came from: the
//! flag, the variable, or the file and key.

pub mod defs;
pub mod layers;
pub mod values;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::{anyhow, bail};
use modproxy_module::authority;
use modproxy_module::goproxy::{ProxyList, ProxySpec};
use modproxy_module::pattern::PathPatterns;
use modproxy_module::sumdb_setting::SumDbSetting;
use modproxy_service::settings::{CachePolicy, Settings, TlsFiles, UpstreamPolicy};

use crate::logging::LogFormat;
pub use layers::Layers;

/// Everything a subcommand needs: the service settings, how to log, and
/// where each value came from (for start-up errors). Settings the
/// subcommand does not use hold their defaults.
pub struct Resolved {
    pub service: Settings,
    pub log_format: LogFormat,
    pub layers: Layers,
}

pub fn resolve(layers: Layers) -> anyhow::Result<Resolved> {
    use defs::*;
    let l = &layers;
    let patterns = |s: &str| PathPatterns::parse(s).map_err(|e| e.to_string());
    let patterns_or_none = |def: &Def| -> anyhow::Result<PathPatterns> {
        Ok(l.get(def, patterns)?.unwrap_or_default())
    };
    let listen = l.value(&LISTEN, parse_listen)?;
    let data_dir = match l.get(&DATA, parse_dir)? {
        Some(dir) => dir,
        None => default_data_dir().ok_or_else(|| {
            anyhow!(
                "no data directory: set --data (or {}), or HOME or XDG_CACHE_HOME",
                DATA.var()
            )
        })?,
    };
    let upstream = l.value(&UPSTREAM, parse_proxy_list)?;
    let private_upstream = l.value(&PRIVATE_UPSTREAM, parse_proxy_list)?;
    // Only a server can be its own upstream (warm's listens elsewhere).
    if layers.sub == Sub::Serve {
        check_no_loop(&upstream, listen, l, &UPSTREAM)?;
        check_no_loop(&private_upstream, listen, l, &PRIVATE_UPSTREAM)?;
    }
    let dur = |def: &Def| l.value(def, values::positive_duration);
    let count = |def: &Def| l.value(def, values::count);
    let cache_dur = |def: &Def| l.value(def, values::duration);
    let tls = match (l.raw(&TLS_CERT), l.raw(&TLS_KEY)) {
        (None, None) => None,
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: PathBuf::from(&cert.value),
            key: PathBuf::from(&key.value),
        }),
        (Some(cert), None) => bail!(
            "{} is set but no private key: set --tls-key (or {}) too",
            cert.origin,
            TLS_KEY.var()
        ),
        (None, Some(key)) => bail!(
            "{} is set but no certificate: set --tls-cert (or {}) too",
            key.origin,
            TLS_CERT.var()
        ),
    };
    let service = Settings {
        listen,
        data_dir,
        upstream,
        private_upstream,
        sumdb: l.value(&SUMDB, |s| {
            SumDbSetting::parse(s).map_err(|e| e.to_string())
        })?,
        private: patterns_or_none(&PRIVATE)?,
        nosumdb: patterns_or_none(&NOSUMDB)?,
        cached_only: l.value(&CACHED_ONLY, values::boolean)?,
        path_prefix: l.get(&PATH_PREFIX, parse_path_prefix)?.unwrap_or_default(),
        cache: CachePolicy {
            fresh_for: cache_dur(&FRESH_FOR)?,
            max_stale: cache_dur(&MAX_STALE)?,
            negative_ttl: cache_dur(&NEGATIVE_TTL)?,
        },
        upstream_policy: UpstreamPolicy {
            connect: dur(&CONNECT_TIMEOUT)?,
            headers: dur(&HEADERS_TIMEOUT)?,
            stall: dur(&STALL_TIMEOUT)?,
            deadline: dur(&FETCH_DEADLINE)?,
            retries: count(&RETRIES)?,
            retry_base: dur(&RETRY_BASE)?,
            breaker_threshold: count(&BREAKER_THRESHOLD)?,
            breaker_cooldown: dur(&BREAKER_COOLDOWN)?,
            hedge_after: l.get(&HEDGE_AFTER, values::positive_duration)?,
        },
        shutdown_grace: dur(&SHUTDOWN_GRACE)?,
        header_timeout: dur(&HEADER_TIMEOUT)?,
        send_timeout: dur(&SEND_TIMEOUT)?,
        max_connections: l.get(&MAX_CONNECTIONS, |s| match values::count(s)? {
            0 => Err(format!("{s:?} must be more than zero")),
            n => Ok(n),
        })?,
        prefetch: l.value(&PREFETCH, str::parse)?,
        body_buffers: l.value(&BODY_BUFFERS, |s| match values::size(s)? {
            n if n < 1 << 20 => Err(format!("{s:?} is too small: at least 1MiB")),
            n => Ok(n),
        })?,
        tls,
        auth_file: l.raw(&AUTH_FILE).map(|r| PathBuf::from(&r.value)),
        max_size: l.get(&MAX_SIZE, values::size)?,
        insecure: patterns_or_none(&INSECURE)?,
        allow_internal: patterns_or_none(&ALLOW_INTERNAL)?,
        git_timeout: dur(&GIT_TIMEOUT)?,
        store: l.value(&STORE_AT, str::parse)?,
        lock: l.get(&LOCK, parse_lock)?,
    };
    let log_format = l.value(&LOG_FORMAT, str::parse)?;
    Ok(Resolved {
        service,
        log_format,
        layers,
    })
}

fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("{s:?} is not an address like 127.0.0.1:3000 or [::1]:3000"))
}

fn parse_dir(s: &str) -> Result<PathBuf, String> {
    if s.trim().is_empty() {
        return Err("must not be empty".to_string());
    }
    Ok(PathBuf::from(s))
}

fn parse_lock(s: &str) -> Result<String, String> {
    if s.starts_with("redis://") || s.starts_with("rediss://") {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{s:?} is not a lock service: use redis://HOST:PORT or rediss://HOST:PORT (TLS)"
        ))
    }
}

fn parse_proxy_list(s: &str) -> Result<ProxyList, String> {
    ProxyList::parse(s).map_err(|e| e.to_string())
}

/// `""`, or `/segment[/segment…]` without a trailing slash.
fn parse_path_prefix(s: &str) -> Result<String, String> {
    let trimmed = s.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    let valid = trimmed.starts_with('/')
        && !trimmed.contains("//")
        && trimmed
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/-._~".contains(c));
    if !valid {
        return Err(format!("{s:?} is not a path prefix like /go"));
    }
    Ok(trimmed.to_string())
}

/// The user's cache directory + `/modproxy`.
fn default_data_dir() -> Option<PathBuf> {
    let base = match std::env::var_os(defs::XDG_CACHE_HOME) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => {
            let home = PathBuf::from(std::env::var_os(defs::HOME)?);
            if cfg!(target_os = "macos") {
                home.join("Library/Caches")
            } else {
                home.join(".cache")
            }
        }
    };
    Some(base.join("modproxy"))
}

/// Refuses an upstream that is this proxy itself: every miss would loop.
fn check_no_loop(
    list: &ProxyList,
    listen: SocketAddr,
    layers: &Layers,
    def: &defs::Def,
) -> anyhow::Result<()> {
    if listen.port() == 0 {
        return Ok(());
    }
    for entry in &list.entries {
        let ProxySpec::Url(url) = &entry.spec else {
            continue;
        };
        if points_at(url, listen) {
            bail!(
                "invalid {}: {url} is this proxy itself ({} is {listen}); requests would loop. Use the upstream's own address",
                layers.label(def),
                layers.label(&defs::LISTEN),
            );
        }
    }
    Ok(())
}

/// Whether `url` addresses the socket `listen` on this machine.
fn points_at(url: &str, listen: SocketAddr) -> bool {
    let Some((scheme, authority, _)) = authority::split_url(url) else {
        return false;
    };
    let Ok(authority) = authority::parse(authority) else {
        return false;
    };
    if authority.port_or_default(scheme) != Some(listen.port()) {
        return false;
    }
    let host = authority.host;
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(ip) => {
            ip == listen.ip()
                || ((ip.is_loopback() || ip.is_unspecified())
                    && (listen.ip().is_loopback() || listen.ip().is_unspecified()))
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loop_detection() {
        let listen: SocketAddr = "127.0.0.1:3000".parse().unwrap();
        assert!(points_at("http://127.0.0.1:3000", listen));
        assert!(points_at("http://localhost:3000/go", listen));
        assert!(points_at("http://[::1]:3000", listen));
        assert!(!points_at("http://127.0.0.1:3001", listen));
        assert!(!points_at("https://proxy.golang.org", listen));
        let any: SocketAddr = "0.0.0.0:80".parse().unwrap();
        assert!(points_at("http://127.0.0.1", any));
    }

    #[test]
    fn path_prefixes() {
        assert_eq!(parse_path_prefix("/go/").unwrap(), "/go");
        assert_eq!(parse_path_prefix("/").unwrap(), "");
        assert!(parse_path_prefix("go").is_err());
        assert!(parse_path_prefix("/a//b").is_err());
    }
}
