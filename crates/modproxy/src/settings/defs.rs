//! Every setting, declared once: its name (which gives the flag, the
//! `MODPROXY_*` variable and the configuration file key), its default, its
//! help, and the subcommands that use it. The command line
//! ([`crate::cli`]), the file reader ([`super::layers`]), the help texts and
//! the README's table (checked by a test below) all come from here.
//!
//! To add a setting: declare it here, list it in [`ALL`], read it in
//! [`super::resolve`], and add its README row.

/// A subcommand, for [`Def::used_by`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sub {
    Serve,
    Warm,
    Verify,
    Gc,
    Stats,
    Doctor,
}

impl Sub {
    pub const ALL: [Sub; 6] = [
        Sub::Serve,
        Sub::Warm,
        Sub::Verify,
        Sub::Gc,
        Sub::Stats,
        Sub::Doctor,
    ];

    /// The subcommand's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Sub::Serve => "serve",
            Sub::Warm => "warm",
            Sub::Verify => "verify",
            Sub::Gc => "gc",
            Sub::Stats => "stats",
            Sub::Doctor => "doctor",
        }
    }
}

/// A setting's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Default {
    /// This text, parsed like a value the user gave.
    Value(&'static str),
    /// Worked out at start-up (described for the help).
    Computed(&'static str),
    /// Unset (the feature is off or unrestricted).
    None,
}

/// Where a setting can be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `--flag VALUE`, `MODPROXY_*` and the file key.
    Value,
    /// `--flag` alone means true; also `--flag=false`.
    Switch,
    /// Only in the configuration file.
    FileOnly,
    /// Only as a flag or variable (the configuration file itself).
    NotInFile,
}

/// One setting.
#[derive(Debug)]
pub struct Def {
    /// `listen` gives `--listen`, `MODPROXY_LISTEN` and the file key
    /// `listen` (or `TABLE.listen`, see `table`).
    pub name: &'static str,
    /// The file table the key lives in (`upstream` or `cache`), if any.
    pub table: Option<&'static str>,
    pub form: Form,
    /// The placeholder in the help (`ADDR`, `DURATION`).
    pub value_name: &'static str,
    pub default: Default,
    pub help: &'static str,
    /// The subcommands that read it; the others neither offer the flag
    /// nor read the variable or the file key.
    pub used_by: &'static [Sub],
    /// The heading it is listed under in `--help`.
    pub group: &'static str,
}

impl Def {
    /// `--connect-timeout`.
    pub fn flag(&self) -> String {
        self.name.replace('_', "-")
    }

    /// `MODPROXY_CONNECT_TIMEOUT`.
    pub fn var(&self) -> String {
        format!("MODPROXY_{}", self.name.to_ascii_uppercase())
    }

    /// `upstream.connect_timeout`, as a key of the configuration file.
    pub fn file_key(&self) -> Option<String> {
        match (self.form, self.table) {
            (Form::NotInFile, _) => None,
            (_, Some(table)) => Some(format!("{table}.{}", self.name)),
            (_, None) => Some(self.name.to_string()),
        }
    }

    /// Whether it is a command-line flag (and variable) at all.
    pub fn on_command_line(&self) -> bool {
        self.form != Form::FileOnly
    }

    pub fn used_by(&self, sub: Sub) -> bool {
        self.used_by.contains(&sub)
    }

    /// The help line with its default, as `--help` shows it.
    pub fn help_line(&self) -> String {
        match self.default {
            Default::Value(v) => format!("{} [default: {v}]", self.help),
            Default::Computed(what) => format!("{} [default: {what}]", self.help),
            Default::None => self.help.to_string(),
        }
    }
}

const ALL_SUBS: &[Sub] = &Sub::ALL;
/// The store: every subcommand that opens it.
const STORE: &[Sub] = &[Sub::Serve, Sub::Warm, Sub::Verify, Sub::Gc, Sub::Stats];
/// Upstreams and the checksum database: what fetches or verifies.
const UPSTREAMS: &[Sub] = &[Sub::Serve, Sub::Warm, Sub::Verify];
/// Fetching module files: the server, and warm's in-process server.
const FETCH: &[Sub] = &[Sub::Serve, Sub::Warm];
/// Where the server answers (stats asks the running one for its counts).
const ADDRESS: &[Sub] = &[Sub::Serve, Sub::Stats];
const SERVE: &[Sub] = &[Sub::Serve];

