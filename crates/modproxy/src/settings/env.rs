//! Every environment variable modproxy reads, in one place. Each `serve`
//! option has one; the README's configuration reference lists them.

/// `--listen`: address to listen on.
pub const LISTEN: &str = "MODPROXY_LISTEN";
/// `--data`: directory of the disk store.
pub const DATA: &str = "MODPROXY_DATA";
/// `--upstream`: upstream list, GOPROXY syntax.
pub const UPSTREAM: &str = "MODPROXY_UPSTREAM";
/// `--private-upstream`: upstream list for private paths.
pub const PRIVATE_UPSTREAM: &str = "MODPROXY_PRIVATE_UPSTREAM";
/// `--sumdb`: checksum database, GOSUMDB syntax.
pub const SUMDB: &str = "MODPROXY_SUMDB";
/// `--private`: private path patterns, GOPRIVATE syntax.
pub const PRIVATE: &str = "MODPROXY_PRIVATE";
/// `--nosumdb`: paths exempt from checksum verification, GONOSUMDB syntax.
pub const NOSUMDB: &str = "MODPROXY_NOSUMDB";
/// `--store`: `disk` or `s3://BUCKET[/PREFIX]`.
pub const STORE: &str = "MODPROXY_STORE";
/// `--lock`: `redis://HOST:PORT` for cross-replica fetch locks.
pub const LOCK: &str = "MODPROXY_LOCK";
/// `--insecure`: paths whose repositories may be reached over plain HTTP, GOINSECURE syntax.
pub const INSECURE: &str = "MODPROXY_INSECURE";
/// `--allow-internal`: hosts public module paths may reach at internal addresses.
pub const ALLOW_INTERNAL: &str = "MODPROXY_ALLOW_INTERNAL";
/// `--git-timeout`: time limit of every git command.
pub const GIT_TIMEOUT: &str = "MODPROXY_GIT_TIMEOUT";
/// `--cached-only`: serve only what is stored.
pub const CACHED_ONLY: &str = "MODPROXY_CACHED_ONLY";
/// `--max-size`: size budget of the store.
pub const MAX_SIZE: &str = "MODPROXY_MAX_SIZE";
/// `--path-prefix`: path the protocol is served under.
pub const PATH_PREFIX: &str = "MODPROXY_PATH_PREFIX";
pub const TLS_CERT: &str = "MODPROXY_TLS_CERT";
pub const TLS_KEY: &str = "MODPROXY_TLS_KEY";
pub const AUTH_FILE: &str = "MODPROXY_AUTH_FILE";
/// `--config`: TOML configuration file.
pub const CONFIG: &str = "MODPROXY_CONFIG";
/// `--log-format`: `text` or `json`.
pub const LOG_FORMAT: &str = "MODPROXY_LOG_FORMAT";
/// `--connect-timeout`: upstream connect timeout.
pub const CONNECT_TIMEOUT: &str = "MODPROXY_CONNECT_TIMEOUT";
/// `--headers-timeout`: upstream time to response headers.
pub const HEADERS_TIMEOUT: &str = "MODPROXY_HEADERS_TIMEOUT";
/// `--stall-timeout`: longest wait for more upstream body bytes.
pub const STALL_TIMEOUT: &str = "MODPROXY_STALL_TIMEOUT";
/// `--fetch-deadline`: overall deadline of one upstream fetch.
pub const FETCH_DEADLINE: &str = "MODPROXY_FETCH_DEADLINE";
/// `--retries`: retries of a failed upstream request.
pub const RETRIES: &str = "MODPROXY_RETRIES";
/// `--retry-base`: first retry backoff.
pub const RETRY_BASE: &str = "MODPROXY_RETRY_BASE";
/// `--breaker-threshold`: failures that open a circuit breaker.
pub const BREAKER_THRESHOLD: &str = "MODPROXY_BREAKER_THRESHOLD";
/// `--breaker-cooldown`: how long an open breaker skips its upstream.
pub const BREAKER_COOLDOWN: &str = "MODPROXY_BREAKER_COOLDOWN";
/// `--hedge-after`: race the next `|` upstream after this long.
pub const HEDGE_AFTER: &str = "MODPROXY_HEDGE_AFTER";
/// `--prefetch`: `off`, `mod` or `zip`.
pub const PREFETCH: &str = "MODPROXY_PREFETCH";
/// `--shutdown-grace`: time in-flight requests get at shutdown.
pub const SHUTDOWN_GRACE: &str = "MODPROXY_SHUTDOWN_GRACE";
/// `--header-timeout`: longest wait for a client's request headers.
pub const HEADER_TIMEOUT: &str = "MODPROXY_HEADER_TIMEOUT";
/// `--max-connections`: client connections open at once.
pub const MAX_CONNECTIONS: &str = "MODPROXY_MAX_CONNECTIONS";
/// Log level filter (tracing's EnvFilter syntax, e.g. `debug` or
/// `modproxy_service=debug`); `info` when unset.
pub const LOG: &str = "MODPROXY_LOG";
/// Base of the default data directory, per the XDG convention.
pub const XDG_CACHE_HOME: &str = "XDG_CACHE_HOME";
/// The user's home, for the default data directory.
pub const HOME: &str = "HOME";
