//! Cross-replica fetch locks (`--lock redis://HOST:PORT[/DB]`): replicas
//! sharing one store take a lock in Redis before fetching an immutable
//! file, so the upstream sees one fetch; the others wait (bounded) for the
//! file to appear in the store. Every Redis step is bounded by a short
//! timeout, and any Redis trouble means "fetch without coordination",
//! never an error for the client.
//!
//! The lock is `SET modproxy:fetch:KEY TOKEN NX PX TTL`, released by a
//! script that deletes it only if it still holds this replica's token.
//! Speaks just enough RESP for that, on one short connection per step.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Connect + command + reply, each step.
const STEP: Duration = Duration::from_millis(500);
/// A lock outlives a replica that died holding it by at most this long;
/// its holder renews it every third of that while it fetches.
pub const LOCK_TTL: Duration = Duration::from_secs(15);
/// After Redis failed to answer, it is left alone this long (misses
/// fetch uncoordinated at once instead of waiting on it).
const BACK_OFF: Duration = Duration::from_secs(10);

const RELEASE: &str =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";
const RENEW: &str =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";

/// Redis, as a lock service.
#[derive(Debug)]
pub struct FetchLocks {
    addr: String,
    /// `AUTH` arguments: a password, or an ACL user and password.
    auth: Option<Vec<String>>,
    db: Option<String>,
    /// This replica's tokens: a random prefix and a counter.
    token_prefix: String,
    counter: AtomicU64,
    /// Until when Redis is left alone after a failure.
    down_until: std::sync::Mutex<Option<std::time::Instant>>,
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

/// A Redis reply.
#[derive(Debug, PartialEq)]
enum Reply {
    Ok(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
}

impl FetchLocks {
    /// `redis://[[USER]:PASSWORD@]HOST:PORT[/DB]` (percent-encoded).
    pub fn new(url: &str) -> Result<FetchLocks, String> {
        let rest = url
            .strip_prefix("redis://")
            .ok_or_else(|| format!("{url:?}: not a redis:// URL"))?;
        let (auth, rest) = match rest.rsplit_once('@') {
            Some((auth, rest)) => (Some(auth), rest),
            None => (None, rest),
        };
        let (addr, db) = match rest.split_once('/') {
            Some((addr, db)) if !db.is_empty() => (addr, Some(db.to_string())),
            Some((addr, _)) => (addr, None),
            None => (rest, None),
        };
        if addr.is_empty() {
            return Err(format!("{url:?}: no host"));
        }
        let addr = if addr.contains(':') {
            addr.to_string()
        } else {
            format!("{addr}:6379")
        };
        let decode = |s: &str| crate::request::percent_decode(s).unwrap_or_else(|| s.to_string());
        let auth = auth.map(|a| match a.split_once(':') {
            Some(("", password)) => vec![decode(password)],
            Some((user, password)) => vec![decode(user), decode(password)],
            None => vec![decode(a)],
        });
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Ok(FetchLocks {
            addr,
            auth,
            db,
            token_prefix: format!("{}-{nanos:x}", std::process::id()),
            counter: AtomicU64::new(0),
            down_until: std::sync::Mutex::new(None),
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
        let ttl = LOCK_TTL.as_millis().to_string();
        let name = Self::name(key);
        match self
            .command(&["SET", &name, &token, "NX", "PX", &ttl])
            .await
        {
            Ok(Reply::Ok(_)) => Taken::Mine(token),
            Ok(Reply::Bulk(None)) => Taken::Theirs,
            Ok(other) => Taken::Unavailable(format!("unexpected reply {other:?}")),
            Err(e) => Taken::Unavailable(e),
        }
    }

    /// Whether some replica holds the lock for `key` (`None`: unknown).
    pub async fn held(&self, key: &str) -> Option<bool> {
        match self.command(&["EXISTS", &Self::name(key)]).await {
            Ok(Reply::Int(n)) => Some(n > 0),
            _ => None,
        }
    }

    /// Extends a lock taken with `token` (if it is still ours) by
    /// [`LOCK_TTL`]; false when it is not ours (any more).
    pub async fn renew(&self, key: &str, token: &str) -> bool {
        let ttl = LOCK_TTL.as_millis().to_string();
        let name = Self::name(key);
        matches!(
            self.command(&["EVAL", RENEW, "1", &name, token, &ttl])
                .await,
            Ok(Reply::Int(1))
        )
    }

    /// Gives back a lock taken with `token` (if it is still ours).
    pub async fn release(&self, key: &str, token: &str) {
        let name = Self::name(key);
        if let Err(e) = self.command(&["EVAL", RELEASE, "1", &name, token]).await {
            tracing::debug!(error = %e, "could not release a fetch lock; it expires by itself");
        }
    }

    /// Runs one command on a fresh connection, every step bounded; after
    /// a failure, fails at once for [`BACK_OFF`].
    async fn command(&self, args: &[&str]) -> Result<Reply, String> {
        let now = std::time::Instant::now();
        let down = *self.down_until.lock().unwrap_or_else(|p| p.into_inner());
        if down.is_some_and(|until| now < until) {
            return Err(format!("redis {}: unreachable a moment ago", self.addr));
        }
        let result = self.command_now(args).await;
        if result.is_err() {
            *self.down_until.lock().unwrap_or_else(|p| p.into_inner()) = Some(now + BACK_OFF);
        }
        result
    }

    async fn command_now(&self, args: &[&str]) -> Result<Reply, String> {
        let connect = TcpStream::connect(&self.addr);
        let stream = tokio::time::timeout(STEP, connect)
            .await
            .map_err(|_| format!("redis {}: no connection within {STEP:?}", self.addr))?
            .map_err(|e| format!("redis {}: {e}", self.addr))?;
        let mut stream = BufReader::new(stream);
        if let Some(auth) = &self.auth {
            let mut command = vec!["AUTH"];
            command.extend(auth.iter().map(String::as_str));
            self.exchange(&mut stream, &command).await?;
        }
        if let Some(db) = &self.db {
            self.exchange(&mut stream, &["SELECT", db]).await?;
        }
        self.exchange(&mut stream, args).await
    }

    async fn exchange(
        &self,
        stream: &mut BufReader<TcpStream>,
        args: &[&str],
    ) -> Result<Reply, String> {
        let mut request = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            request.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            request.extend_from_slice(a.as_bytes());
            request.extend_from_slice(b"\r\n");
        }
        let step = async {
            stream
                .get_mut()
                .write_all(&request)
                .await
                .map_err(|e| e.to_string())?;
            read_reply(stream).await
        };
        tokio::time::timeout(STEP, step)
            .await
            .map_err(|_| format!("redis {}: no reply within {STEP:?}", self.addr))?
            .map_err(|e| format!("redis {}: {e}", self.addr))
    }
}

async fn read_reply(stream: &mut BufReader<TcpStream>) -> Result<Reply, String> {
    let mut line = String::new();
    stream
        .read_line(&mut line)
        .await
        .map_err(|e| e.to_string())?;
    let line = line.trim_end_matches(['\r', '\n']);
    let Some(kind) = line.chars().next() else {
        return Err("connection closed".into());
    };
    let rest = &line[kind.len_utf8()..];
    match kind {
        '+' => Ok(Reply::Ok(rest.to_string())),
        '-' => Err(rest.to_string()),
        ':' => rest
            .parse()
            .map(Reply::Int)
            .map_err(|_| format!("bad integer {rest:?}")),
        '$' => {
            let n: i64 = rest.parse().map_err(|_| format!("bad length {rest:?}"))?;
            if n < 0 {
                return Ok(Reply::Bulk(None));
            }
            let mut data = vec![0u8; n as usize + 2];
            tokio::io::AsyncReadExt::read_exact(stream, &mut data)
                .await
                .map_err(|e| e.to_string())?;
            data.truncate(n as usize);
            Ok(Reply::Bulk(Some(data)))
        }
        _ => Err(format!("unexpected reply {line:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let l = FetchLocks::new("redis://:p%40w@127.0.0.1:6390/2").unwrap();
        assert_eq!(l.addr, "127.0.0.1:6390");
        assert_eq!(l.auth, Some(vec!["p@w".to_string()]));
        assert_eq!(l.db.as_deref(), Some("2"));
        let l = FetchLocks::new("redis://ci:pw@cache:1").unwrap();
        assert_eq!(l.auth, Some(vec!["ci".to_string(), "pw".to_string()]));
        let l = FetchLocks::new("redis://cache").unwrap();
        assert_eq!(l.addr, "cache:6379");
        assert!(FetchLocks::new("http://x").is_err());
    }

    #[tokio::test]
    async fn nothing_listening_is_unavailable_quickly() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let l = FetchLocks::new(&format!("redis://127.0.0.1:{port}")).unwrap();
        let started = std::time::Instant::now();
        assert!(matches!(l.take("k").await, Taken::Unavailable(_)));
        assert!(started.elapsed() < Duration::from_secs(2));
        // Left alone for a while: the next miss does not wait on it.
        let again = std::time::Instant::now();
        assert!(matches!(l.take("k").await, Taken::Unavailable(_)));
        assert!(again.elapsed() < Duration::from_millis(50));
    }
}