const G_STORE: &str = "Store";
const G_UPSTREAM: &str = "Upstreams and checksum database";
const G_BOUNDS: &str = "Upstream bounds";
const G_SERVER: &str = "Server";
const G_CONFIG: &str = "Configuration";

/// A flag, variable and top-level file key.
const fn value(
    name: &'static str,
    value_name: &'static str,
    default: Default,
    help: &'static str,
    used_by: &'static [Sub],
    group: &'static str,
) -> Def {
    Def {
        name,
        table: None,
        form: Form::Value,
        value_name,
        default,
        help,
        used_by,
        group,
    }
}

/// An upstream bound: a flag, variable and key of the `[upstream]` table.
const fn bound(
    name: &'static str,
    value_name: &'static str,
    default: Default,
    help: &'static str,
) -> Def {
    Def {
        table: Some("upstream"),
        ..value(name, value_name, default, help, UPSTREAMS, G_BOUNDS)
    }
}

/// A key of the file's `[cache]` table.
const fn cache(name: &'static str, default: &'static str) -> Def {
    Def {
        table: Some("cache"),
        form: Form::FileOnly,
        ..value(name, "DURATION", Default::Value(default), "", FETCH, "")
    }
}

pub const CONFIG: Def = Def {
    form: Form::NotInFile,
    ..value(
        "config",
        "FILE",
        Default::None,
        "TOML configuration file holding these settings by name (see the README)",
        ALL_SUBS,
        G_CONFIG,
    )
};
pub const LISTEN: Def = value(
    "listen",
    "ADDR",
    Default::Value("127.0.0.1:3000"),
    "Address to listen on",
    ADDRESS,
    G_SERVER,
);
pub const PATH_PREFIX: Def = value(
    "path_prefix",
    "P",
    Default::None,
    "Serve the protocol under this path, e.g. /go",
    ADDRESS,
    G_SERVER,
);
pub const DATA: Def = value(
    "data",
    "DIR",
    Default::Computed("the user's cache directory + /modproxy"),
    "Directory of the store",
    STORE,
    G_STORE,
);
pub const STORE_AT: Def = value(
    "store",
    "STORE",
    Default::Value("disk"),
    "Where published files live: disk (the --data directory) or s3://BUCKET[/PREFIX]",
    STORE,
    G_STORE,
);
pub const MAX_SIZE: Def = value(
    "max_size",
    "SIZE",
    Default::None,
    "Size budget of the store, e.g. 20GiB: least recently used module versions are evicted past it",
    STORE,
    G_STORE,
);
pub const UPSTREAM: Def = value(
    "upstream",
    "LIST",
    Default::Value("https://proxy.golang.org,direct"),
    "Upstreams in GOPROXY syntax",
    &[Sub::Serve, Sub::Warm, Sub::Verify, Sub::Doctor],
    G_UPSTREAM,
);
pub const PRIVATE_UPSTREAM: Def = value(
    "private_upstream",
    "LIST",
    Default::Value("direct"),
    "Upstreams for private module paths, GOPROXY syntax",
    FETCH,
    G_UPSTREAM,
);
pub const SUMDB: Def = value(
    "sumdb",
    "NAME+KEY [URL]",
    Default::Value("sum.golang.org"),
    "Checksum database in GOSUMDB syntax, or \"off\"",
    UPSTREAMS,
    G_UPSTREAM,
);
pub const PRIVATE: Def = value(
    "private",
    "PATTERNS",
    Default::None,
    "Private module path patterns, GOPRIVATE syntax",
    UPSTREAMS,
    G_UPSTREAM,
);
pub const NOSUMDB: Def = value(
    "nosumdb",
    "PATTERNS",
    Default::None,
    "Module path patterns exempt from checksum verification, GONOSUMDB syntax",
    UPSTREAMS,
    G_UPSTREAM,
);
pub const INSECURE: Def = value(
    "insecure",
    "PATTERNS",
    Default::None,
    "Module path patterns whose repositories `direct` may reach over plain HTTP, GOINSECURE syntax",
    FETCH,
    G_UPSTREAM,
);
pub const ALLOW_INTERNAL: Def = value(
    "allow_internal",
    "HOSTS",
    Default::None,
    "Host patterns (GOPRIVATE syntax) that public module paths may reach at internal addresses (loopback, private networks)",
    UPSTREAMS,
    G_UPSTREAM,
);
pub const GIT_TIMEOUT: Def = value(
    "git_timeout",
    "DURATION",
    Default::Value("10m"),
    "Every git command of `direct` is killed after this long",
    FETCH,
    G_UPSTREAM,
);
pub const LOCK: Def = value(
    "lock",
    "URL",
    Default::None,
    "Cross-replica fetch locks: redis://HOST:PORT or rediss://HOST:PORT (TLS)",
    FETCH,
    G_UPSTREAM,
);
pub const CACHED_ONLY: Def = Def {
    form: Form::Switch,
    ..value(
        "cached_only",
        "BOOL",
        Default::Value("false"),
        "Serve only what is stored; never contact an upstream",
        FETCH,
        G_UPSTREAM,
    )
};
pub const CONNECT_TIMEOUT: Def = bound(
    "connect_timeout",
    "DURATION",
    Default::Value("3s"),
    "Upstream TCP/TLS connect timeout",
);
pub const HEADERS_TIMEOUT: Def = bound(
    "headers_timeout",
    "DURATION",
    Default::Value("10s"),
    "Upstream time to response headers",
);
pub const STALL_TIMEOUT: Def = bound(
    "stall_timeout",
    "DURATION",
    Default::Value("30s"),
    "Longest wait for more upstream body bytes",
);
pub const FETCH_DEADLINE: Def = bound(
    "fetch_deadline",
    "DURATION",
    Default::Value("5m"),
    "Overall deadline of one upstream fetch",
);
pub const RETRIES: Def = bound(
    "retries",
    "N",
    Default::Value("2"),
    "Retries after connection errors, 429, 5xx or a broken body",
);
pub const RETRY_BASE: Def = bound(
    "retry_base",
    "DURATION",
    Default::Value("100ms"),
    "First retry backoff, doubled per attempt, jittered",
);
pub const BREAKER_THRESHOLD: Def = bound(
    "breaker_threshold",
    "N",
    Default::Value("3"),
    "Consecutive failed fetches that open an upstream's circuit breaker",
);
pub const BREAKER_COOLDOWN: Def = bound(
    "breaker_cooldown",
    "DURATION",
    Default::Value("30s"),
    "How long an open circuit breaker skips its upstream",
);
pub const HEDGE_AFTER: Def = bound(
    "hedge_after",
    "DURATION",
    Default::None,
    "With `|` lists: race the next upstream after this long without headers",
);
pub const FRESH_FOR: Def = cache("fresh_for", "5m");
pub const MAX_STALE: Def = cache("max_stale", "30d");
pub const NEGATIVE_TTL: Def = cache("negative_ttl", "1m");
pub const TLS_CERT: Def = value(
    "tls_cert",
    "FILE",
    Default::None,
    "Serve HTTPS with this PEM certificate chain (with --tls-key)",
    SERVE,
    G_SERVER,
);
pub const TLS_KEY: Def = value(
    "tls_key",
    "FILE",
    Default::None,
    "The PEM private key of --tls-cert",
    SERVE,
    G_SERVER,
);
pub const AUTH_FILE: Def = value(
    "auth_file",
    "FILE",
    Default::Computed("everyone"),
    "Clients allowed in: lines `name secret [module patterns]`",
    SERVE,
    G_SERVER,
);
pub const LOG_FORMAT: Def = value(
    "log_format",
    "FORMAT",
    Default::Value("text"),
    "Log format: text or json",
    SERVE,
    G_SERVER,
);
pub const PREFETCH: Def = value(
    "prefetch",
    "MODE",
    Default::Value("mod"),
    "Fetch ahead of the go command: off, mod (.info/.mod of requirements) or zip (also zips)",
    SERVE,
    G_SERVER,
);
pub const SHUTDOWN_GRACE: Def = value(
    "shutdown_grace",
    "DURATION",
    Default::Value("30s"),
    "Time in-flight requests get to finish on SIGTERM/SIGINT (warm: its fetches at the end)",
    FETCH,
    G_SERVER,
);
pub const HEADER_TIMEOUT: Def = value(
    "header_timeout",
    "DURATION",
    Default::Value("30s"),
    "Longest a client may take to send its request headers, or to start its next request on a kept-alive connection",
    SERVE,
    G_SERVER,
);
pub const MAX_CONNECTIONS: Def = value(
    "max_connections",
    "N",
    Default::Computed("half the open-files limit"),
    "Client connections open at once; more wait to be accepted",
    SERVE,
    G_SERVER,
);

