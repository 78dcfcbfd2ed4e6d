//! The one validated configuration the service runs with.
//!
//! The binary builds it from flags, `MODPROXY_*` variables and the TOML file,
//! where every setting and its default is declared once; nothing in the
//! service reads the environment itself or has defaults of its own.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use modproxy_module::goproxy::ProxyList;
use modproxy_module::pattern::PathPatterns;
use modproxy_module::sumdb_setting::SumDbSetting;

/// Everything `modproxy serve` needs, already checked.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address the HTTP server listens on.
    pub listen: SocketAddr,
    /// Root of the disk store (a GOPROXY tree).
    pub data_dir: PathBuf,
    /// Public upstreams, GOPROXY syntax.
    pub upstream: ProxyList,
    /// Where paths matching `private` go instead (GOPROXY syntax).
    pub private_upstream: ProxyList,
    /// Checksum database (GOSUMDB syntax).
    pub sumdb: SumDbSetting,
    /// Module path patterns never sent to public upstreams or the checksum DB.
    pub private: PathPatterns,
    /// Module path patterns exempt from checksum verification.
    pub nosumdb: PathPatterns,
    /// Serve only what is stored; never contact an upstream.
    pub cached_only: bool,
    /// Prefix under which the protocol is served (`""` or `/go`).
    pub path_prefix: String,
    /// Freshness and staleness of cached entries.
    pub cache: CachePolicy,
    /// Bounds, retries, circuit breaker and hedging for upstream requests.
    pub upstream_policy: UpstreamPolicy,
    /// How long in-flight requests may run after SIGTERM/SIGINT.
    pub shutdown_grace: Duration,
    /// Longest a client may take to send a request's headers, and to start
    /// its next request on a kept-alive HTTP/1 connection.
    pub header_timeout: Duration,
    /// Client connections open at once; past it new ones wait to be
    /// accepted. `None`: half the file descriptor limit.
    pub max_connections: Option<u32>,
    /// A client whose connection takes nothing written to it for this
    /// long is dropped.
    pub send_timeout: Duration,
    /// Bytes of stored files' pieces on their way to clients, all
    /// answers together (see `server::body::Pieces`).
    pub body_buffers: u64,
    /// What to fetch ahead of the go command when a go.mod passes.
    pub prefetch: PrefetchMode,
    /// Serve HTTPS with these files (`None`: plain HTTP).
    pub tls: Option<TlsFiles>,
    /// Clients allowed in (`None`: everyone), see `server::auth`.
    pub auth_file: Option<PathBuf>,
    /// Store size budget in bytes: least recently used module versions
    /// are evicted past it.
    pub max_size: Option<u64>,
    /// Module path patterns whose repositories `direct` may reach over
    /// plain HTTP (GOINSECURE syntax).
    pub insecure: PathPatterns,
    /// Hosts (GOPRIVATE-style globs) that URLs named by public module
    /// paths may reach at internal addresses (see `upstream::address`).
    pub allow_internal: PathPatterns,
    /// Every git command `direct` runs is killed after this long.
    pub git_timeout: Duration,
    /// Where published objects live.
    pub store: StoreLocation,
    /// Cross-replica fetch locks (`redis://HOST:PORT` or `rediss://`), if any.
    pub lock: Option<String>,
}

/// Where published objects live (`--store`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// The directory given by `--data`.
    Disk,
    /// An S3-compatible bucket, under `prefix` ("" for the whole bucket).
    S3 { bucket: String, prefix: String },
}

impl std::str::FromStr for StoreLocation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() || s == "disk" {
            return Ok(StoreLocation::Disk);
        }
        let Some(rest) = s.strip_prefix("s3://") else {
            return Err(format!(
                "{s:?} is not a store: use \"disk\" (the --data directory) or s3://BUCKET[/PREFIX]"
            ));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("{s:?} names no bucket: use s3://BUCKET[/PREFIX]"));
        }
        Ok(StoreLocation::S3 {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
        })
    }
}

