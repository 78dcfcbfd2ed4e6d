//! The command line, first stage: raw values as the user typed them (flags
//! or `MODPROXY_*` variables), plus where each came from. Validation and
//! merging with the configuration file happen in [`crate::settings`].

use std::collections::HashSet;

use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::settings::env;

#[derive(Debug, Parser)]
#[command(
    name = "modproxy",
    version,
    about = "A caching Go module proxy: point GOPROXY at it and go mod tidy stops hanging."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy (default address 127.0.0.1:3000).
    Serve(ServeArgs),
    /// Re-check the store against the checksum database; exit 1 if anything is bad.
    Verify(VerifyArgs),
    /// Fetch everything a build needs into the store; exit 1 if anything failed.
    Warm(WarmArgs),
    /// Evict module versions (least recently used first) down to --max-size and/or --older-than
    Gc(GcArgs),
    /// Print the store's size, objects, oldest module version and the running proxy's hit ratio
    Stats(StatsArgs),
    /// Check the network path to every proxy and checksum database, and the
    /// go command's settings; exit 0 healthy, 1 degraded, 2 broken.
    Doctor(DoctorArgs),
}

/// Options of `gc`: the store options of `serve` (its `--max-size` is the
/// budget), an age limit, and a dry run.
#[derive(Debug, Args)]
pub struct GcArgs {
    /// Evict module versions not used for this long, e.g. 90d
    #[arg(long, value_parser = crate::settings::values::positive_duration, value_name = "DURATION")]
    pub older_than: Option<std::time::Duration>,
    /// Only print what would be evicted
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub store: ServeArgs,
}

/// Options of `stats`: the store options of `serve`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    pub store: ServeArgs,
}

/// Options of `doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// modproxy's upstreams to check too, GOPROXY syntax (GOPROXY is always checked)
    #[arg(long, env = env::UPSTREAM, value_name = "LIST")]
    pub upstream: Option<String>,
    /// Longest wait for each step of a check (DNS, connect, TLS, first byte, download)
    #[arg(long, default_value = "5s", value_parser = crate::settings::values::positive_duration, value_name = "DURATION")]
    pub timeout: std::time::Duration,
    /// Module whose version list is downloaded from each proxy
    #[arg(long, default_value = "golang.org/x/text", value_parser = escaped_module_path, value_name = "PATH")]
    pub module: String,
    /// Print the diagnosis as JSON
    #[arg(long)]
    pub json: bool,
    /// Remove the broken entries of the module cache (only those)
    #[arg(long)]
    pub repair: bool,
    /// Check only the module cache, not the network
    #[arg(long)]
    pub no_network: bool,
    /// Longest time spent checking the module cache
    #[arg(long, default_value = "60s", value_parser = crate::settings::values::positive_duration, value_name = "DURATION")]
    pub cache_timeout: std::time::Duration,
}

/// Options of `warm`: what to warm, how, and the store options of `serve`.
#[derive(Debug, Args)]
pub struct WarmArgs {
    /// go.mod, go.sum, go.work or list files (module@version per line),
    /// directories holding them, or module@version (@latest, @branch…)
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<String>,
    /// Warm through a running modproxy (its GOPROXY URL) instead of the local store
    #[arg(long, value_parser = http_url, value_name = "URL")]
    pub proxy: Option<String>,
    /// Downloads at once
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub concurrency: usize,
    /// No progress bar, only the summary
    #[arg(long, short)]
    pub quiet: bool,
    /// Print the summary as one JSON object
    #[arg(long)]
    pub json: bool,
    /// Platforms of the toolchain a go.mod's `toolchain`/`go` line makes the
    /// go command download (`linux/amd64,darwin/arm64`; `none`) [default: this machine's]
    #[arg(long, value_delimiter = ',', value_parser = platform, value_name = "GOOS/GOARCH")]
    pub toolchain_platforms: Vec<String>,
    /// Version of the go command the builds use (`1.22.4`): a go line newer
    /// than it adds the toolchain that go command switches to [default: the go on PATH]
    #[arg(long, value_name = "VERSION")]
    pub go_version: Option<String>,
    #[command(flatten)]
    pub store: ServeArgs,
}

impl WarmArgs {
    /// `--toolchain-platforms`, with its default.
    pub fn platforms(&self) -> Vec<String> {
        match self.toolchain_platforms.as_slice() {
            [] => vec![this_platform()],
            [none] if none == "none" => Vec::new(),
            list => list.to_vec(),
        }
    }
}