pub const SEND_TIMEOUT: Def = value(
    "send_timeout",
    "DURATION",
    Default::Value("60s"),
    "A client that takes nothing of its answer for this long is dropped",
    SERVE,
    G_SERVER,
);
pub const BODY_BUFFERS: Def = value(
    "body_buffers",
    "SIZE",
    Default::Value("16MiB"),
    "Memory for stored files on their way to clients over TLS or HTTP/2 or from object storage, all answers together (plain HTTP/1 sends a local file over 64 KiB with sendfile, no copy); past it an answer waits for room before reading its next piece. Files read whole (local ones up to 64 KiB, or 1 MiB with TLS; objects up to 1 MiB) get the 48 MiB in-memory tier plus as much again",
    SERVE,
    G_SERVER,
);

/// Every setting, in the order `--help` lists them.
pub const ALL: &[&Def] = &[
    &CONFIG,
    &LISTEN,
    &PATH_PREFIX,
    &TLS_CERT,
    &TLS_KEY,
    &AUTH_FILE,
    &LOG_FORMAT,
    &PREFETCH,
    &SHUTDOWN_GRACE,
    &HEADER_TIMEOUT,
    &MAX_CONNECTIONS,
    &SEND_TIMEOUT,
    &BODY_BUFFERS,
    &DATA,
    &STORE_AT,
    &MAX_SIZE,
    &UPSTREAM,
    &PRIVATE_UPSTREAM,
    &SUMDB,
    &PRIVATE,
    &NOSUMDB,
    &INSECURE,
    &ALLOW_INTERNAL,
    &GIT_TIMEOUT,
    &LOCK,
    &CACHED_ONLY,
    &CONNECT_TIMEOUT,
    &HEADERS_TIMEOUT,
    &STALL_TIMEOUT,
    &FETCH_DEADLINE,
    &RETRIES,
    &RETRY_BASE,
    &BREAKER_THRESHOLD,
    &BREAKER_COOLDOWN,
    &HEDGE_AFTER,
    &FRESH_FOR,
    &MAX_STALE,
    &NEGATIVE_TTL,
];

