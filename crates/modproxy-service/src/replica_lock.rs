//! Cross-replica fetch locks in Redis (`--lock redis://HOST:PORT[/DB]`,
//! or `rediss://` for TLS): replicas sharing one store take a lock before
//! fetching an immutable file, so the upstream sees one fetch; the others
//! wait (bounded) for the file to appear in the store. Every Redis step is
//! bounded by a short timeout, and any Redis trouble means "fetch without
//! coordination", never an error for the client.
//!
//! The lock is `SET modproxy:fetch:KEY TOKEN NX PX TTL`, renewed and
//! released by scripts that touch it only while it still holds this
//! replica's token. Redis is spoken through the `redis` crate, on one
//! multiplexed connection that is opened on first use, tried once more on
//! a new one when Redis closed it, and replaced after a failure or when
//! it sat unused for a while.
//!
//! `rediss://` verifies the server's certificate against the same roots as
//! the HTTPS upstreams: the system's or, when set, instead the PEM file
//! named by `SSL_CERT_FILE` and the directories of `SSL_CERT_DIR` (the
//! variables the go command reads too); that is how a private CA is
//! trusted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, ConnectionAddr, IntoConnectionInfo, Value};

use crate::sync::Locked;

/// Connecting (TCP, TLS, `AUTH`, `SELECT`), and each command's reply.
const STEP: Duration = Duration::from_millis(500);
/// A lock outlives a replica that died holding it by at most this long;
/// its holder renews it every third of that while it fetches.
pub const LOCK_TTL: Duration = Duration::from_secs(15);
/// After Redis failed to answer, it is left alone this long (misses
/// fetch uncoordinated at once instead of waiting on it).
const BACK_OFF: Duration = Duration::from_secs(10);
/// A connection unused this long is replaced rather than trusted: idle
/// connections may have been dropped silently on the way (load balancers
/// and NAT forget them after minutes), which would show only as a timeout.
const IDLE: Duration = Duration::from_secs(30);

const RELEASE: &str =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";
const RENEW: &str =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";

/// Redis, as a lock service.
pub struct FetchLocks {
    client: Client,
    /// `HOST:PORT`, for messages (never the password).
    addr: String,
    /// This replica's tokens: a random prefix and a counter.
    token_prefix: String,
    counter: AtomicU64,
    /// The open connection, if any (cloned for each command), and when
    /// it was last handed out. Held while one is opened, so concurrent
    /// misses share one connection attempt.
    connection: tokio::sync::Mutex<Option<(MultiplexedConnection, Instant)>>,
    /// Until when Redis is left alone after a failure.
    down_until: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for FetchLocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchLocks")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// What taking a lock gave.
#[derive(Debug)]
pub enum Taken {
    /// This replica fetches; release it with the token afterwards.
    Mine(String),
    /// Another replica is fetching.
    Theirs,
    /// Redis did not answer usefully: fetch without coordination.
    Unavailable(String),
}

impl FetchLocks {
    /// `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]`, or `rediss://` for
    /// TLS (percent-encoded; the port defaults to 6379). Nothing is
    /// connected yet.
    pub fn new(url: &str) -> Result<FetchLocks, String> {
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err(format!("{url:?}: not a redis:// or rediss:// URL"));
        }
        // `#insecure` (no certificate checks) is refused: trust the
        // server's CA instead.
        if url.contains('#') {
            return Err(format!(
                "{url:?}: a #fragment is not supported (to trust a private CA, set SSL_CERT_FILE)"
            ));
        }
        let mut info = url
            .into_connection_info()
            .map_err(|e| format!("{url:?}: {e}"))?;
        let addr = match info.addr() {
            ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => {
                if host.contains(':') {
                    format!("[{host}]:{port}")
                } else {
                    format!("{host}:{port}")
                }
            }
            _ => return Err(format!("{url:?}: not a TCP address")),
        };
        // `redis://PASSWORD@HOST`: a user without a password is a password.
        let settings = info.redis_settings();
        if let (Some(user), None) = (settings.username(), settings.password()) {
            let settings = redis::RedisConnectionInfo::default()
                .set_password(user)
                .set_db(settings.db())
                .set_protocol(settings.protocol());
            info = info.set_redis_settings(settings);
        }
        if matches!(info.addr(), ConnectionAddr::TcpTls { .. }) {
            // The redis crate builds its TLS configuration with the
            // process-wide rustls provider: make sure there is one (the
            // one the rest of modproxy uses). Already set is fine.
            let provider = tokio_rustls::rustls::crypto::ring::default_provider();
            let _ = provider.install_default();
        }
        let client = Client::open(info).map_err(|e| format!("{url:?}: {e}"))?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Ok(FetchLocks {
            client,
            addr,
            token_prefix: format!("{}-{nanos:x}", std::process::id()),
            counter: AtomicU64::new(0),
            connection: tokio::sync::Mutex::new(None),
            down_until: Mutex::new(None),
        })
    }