/// `GOOS/GOARCH` of this machine, in Go's names.
fn this_platform() -> String {
    let goos = match std::env::consts::OS {
        "macos" => "darwin",
        os => os,
    };
    let goarch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "loongarch64" => "loong64",
        arch => arch,
    };
    format!("{goos}/{goarch}")
}

/// A `GOOS/GOARCH` pair (lower-case letters and digits), or `none`.
fn platform(s: &str) -> Result<String, String> {
    let word = |w: &str| {
        !w.is_empty()
            && w.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    match s.split_once('/') {
        Some((os, arch)) if word(os) && word(arch) => Ok(s.to_string()),
        _ if s == "none" => Ok(s.to_string()),
        _ => Err(format!(
            "{s:?} is not GOOS/GOARCH (like linux/amd64) or none"
        )),
    }
}

/// Options of `verify`: the store options of `serve`, and `--repair`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub store: ServeArgs,
    /// Remove what fails, so the next request fetches it again
    #[arg(long)]
    pub repair: bool,
}

/// Options of `serve`. Each is also a `MODPROXY_*` variable and a key of the
/// configuration file; flags win over variables, variables over the file.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:3000]
    #[arg(long, env = env::LISTEN, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Directory of the store [default: the user's cache directory + /modproxy]
    #[arg(long, env = env::DATA, value_name = "DIR")]
    pub data: Option<String>,
    /// Upstreams in GOPROXY syntax [default: https://proxy.golang.org,direct]
    #[arg(long, env = env::UPSTREAM, value_name = "LIST")]
    pub upstream: Option<String>,
    /// Upstreams for private module paths, GOPROXY syntax [default: direct]
    #[arg(long, env = env::PRIVATE_UPSTREAM, value_name = "LIST")]
    pub private_upstream: Option<String>,
    /// Checksum database in GOSUMDB syntax, or "off" [default: sum.golang.org]
    #[arg(long, env = env::SUMDB, value_name = "NAME+KEY [URL]")]
    pub sumdb: Option<String>,
    /// Private module path patterns, GOPRIVATE syntax
    #[arg(long, env = env::PRIVATE, value_name = "PATTERNS")]
    pub private: Option<String>,
    /// Module path patterns exempt from checksum verification, GONOSUMDB syntax
    #[arg(long, env = env::NOSUMDB, value_name = "PATTERNS")]
    pub nosumdb: Option<String>,
    /// Where published files live: disk (the --data directory) or s3://BUCKET[/PREFIX] [default: disk]
    #[arg(long, env = env::STORE, value_name = "STORE")]
    pub store: Option<String>,
    /// Cross-replica fetch locks: redis://HOST:PORT or rediss://HOST:PORT (TLS) [default: none]
    #[arg(long, env = env::LOCK, value_name = "URL")]
    pub lock: Option<String>,
    /// Module path patterns whose repositories `direct` may reach over plain HTTP, GOINSECURE syntax
    #[arg(long, env = env::INSECURE, value_name = "PATTERNS")]
    pub insecure: Option<String>,
    /// Host patterns (GOPRIVATE syntax) that public module paths may reach at internal addresses (loopback, private networks) [default: none]
    #[arg(long, env = env::ALLOW_INTERNAL, value_name = "HOSTS")]
    pub allow_internal: Option<String>,
    /// Every git command of `direct` is killed after this long [default: 10m]
    #[arg(long, env = env::GIT_TIMEOUT, value_name = "DURATION")]
    pub git_timeout: Option<String>,
    /// Serve only what is stored; never contact an upstream
    #[arg(long, env = env::CACHED_ONLY, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub cached_only: Option<String>,
    /// Size budget of the store, e.g. 20GiB
    #[arg(long, env = env::MAX_SIZE, value_name = "SIZE")]
    pub max_size: Option<String>,
    /// Serve the protocol under this path, e.g. /go
    #[arg(long, env = env::PATH_PREFIX, value_name = "P")]
    pub path_prefix: Option<String>,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key)
    #[arg(long, env = env::TLS_CERT, value_name = "FILE")]
    pub tls_cert: Option<String>,
    /// The PEM private key of --tls-cert
    #[arg(long, env = env::TLS_KEY, value_name = "FILE")]
    pub tls_key: Option<String>,
    /// Clients allowed in: lines `name secret [module patterns]` [default: everyone]
    #[arg(long, env = env::AUTH_FILE, value_name = "FILE")]
    pub auth_file: Option<String>,
    /// TOML configuration file
    #[arg(long, env = env::CONFIG, value_name = "FILE")]
    pub config: Option<String>,
    /// Log format: text or json [default: text]
    #[arg(long, env = env::LOG_FORMAT, value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Upstream TCP/TLS connect timeout [default: 3s]
    #[arg(long, env = env::CONNECT_TIMEOUT, value_name = "DURATION")]
    pub connect_timeout: Option<String>,
    /// Upstream time to response headers [default: 10s]
    #[arg(long, env = env::HEADERS_TIMEOUT, value_name = "DURATION")]
    pub headers_timeout: Option<String>,
    /// Longest wait for more upstream body bytes [default: 30s]
    #[arg(long, env = env::STALL_TIMEOUT, value_name = "DURATION")]
    pub stall_timeout: Option<String>,
    /// Overall deadline of one upstream fetch [default: 5m]
    #[arg(long, env = env::FETCH_DEADLINE, value_name = "DURATION")]
    pub fetch_deadline: Option<String>,
    /// Retries after connection errors, 429, 5xx or a broken body [default: 2]
    #[arg(long, env = env::RETRIES, value_name = "N")]
    pub retries: Option<String>,
    /// First retry backoff, doubled per attempt, jittered [default: 100ms]
    #[arg(long, env = env::RETRY_BASE, value_name = "DURATION")]
    pub retry_base: Option<String>,
    /// Consecutive failed fetches that open an upstream's circuit breaker [default: 3]
    #[arg(long, env = env::BREAKER_THRESHOLD, value_name = "N")]
    pub breaker_threshold: Option<String>,
    /// How long an open circuit breaker skips its upstream [default: 30s]
    #[arg(long, env = env::BREAKER_COOLDOWN, value_name = "DURATION")]
    pub breaker_cooldown: Option<String>,
    /// With `|` lists: race the next upstream after this long without headers [default: off]
    #[arg(long, env = env::HEDGE_AFTER, value_name = "DURATION")]
    pub hedge_after: Option<String>,
    /// Fetch ahead of the go command: off, mod (.info/.mod of requirements) or zip (also zips) [default: mod]
    #[arg(long, env = env::PREFETCH, value_name = "MODE")]
    pub prefetch: Option<String>,
    /// Time in-flight requests get to finish on SIGTERM/SIGINT [default: 30s]
    #[arg(long, env = env::SHUTDOWN_GRACE, value_name = "DURATION")]
    pub shutdown_grace: Option<String>,
    /// Longest a client may take to send its request headers, or to start its next request on a kept-alive connection [default: 30s]
    #[arg(long, env = env::HEADER_TIMEOUT, value_name = "DURATION")]
    pub header_timeout: Option<String>,
    /// Client connections open at once; more wait to be accepted [default: half the open-files limit]
    #[arg(long, env = env::MAX_CONNECTIONS, value_name = "N")]
    pub max_connections: Option<String>,
}