/// Variables that are not settings: the log filter (tracing's EnvFilter
/// syntax, e.g. `debug` or `modproxy_service=debug`; `info` when unset).
pub const LOG_FILTER_VAR: &str = "MODPROXY_LOG";
/// Base of the default data directory, per the XDG convention.
pub const XDG_CACHE_HOME: &str = "XDG_CACHE_HOME";
/// The user's home, for the default data directory.
pub const HOME: &str = "HOME";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_listed_once() {
        let mut names: Vec<_> = ALL.iter().filter_map(|d| d.file_key()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ALL.len() - 1, "a file key is declared twice");
        for d in ALL {
            assert!(!d.used_by.is_empty(), "{} is used by nothing", d.name);
            assert!(
                d.on_command_line() != d.help.is_empty(),
                "{}: flags need help, file-only keys are described in the README",
                d.name
            );
        }
    }

    /// The README's configuration reference has one row per setting, with
    /// its flag, variable, file key and default as declared here.
    #[test]
    fn the_readme_table_matches() {
        let readme = include_str!("../../../../README.md");
        for d in ALL.iter().filter(|d| d.on_command_line()) {
            let row = readme
                .lines()
                .find(|l| {
                    l.starts_with(&format!("| `--{} ", d.flag()))
                        || l.starts_with(&format!("| `--{}[", d.flag()))
                })
                .unwrap_or_else(|| panic!("README has no row for --{}", d.flag()));
            assert!(row.contains(&format!("`{}`", d.var())), "{row}");
            if let Some(key) = d.file_key() {
                assert!(row.contains(&format!("`{key}`")), "{row}");
            }
            if let Default::Value(v) = d.default {
                assert!(row.contains(&format!("`{v}`")), "{row}: default {v}");
            }
        }
        // File-only keys: in the example file, with their defaults.
        for d in ALL.iter().filter(|d| !d.on_command_line()) {
            let Default::Value(v) = d.default else {
                panic!("{} needs a default", d.name)
            };
            let line = format!("{} = \"{v}\"", d.name);
            assert!(readme.contains(&line), "README lacks {line}");
        }
    }
}
