//! The command line, second stage: flags and `MODPROXY_*` variables (from
//! [`crate::cli`]) merged over the TOML file (see [`file`]) over defaults,
//! validated once into the service's [`Settings`]. Every error names the key
//! it is about: the flag, the variable, or the file key.

pub mod env;
mod file;
pub mod values;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use modproxy_module::goproxy::{ProxyList, ProxySpec};
use modproxy_module::pattern::PathPatterns;
use modproxy_module::sumdb_setting::SumDbSetting;
use modproxy_service::settings::{
    CachePolicy, PrefetchMode, Settings, StoreLocation, TlsFiles, UpstreamPolicy,
    DEFAULT_GIT_TIMEOUT, DEFAULT_HEADER_TIMEOUT, DEFAULT_SHUTDOWN_GRACE,
};

use crate::cli::{ServeArgs, Sources};
use crate::logging::LogFormat;
use file::FileConfig;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:3000";
pub const DEFAULT_UPSTREAM: &str = "https://proxy.golang.org,direct";
pub const DEFAULT_PRIVATE_UPSTREAM: &str = "direct";
pub const DEFAULT_SUMDB: &str = "sum.golang.org";

/// Everything `serve` needs: the service settings and how to log.
pub struct Resolved {
    pub service: Settings,
    pub log_format: LogFormat,
    /// Where `data` and `listen` came from, for start-up errors.
    pub data_key: String,
    pub listen_key: String,
}

/// A raw value and the name of the key it came from.
struct Raw {
    value: String,
    key: String,
}

/// Picks flag/variable over file over nothing, remembering the key name.
struct Merge<'a> {
    sources: &'a Sources,
    file_name: Option<String>,
}

impl Merge<'_> {
    fn pick(&self, id: &str, var: &str, cli: &Option<String>, file: Option<String>) -> Option<Raw> {
        if let Some(value) = cli {
            return Some(Raw {
                value: value.clone(),
                key: self.sources.label(id, var),
            });
        }
        file.map(|value| Raw {
            value,
            key: self.file_key(id),
        })
    }

    fn file_key(&self, key: &str) -> String {
        match &self.file_name {
            Some(f) => format!("`{key}` in {f}"),
            None => format!("`{key}`"),
        }
    }

    /// Parses a value, or the default when the key is unset.
    fn parse<T>(
        &self,
        raw: Option<Raw>,
        default: impl FnOnce() -> T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> anyhow::Result<T> {
        match raw {
            None => Ok(default()),
            Some(raw) => parse(&raw.value).map_err(|e| anyhow!("invalid {}: {e}", raw.key)),
        }
    }
}

