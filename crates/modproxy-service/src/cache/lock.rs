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
/// A lock outlives a replica that died holding it by at most this long.
pub const LOCK_TTL: Duration = Duration::from_secs(120);

const RELEASE: &str =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

/// Redis, as a lock service.
#[derive(Debug)]
pub struct FetchLocks {
    addr: String,
    password: Option<String>,
    db: Option<String>,
    /// This replica's tokens: a random prefix and a counter.
    token_prefix: String,
    counter: AtomicU64,
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
    /// `redis://[:PASSWORD@]HOST:PORT[/DB]`.
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
        let password = auth.map(|a| a.rsplit_once(':').map_or(a, |(_, p)| p).to_string());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Ok(FetchLocks {
            addr,
            password,
            db,
            token_prefix: format!("{}-{nanos:x}", std::process::id()),
            counter: AtomicU64::new(0),
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

    /// Gives back a lock taken with `token` (if it is still ours).
    pub async fn release(&self, key: &str, token: &str) {
        let name = Self::name(key);
        if let Err(e) = self.command(&["EVAL", RELEASE, "1", &name, token]).await {
            tracing::debug!(error = %e, "could not release a fetch lock; it expires by itself");
        }
    }

    /// Runs one command on a fresh connection, every step bounded.
    async fn command(&self, args: &[&str]) -> Result<Reply, String> {
        let connect = TcpStream::connect(&self.addr);
        let stream = tokio::time::timeout(STEP, connect)
            .await
            .map_err(|_| format!("redis {}: no connection within {STEP:?}", self.addr))?
            .map_err(|e| format!("redis {}: {e}", self.addr))?;
        let mut stream = BufReader::new(stream);
        if let Some(password) = &self.password {
            self.exchange(&mut stream, &["AUTH", password]).await?;
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
    let (kind, rest) = line.split_at(line.len().min(1));
    match kind {
        "+" => Ok(Reply::Ok(rest.to_string())),
        "-" => Err(rest.to_string()),
        ":" => rest
            .parse()
            .map(Reply::Int)
            .map_err(|_| format!("bad integer {rest:?}")),
        "$" => {
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
        "" => Err("connection closed".into()),
        _ => Err(format!("unexpected reply {line:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let l = FetchLocks::new("redis://:pw@127.0.0.1:6390/2").unwrap();
        assert_eq!(
            (l.addr.as_str(), l.password.as_deref(), l.db.as_deref()),
            ("127.0.0.1:6390", Some("pw"), Some("2"))
        );
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
    }
}