/// A module path, checked and in its escaped (URL) form.
fn escaped_module_path(s: &str) -> Result<String, String> {
    modproxy_module::ModulePath::new(s)
        .map(|p| p.escaped())
        .map_err(|e| e.to_string())
}

/// An http:// or https:// URL.
fn http_url(s: &str) -> Result<String, String> {
    if s.starts_with("http://") || s.starts_with("https://") {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{s:?} is not an http:// or https:// URL (e.g. http://127.0.0.1:3000)"
        ))
    }
}

/// Which options came from `MODPROXY_*` variables rather than flags, so that
/// an error names what the user actually set.
#[derive(Debug, Default)]
pub struct Sources {
    from_env: HashSet<String>,
}

impl Sources {
    /// `--flag` or `MODPROXY_VAR`, whichever supplied the option `id`.
    pub fn label(&self, id: &str, var: &str) -> String {
        if self.from_env.contains(id) {
            var.to_string()
        } else {
            format!("--{}", id.replace('_', "-"))
        }
    }
}

/// A parsed command line.
pub struct Invocation {
    pub command: Command,
    pub sources: Sources,
}

impl Invocation {
    /// Parses the process arguments; exits with clap's message on misuse.
    pub fn parse() -> Invocation {
        let matches = Cli::command().get_matches();
        let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        let mut sources = Sources::default();
        if let Some((_, sub)) = matches.subcommand() {
            for id in sub.ids() {
                if sub.value_source(id.as_str()) == Some(ValueSource::EnvVariable) {
                    sources.from_env.insert(id.as_str().to_string());
                }
            }
        }
        Invocation {
            command: cli.command,
            sources,
        }
    }
}