    fn name(key: &str) -> String {
        format!("modproxy:fetch:{key}")
    }

    /// Tries to take the lock for fetching `key`.
    pub async fn take(&self, key: &str) -> Taken {
        let token = format!(
            "{}-{}",
            self.token_prefix,
            self.counter.fetch_add(1, Ordering::Relaxed)
        );
        let mut set = redis::cmd("SET");
        set.arg(Self::name(key))
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(LOCK_TTL.as_millis() as u64);
        match self.command(&set).await {
            Ok(Value::Okay) => Taken::Mine(token),
            Ok(Value::Nil) => Taken::Theirs,
            Ok(other) => Taken::Unavailable(format!("unexpected reply {other:?}")),
            Err(e) => Taken::Unavailable(e),
        }
    }

    /// Whether some replica holds the lock for `key` (`None`: unknown).
    pub async fn held(&self, key: &str) -> Option<bool> {
        let mut exists = redis::cmd("EXISTS");
        exists.arg(Self::name(key));
        match self.command(&exists).await {
            Ok(Value::Int(n)) => Some(n > 0),
            _ => None,
        }
    }

    /// Extends a lock taken with `token` (if it is still ours) by
    /// [`LOCK_TTL`]; false when it is not ours (any more).
    pub async fn renew(&self, key: &str, token: &str) -> bool {
        let mut eval = redis::cmd("EVAL");
        eval.arg(RENEW)
            .arg(1)
            .arg(Self::name(key))
            .arg(token)
            .arg(LOCK_TTL.as_millis() as u64);
        matches!(self.command(&eval).await, Ok(Value::Int(1)))
    }

    /// Gives back a lock taken with `token` (if it is still ours).
    pub async fn release(&self, key: &str, token: &str) {
        let mut eval = redis::cmd("EVAL");
        eval.arg(RELEASE).arg(1).arg(Self::name(key)).arg(token);
        if let Err(e) = self.command(&eval).await {
            tracing::debug!(error = %e, "could not release a fetch lock; it expires by itself");
        }
    }

    /// Runs one command, every step bounded; after a failure, fails at
    /// once for [`BACK_OFF`].
    async fn command(&self, command: &redis::Cmd) -> Result<Value, String> {
        let now = Instant::now();
        self.check_up()?;
        let result = self.command_now(command).await;
        if result.is_err() {
            *self.down_until.locked() = Some(now + BACK_OFF);
        }
        result
    }

    /// Err while Redis is left alone after a failure.
    fn check_up(&self) -> Result<(), String> {
        let down = *self.down_until.locked();
        if down.is_some_and(|until| Instant::now() < until) {
            return Err(format!("redis {}: unreachable a moment ago", self.addr));
        }
        Ok(())
    }

    async fn command_now(&self, command: &redis::Cmd) -> Result<Value, String> {
        let (mut connection, fresh) = self.connection().await?;
        match self.send(&mut connection, command).await {
            Ok(value) => Ok(value),
            // A connection kept from earlier may have been closed since
            // (a Redis restart): one more try on a new one. Not after a
            // timeout: the command may have been carried out (a second
            // SET NX would find this replica's own lock).
            Err(e) if !fresh && e.is_connection_dropped() => {
                self.forget().await;
                tracing::debug!(error = %e, addr = %self.addr, "redis connection lost; reconnecting");
                let (mut connection, _) = self.connection().await?;
                match self.send(&mut connection, command).await {
                    Ok(value) => Ok(value),
                    Err(e) => {
                        self.forget().await;
                        Err(self.describe(e))
                    }
                }
            }
            Err(e) => {
                self.forget().await;
                Err(self.describe(e))
            }
        }
    }

    /// One command on `connection`, its reply bounded by [`STEP`].
    async fn send(
        &self,
        connection: &mut MultiplexedConnection,
        command: &redis::Cmd,
    ) -> Result<Value, redis::RedisError> {
        tokio::time::timeout(STEP, command.query_async::<Value>(connection))
            .await
            .unwrap_or_else(|_| Err(std::io::Error::from(std::io::ErrorKind::TimedOut).into()))
    }