/// A PEM certificate chain and its private key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Predictive prefetch (`--prefetch`): when a `.mod` is served, fetch its
/// requirements' files before the go command asks for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefetchMode {
    Off,
    /// `.info` and `.mod` of the requirements, recursively, and the zip of
    /// a version in that graph whose `.info` a client asks for.
    Mod,
    /// Also every requirement's `.zip`.
    Zip,
}

impl std::str::FromStr for PrefetchMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "off" => Ok(PrefetchMode::Off),
            "mod" => Ok(PrefetchMode::Mod),
            "zip" => Ok(PrefetchMode::Zip),
            other => Err(format!(
                "{other:?} is not a prefetch mode (use off, mod or zip)"
            )),
        }
    }
}

/// How long mutable and negative entries are trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachePolicy {
    /// `list`, `@latest` and non-canonical queries are served without a
    /// refresh while younger than this.
    pub fresh_for: Duration,
    /// Older than `fresh_for` but younger than this: served while a refresh
    /// runs, or as STALE when every upstream fails.
    pub max_stale: Duration,
    /// How long a "not found" answer is remembered.
    pub negative_ttl: Duration,
}

/// How upstream requests are bounded and retried, so a fetch never hangs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamPolicy {
    /// TCP (and TLS) connect.
    pub connect: Duration,
    /// From sending the request to the response headers.
    pub headers: Duration,
    /// Longest wait for the next body bytes.
    pub stall: Duration,
    /// Whole fetch, headers and body, retries included.
    pub deadline: Duration,
    /// Extra attempts after a connection error, 429 or 5xx, or a broken or
    /// stalled body (resumed where it stopped). Never after 404/410.
    pub retries: u32,
    /// First backoff; doubled per attempt, with jitter.
    pub retry_base: Duration,
    /// Consecutive failed fetches that open an upstream's circuit breaker.
    /// A timeout opens it at once: that is the failure worth not repeating.
    pub breaker_threshold: u32,
    /// How long an open breaker skips its upstream before one probe.
    pub breaker_cooldown: Duration,
    /// With `|`: start the next upstream when this one has not answered
    /// with headers after this long, and take the first answer.
    pub hedge_after: Option<Duration>,
}

#[cfg(test)]
impl UpstreamPolicy {
    /// Short bounds for unit tests (the real defaults are declared with
    /// the settings, in the binary).
    pub fn for_tests() -> UpstreamPolicy {
        let second = Duration::from_secs(1);
        UpstreamPolicy {
            connect: second,
            headers: second,
            stall: second,
            deadline: second,
            retries: 0,
            retry_base: second,
            breaker_threshold: 1,
            breaker_cooldown: second,
            hedge_after: None,
        }
    }
}

/// Largest configuration or tokens file read.
pub const MAX_SETTINGS_FILE: u64 = 1 << 20;

/// Reads a text file named in the settings (configuration, tokens),
/// refusing one over [`MAX_SETTINGS_FILE`] after reading no more than that
/// (a wrong path like `/dev/zero` must not fill the memory). The error is
/// the reason alone; the caller names the file and its setting.
pub fn read_settings_file(path: &std::path::Path) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut data = Vec::new();
    file.take(MAX_SETTINGS_FILE + 1)
        .read_to_end(&mut data)
        .map_err(|e| e.to_string())?;
    if data.len() as u64 > MAX_SETTINGS_FILE {
        return Err(
            "it is larger than 1 MiB, too large for a settings file: is the path right?".into(),
        );
    }
    String::from_utf8(data).map_err(|_| "it is not UTF-8 text".into())
}

impl Settings {
    /// The base URL a `go` command should use, for the start-up banner.
    pub fn goproxy_url(&self, bound: SocketAddr) -> String {
        let host = if bound.ip().is_unspecified() {
            match bound {
                SocketAddr::V4(_) => "127.0.0.1".to_string(),
                SocketAddr::V6(_) => "[::1]".to_string(),
            }
        } else {
            match bound {
                SocketAddr::V4(a) => a.ip().to_string(),
                SocketAddr::V6(a) => format!("[{}]", a.ip()),
            }
        };
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{host}:{}{}", bound.port(), self.path_prefix)
    }
}