pub fn resolve(args: &ServeArgs, sources: &Sources) -> anyhow::Result<Resolved> {
    let file = match &args.config {
        Some(path) => FileConfig::load(Path::new(path))
            .with_context(|| format!("while reading {}", sources.label("config", env::CONFIG)))?,
        None => FileConfig::default(),
    };
    let m = Merge {
        sources,
        file_name: args.config.clone(),
    };

    let listen_raw = m.pick("listen", env::LISTEN, &args.listen, file.listen.clone());
    let listen_key = listen_raw
        .as_ref()
        .map_or("--listen".to_string(), |r| r.key.clone());
    let listen: SocketAddr = m.parse(
        listen_raw,
        || DEFAULT_LISTEN.parse().expect("default address parses"),
        |s| {
            s.trim()
                .parse()
                .map_err(|_| format!("{s:?} is not an address like 127.0.0.1:3000 or [::1]:3000"))
        },
    )?;
    let data_raw = m.pick("data", env::DATA, &args.data, file.data.clone());
    let data_key = data_raw
        .as_ref()
        .map_or("the default data directory".to_string(), |r| r.key.clone());
    let data_dir = m.parse(data_raw, default_data_dir, |s| {
        if s.trim().is_empty() {
            return Err("must not be empty".to_string());
        }
        Ok(Some(PathBuf::from(s)))
    })?;
    let data_dir = data_dir.ok_or_else(|| {
        anyhow!(
            "no data directory: set --data (or {}), or HOME or XDG_CACHE_HOME",
            env::DATA
        )
    })?;

    let upstream_raw = m.pick(
        "upstream",
        env::UPSTREAM,
        &args.upstream,
        file.upstream_list(),
    );
    let upstream_key = upstream_raw
        .as_ref()
        .map_or("--upstream".to_string(), |r| r.key.clone());
    let upstream = m.parse(
        upstream_raw,
        || proxy_list(DEFAULT_UPSTREAM),
        parse_proxy_list,
    )?;
    let private_raw = m.pick(
        "private_upstream",
        env::PRIVATE_UPSTREAM,
        &args.private_upstream,
        file.private_upstream.clone(),
    );
    let private_key = private_raw
        .as_ref()
        .map_or("--private-upstream".to_string(), |r| r.key.clone());
    let private_upstream = m.parse(
        private_raw,
        || proxy_list(DEFAULT_PRIVATE_UPSTREAM),
        parse_proxy_list,
    )?;
    check_no_loop(&upstream, listen, &upstream_key, &listen_key)?;
    check_no_loop(&private_upstream, listen, &private_key, &listen_key)?;

    let sumdb = m.parse(
        m.pick("sumdb", env::SUMDB, &args.sumdb, file.sumdb.clone()),
        || SumDbSetting::parse(DEFAULT_SUMDB).expect("default sumdb parses"),
        |s| SumDbSetting::parse(s).map_err(|e| e.to_string()),
    )?;
    let patterns = |s: &str| PathPatterns::parse(s).map_err(|e| e.to_string());
    let private = m.parse(
        m.pick("private", env::PRIVATE, &args.private, file.private.clone()),
        PathPatterns::default,
        patterns,
    )?;
    let nosumdb = m.parse(
        m.pick("nosumdb", env::NOSUMDB, &args.nosumdb, file.nosumdb.clone()),
        PathPatterns::default,
        patterns,
    )?;
    let store = m.parse(
        m.pick("store", env::STORE, &args.store, file.store.clone()),
        StoreLocation::default,
        str::parse,
    )?;
    let lock = m.parse(
        m.pick("lock", env::LOCK, &args.lock, file.lock.clone()),
        || None,
        |s| {
            if s.starts_with("redis://") || s.starts_with("rediss://") {
                Ok(Some(s.to_string()))
            } else {
                Err(format!(
                    "{s:?} is not a lock service: use redis://HOST:PORT"
                ))
            }
        },
    )?;
    let insecure = m.parse(
        m.pick(
            "insecure",
            env::INSECURE,
            &args.insecure,
            file.insecure.clone(),
        ),
        PathPatterns::default,
        patterns,
    )?;
    let allow_internal = m.parse(
        m.pick(
            "allow_internal",
            env::ALLOW_INTERNAL,
            &args.allow_internal,
            file.allow_internal.clone(),
        ),
        PathPatterns::default,
        patterns,
    )?;
    let cached_only = m.parse(
        m.pick(
            "cached_only",
            env::CACHED_ONLY,
            &args.cached_only,
            file.cached_only.map(|b| b.to_string()),
        ),
        || false,
        values::boolean,
    )?;
    let max_size = m.parse(
        m.pick(
            "max_size",
            env::MAX_SIZE,
            &args.max_size,
            file.max_size.as_ref().map(|v| v.as_text()),
        ),
        || None,
        |s| values::size(s).map(Some),
    )?;
    let path_prefix = m.parse(
        m.pick(
            "path_prefix",
            env::PATH_PREFIX,
            &args.path_prefix,
            file.path_prefix.clone(),
        ),
        String::new,
        parse_path_prefix,
    )?;
    let log_format = m.parse(
        m.pick(
            "log_format",
            env::LOG_FORMAT,
            &args.log_format,
            file.log_format.clone(),
        ),
        || LogFormat::Text,
        str::parse,
    )?;

    let d = |key: &str, value: &Option<String>, default| {
        let raw = value.clone().map(|value| Raw {
            value,
            key: m.file_key(key),
        });
        m.parse(raw, || default, values::duration)
    };
    let defaults = CachePolicy::default();
    let cache = CachePolicy {
        fresh_for: d("cache.fresh_for", &file.cache.fresh_for, defaults.fresh_for)?,
        max_stale: d("cache.max_stale", &file.cache.max_stale, defaults.max_stale)?,
        negative_ttl: d(
            "cache.negative_ttl",
            &file.cache.negative_ttl,
            defaults.negative_ttl,
        )?,
    };
    // Upstream bounds: flags and variables over the file's [upstream] table.
    let table = file.upstream_table();
    let up = |id: &str,
              var: &str,
              cli: &Option<String>,
              field: fn(&file::UpstreamTable) -> Option<String>| {
        if cli.is_some() {
            return m.pick(id, var, cli, None);
        }
        table.and_then(field).map(|value| Raw {
            value,
            key: m.file_key(&format!("upstream.{id}")),
        })
    };
    let dur = |raw: Option<Raw>, default| m.parse(raw, || default, values::positive_duration);
    let count = |raw: Option<Raw>, default| m.parse(raw, || default, values::count);
    let defaults = UpstreamPolicy::default();
    let upstream_policy = UpstreamPolicy {
        connect: dur(
            up(
                "connect_timeout",
                env::CONNECT_TIMEOUT,
                &args.connect_timeout,
                |t| t.connect_timeout.clone(),
            ),
            defaults.connect,
        )?,
        headers: dur(
            up(
                "headers_timeout",
                env::HEADERS_TIMEOUT,
                &args.headers_timeout,
                |t| t.headers_timeout.clone(),
            ),
            defaults.headers,
        )?,
        stall: dur(
            up(
                "stall_timeout",
                env::STALL_TIMEOUT,
                &args.stall_timeout,
                |t| t.stall_timeout.clone(),
            ),
            defaults.stall,
        )?,
        deadline: dur(
            up(
                "fetch_deadline",
                env::FETCH_DEADLINE,
                &args.fetch_deadline,
                |t| t.fetch_deadline.clone(),
            ),
            defaults.deadline,
        )?,
        retries: count(
            up("retries", env::RETRIES, &args.retries, |t| {
                t.retries.as_ref().map(file::Scalar::as_text)
            }),
            defaults.retries,
        )?,
        retry_base: dur(
            up("retry_base", env::RETRY_BASE, &args.retry_base, |t| {
                t.retry_base.clone()
            }),
            defaults.retry_base,
        )?,
        breaker_threshold: count(
            up(
                "breaker_threshold",
                env::BREAKER_THRESHOLD,
                &args.breaker_threshold,
                |t| t.breaker_threshold.as_ref().map(file::Scalar::as_text),
            ),
            defaults.breaker_threshold,
        )?,
        breaker_cooldown: dur(
            up(
                "breaker_cooldown",
                env::BREAKER_COOLDOWN,
                &args.breaker_cooldown,
                |t| t.breaker_cooldown.clone(),
            ),
            defaults.breaker_cooldown,
        )?,
        hedge_after: m.parse(
            up("hedge_after", env::HEDGE_AFTER, &args.hedge_after, |t| {
                t.hedge_after.clone()
            }),
            || None,
            |s| values::positive_duration(s).map(Some),
        )?,
    };
    let prefetch = m.parse(
        m.pick(
            "prefetch",
            env::PREFETCH,
            &args.prefetch,
            file.prefetch.clone(),
        ),
        PrefetchMode::default,
        str::parse,
    )?;
    let shutdown_grace = dur(
        m.pick(
            "shutdown_grace",
            env::SHUTDOWN_GRACE,
            &args.shutdown_grace,
            file.shutdown_grace.clone(),
        ),
        DEFAULT_SHUTDOWN_GRACE,
    )?;
    let header_timeout = dur(
        m.pick(
            "header_timeout",
            env::HEADER_TIMEOUT,
            &args.header_timeout,
            file.header_timeout.clone(),
        ),
        DEFAULT_HEADER_TIMEOUT,
    )?;
    let max_connections = m.parse(
        m.pick(
            "max_connections",
            env::MAX_CONNECTIONS,
            &args.max_connections,
            file.max_connections.as_ref().map(file::Scalar::as_text),
        ),
        || None,
        |s| match values::count(s)? {
            0 => Err(format!("{s:?} must be more than zero")),
            n => Ok(Some(n)),
        },
    )?;
    let git_timeout = dur(
        m.pick(
            "git_timeout",
            env::GIT_TIMEOUT,
            &args.git_timeout,
            file.git_timeout.clone(),
        ),
        DEFAULT_GIT_TIMEOUT,
    )?;

    let tls_cert = m.pick(
        "tls_cert",
        env::TLS_CERT,
        &args.tls_cert,
        file.tls_cert.clone(),
    );
    let tls_key = m.pick("tls_key", env::TLS_KEY, &args.tls_key, file.tls_key.clone());
    let tls = match (tls_cert, tls_key) {
        (None, None) => None,
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: PathBuf::from(cert.value),
            key: PathBuf::from(key.value),
        }),
        (Some(cert), None) => bail!(
            "{} is set but no private key: set --tls-key (or {}) too",
            cert.key,
            env::TLS_KEY
        ),
        (None, Some(key)) => bail!(
            "{} is set but no certificate: set --tls-cert (or {}) too",
            key.key,
            env::TLS_CERT
        ),
    };

    let auth_file = m
        .pick(
            "auth_file",
            env::AUTH_FILE,
            &args.auth_file,
            file.auth_file.clone(),
        )
        .map(|raw| PathBuf::from(raw.value));

    Ok(Resolved {
        service: Settings {
            listen,
            data_dir,
            upstream,
            private_upstream,
            sumdb,
            private,
            nosumdb,
            cached_only,
            path_prefix,
            cache,
            upstream_policy,
            shutdown_grace,
            header_timeout,
            max_connections,
            prefetch,
            tls,
            auth_file,
            max_size,
            insecure,
            allow_internal,
            git_timeout,
            store,
            lock,
        },
        log_format,
        data_key,
        listen_key,
    })
}

fn proxy_list(s: &str) -> ProxyList {
    ProxyList::parse(s).expect("default upstream list parses")
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
    let base = match std::env::var_os(env::XDG_CACHE_HOME) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => {
            let home = PathBuf::from(std::env::var_os(env::HOME)?);
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
    key: &str,
    listen_key: &str,
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
                "invalid {key}: {url} is this proxy itself ({listen_key} is {listen}); requests would loop. Use the upstream's own address"
            );
        }
    }
    Ok(())
}

/// Whether `url` addresses the socket `listen` on this machine.
fn points_at(url: &str, listen: SocketAddr) -> bool {
    let Some((scheme, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or(rest);
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') => (h, p.parse().ok()),
        _ => (authority, None),
    };
    let port = port.unwrap_or(if scheme == "https" { 443 } else { 80 });
    if port != listen.port() {
        return false;
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
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