    /// The open connection (unless idle for [`IDLE`]), or a new one
    /// (bounded by [`STEP`]); true when new.
    async fn connection(&self) -> Result<(MultiplexedConnection, bool), String> {
        let wait = tokio::time::timeout(STEP, self.connection.lock());
        let mut slot = wait
            .await
            .map_err(|_| format!("redis {}: no connection within {STEP:?}", self.addr))?;
        let now = Instant::now();
        if let Some((connection, used)) = slot.as_mut() {
            if now.duration_since(*used) < IDLE {
                *used = now;
                return Ok((connection.clone(), false));
            }
        }
        *slot = None;
        // Another command's attempt may just have failed.
        self.check_up()?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(STEP))
            .set_response_timeout(Some(STEP));
        let connecting = self
            .client
            .get_multiplexed_async_connection_with_config(&config);
        let connection = tokio::time::timeout(STEP, connecting)
            .await
            .map_err(|_| format!("redis {}: no connection within {STEP:?}", self.addr))?
            .map_err(|e| self.describe(e))?;
        *slot = Some((connection.clone(), Instant::now()));
        Ok((connection, true))
    }

    /// Drops the open connection (a new one is made on next use).
    async fn forget(&self) {
        if let Ok(mut slot) = tokio::time::timeout(STEP, self.connection.lock()).await {
            *slot = None;
        }
    }

    fn describe(&self, e: redis::RedisError) -> String {
        format!("redis {}: {e}", self.addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(l: &FetchLocks) -> (Option<&str>, Option<&str>, i64) {
        let s = l.client.get_connection_info().redis_settings();
        (s.username(), s.password(), s.db())
    }

    #[test]
    fn urls() {
        let l = FetchLocks::new("redis://:p%40w@127.0.0.1:6390/2").unwrap();
        assert_eq!(l.addr, "127.0.0.1:6390");
        assert_eq!(settings(&l), (None, Some("p@w"), 2));
        let l = FetchLocks::new("redis://ci:pw@cache:1").unwrap();
        assert_eq!(settings(&l), (Some("ci"), Some("pw"), 0));
        let l = FetchLocks::new("redis://secret@cache:1").unwrap();
        assert_eq!(settings(&l), (None, Some("secret"), 0));
        let l = FetchLocks::new("redis://cache").unwrap();
        assert_eq!(l.addr, "cache:6379");
        assert!(matches!(
            l.client.get_connection_info().addr(),
            ConnectionAddr::Tcp(..)
        ));
        let l = FetchLocks::new("rediss://:pw@[::1]:6380/1").unwrap();
        assert_eq!(l.addr, "[::1]:6380");
        assert_eq!(settings(&l), (None, Some("pw"), 1));
        assert!(matches!(
            l.client.get_connection_info().addr(),
            ConnectionAddr::TcpTls {
                insecure: false,
                ..
            }
        ));
        assert!(FetchLocks::new("http://x").is_err());
        assert!(FetchLocks::new("rediss://x:1/#insecure").is_err());
        assert!(FetchLocks::new("redis://x:1/db").is_err());
        // The password is not in what is printed.
        assert!(!format!("{l:?}").contains("pw"));
    }

    /// A port with nothing listening on it.
    fn closed_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    #[tokio::test]
    async fn nothing_listening_is_unavailable_quickly() {
        for scheme in ["redis", "rediss"] {
            let url = format!("{scheme}://127.0.0.1:{}", closed_port());
            let l = FetchLocks::new(&url).unwrap();
            let started = Instant::now();
            assert!(matches!(l.take("k").await, Taken::Unavailable(_)));
            assert!(started.elapsed() < Duration::from_secs(2));
            // Left alone for a while: the next miss does not wait on it.
            let again = Instant::now();
            assert!(matches!(l.take("k").await, Taken::Unavailable(_)));
            assert!(l.held("k").await.is_none());
            assert!(!l.renew("k", "t").await);
            l.release("k", "t").await;
            assert!(again.elapsed() < Duration::from_millis(50));
        }
    }

    /// A server that accepts connections and never answers (a Redis
    /// behind a dead network path): bounded all the same.
    #[tokio::test]
    async fn a_silent_server_is_unavailable_quickly() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepting = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        for scheme in ["redis", "rediss"] {
            let l = FetchLocks::new(&format!("{scheme}://127.0.0.1:{port}")).unwrap();
            let started = Instant::now();
            assert!(matches!(l.take("k").await, Taken::Unavailable(_)));
            assert!(started.elapsed() < Duration::from_secs(2), "{scheme}");
        }
        accepting.abort();
    }
}
