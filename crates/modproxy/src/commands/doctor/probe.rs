//! One network check of an HTTP(S) endpoint, step by step, each step
//! bounded in time: DNS, TCP connect, TLS handshake, time to the first
//! byte of an answer, and the download of that (small) answer. Through an
//! HTTP proxy (what `HTTPS_PROXY`/`HTTP_PROXY` make the go command use),
//! DNS and connect are the proxy's, then a `CONNECT` tunnel for https.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use modproxy_module::authority;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls;

/// Most bytes of an answer read by the download step.
const DOWNLOAD_LIMIT: usize = 1 << 20;

/// An `http(s)://host[:port]/path` URL, split.
#[derive(Debug, Clone)]
pub struct Target {
    pub https: bool,
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
    /// `user:password` from the URL, if any (sent to a proxy only).
    pub credentials: Option<String>,
}

impl Target {
    /// `host:port`, an IPv6 address in brackets.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    pub fn parse(url: &str) -> Option<Target> {
        let (scheme, authority, path) = authority::split_url(url)?;
        let https = match scheme {
            "https" => true,
            "http" => false,
            _ => return None,
        };
        // `user:password@host`: credentials are not part of the address.
        let authority = authority::parse(authority).ok()?;
        if authority.host.is_empty() {
            return None;
        }
        Some(Target {
            https,
            host: authority.host.to_string(),
            port: authority.port_or_default(scheme)?,
            path: if path.is_empty() { "/" } else { path }.to_string(),
            credentials: authority.userinfo.map(str::to_string),
        })
    }
}

/// How one step went.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub step: &'static str,
    /// `ok`, `failed`, `timeout` or `skipped`.
    pub verdict: &'static str,
    pub ms: Option<f64>,
    pub detail: String,
}

impl Step {
    pub fn ok(&self) -> bool {
        matches!(self.verdict, "ok" | "skipped")
    }
}

/// The steps of one check, in order; a failed step ends it.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub url: String,
    pub steps: Vec<Step>,
    /// The HTTP status of the answer, if one came.
    pub status: Option<u16>,
    /// The answer's body (up to the download limit), for callers that
    /// look inside (`/sumdb/…/supported`, a `.info`).
    #[serde(skip)]
    pub body: Vec<u8>,
}

impl Report {
    /// Every step passed.
    pub fn ok(&self) -> bool {
        self.steps.iter().all(Step::ok)
    }

    /// Milliseconds of all the steps (for ranking).
    pub fn total_ms(&self) -> f64 {
        self.steps.iter().filter_map(|s| s.ms).sum()
    }
}

/// How far a check goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// DNS and TCP connect only (an HTTP proxy: reachable or not).
    Connect,
    /// Every step, down to the download of `url`.
    Download,
}

/// Runs the steps against `url`, each bounded by `limit`; through the HTTP
/// proxy `via` when given.
pub async fn check(url: String, depth: Depth, limit: Duration, via: Option<String>) -> Report {
    let mut report = Report {
        url: url.clone(),
        steps: Vec::new(),
        status: None,
        body: Vec::new(),
    };
    let Some(target) = Target::parse(&url) else {
        report
            .steps
            .push(failed("dns", None, "not an http:// or https:// URL".into()));
        return report;
    };
    let proxy = match via.as_deref().map(|v| (v, Target::parse(v))) {
        Some((_, Some(proxy))) => Some(proxy),
        Some((v, None)) => {
            let detail = format!("the proxy {v} is not an http:// URL");
            report.steps.push(failed("dns", None, detail));
            return report;
        }
        None => None,
    };
    let first_hop = proxy.as_ref().unwrap_or(&target);
    let Some(addrs) = dns(first_hop, limit, &mut report.steps).await else {
        return report;
    };
    let Some(mut tcp) = connect(&addrs, limit, &mut report.steps).await else {
        return report;
    };
    if depth == Depth::Connect {
        return report;
    }
    let mut request_target = target.path.clone();
    // Plain http through a proxy: its credentials go with the request.
    let proxy_auth = proxy
        .as_ref()
        .filter(|_| !target.https)
        .and_then(|p| p.credentials.as_deref())
        .map_or(String::new(), basic_proxy_auth);
    if let (Some(proxy), true) = (&proxy, target.https) {
        let started = Instant::now();
        match tokio::time::timeout(limit, tunnel(&mut tcp, proxy, &target)).await {
            Ok(Ok(detail)) => report.steps.push(done("tunnel", started, detail)),
            Ok(Err(e)) => {
                report.steps.push(failed("tunnel", Some(started), e));
                return report;
            }
            Err(_) => {
                report.steps.push(timed_out("tunnel", limit));
                return report;
            }
        }
    } else if proxy.is_some() {
        // Plain http through a proxy: the whole URL in the request line.
        request_target = format!("http://{}{}", target.authority(), target.path);
    }
    if target.https {
        let started = Instant::now();
        match tokio::time::timeout(limit, tls(tcp, &target.host)).await {
            Ok(Ok(stream)) => {
                report
                    .steps
                    .push(done("tls", started, "handshake complete".into()));
                exchange(stream, &target, &request_target, "", limit, &mut report).await;
            }
            Ok(Err(e)) => report.steps.push(failed("tls", Some(started), e)),
            Err(_) => report.steps.push(timed_out("tls", limit)),
        }
    } else {
        report.steps.push(Step {
            step: "tls",
            verdict: "skipped",
            ms: None,
            detail: "plain http".into(),
        });
        exchange(
            tcp,
            &target,
            &request_target,
            &proxy_auth,
            limit,
            &mut report,
        )
        .await;
    }
    report
}

/// A `Proxy-Authorization` header line for `user:password`.
fn basic_proxy_auth(credentials: &str) -> String {
    use base64::Engine as _;
    let token = base64::engine::general_purpose::STANDARD.encode(credentials);
    format!("Proxy-Authorization: Basic {token}\r\n")
}

/// Asks the proxy for a tunnel to `target` (`CONNECT host:port`), with
/// the proxy URL's credentials if it has some; what it answered.
async fn tunnel(tcp: &mut TcpStream, proxy: &Target, target: &Target) -> Result<String, String> {
    let authority = target.authority();
    let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(credentials) = &proxy.credentials {
        request.push_str(&basic_proxy_auth(credentials));
    }
    request.push_str("\r\n");
    tcp.write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    // The proxy's answer head, read a byte at a time: nothing of the
    // tunnel after it may be consumed.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 16 << 10 {
            return Err("the proxy's answer has no end".into());
        }
        let mut byte = [0u8];
        if tcp.read(&mut byte).await.map_err(|e| e.to_string())? == 0 {
            return Err("the proxy closed the connection".into());
        }
        head.push(byte[0]);
    }
    match status_of(&head) {
        Some(200) => Ok(format!("the proxy opened a tunnel to {authority}")),
        Some(s) => Err(format!(
            "the proxy answered HTTP {s} to CONNECT {authority}"
        )),
        None => Err("the proxy's answer is not HTTP".into()),
    }
}

async fn dns(target: &Target, limit: Duration, steps: &mut Vec<Step>) -> Option<Vec<SocketAddr>> {
    if let Ok(ip) = target.host.parse::<IpAddr>() {
        steps.push(Step {
            step: "dns",
            verdict: "skipped",
            ms: None,
            detail: format!("{ip} is an address"),
        });
        return Some(vec![SocketAddr::new(ip, target.port)]);
    }
    let started = Instant::now();
    let lookup = tokio::net::lookup_host((target.host.as_str(), target.port));
    match tokio::time::timeout(limit, lookup).await {
        Ok(Ok(addrs)) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            let v4: Vec<String> = addrs
                .iter()
                .filter(|a| a.is_ipv4())
                .map(|a| a.ip().to_string())
                .collect();
            let v6: Vec<String> = addrs
                .iter()
                .filter(|a| a.is_ipv6())
                .map(|a| a.ip().to_string())
                .collect();
            let show = |v: &[String]| {
                if v.is_empty() {
                    "none".to_string()
                } else {
                    v.join(" ")
                }
            };
            let detail = format!("IPv4 {}; IPv6 {}", show(&v4), show(&v6));
            if addrs.is_empty() {
                steps.push(failed("dns", Some(started), "no addresses".into()));
                return None;
            }
            steps.push(done("dns", started, detail));
            Some(addrs)
        }
        Ok(Err(e)) => {
            steps.push(failed("dns", Some(started), e.to_string()));
            None
        }
        Err(_) => {
            steps.push(timed_out("dns", limit));
            None
        }
    }
}

/// Connects to the first address that accepts, all within `limit`. Like
/// Go's dialer, the next address is tried after a short while without
/// giving up on the earlier ones, so one black-holed address (an IPv6
/// route that goes nowhere) does not use up the whole budget.
async fn connect(
    addrs: &[SocketAddr],
    limit: Duration,
    steps: &mut Vec<Step>,
) -> Option<TcpStream> {
    const STAGGER: Duration = Duration::from_millis(300);
    let started = Instant::now();
    let mut attempts = tokio::task::JoinSet::new();
    for (i, addr) in addrs.iter().copied().enumerate() {
        attempts.spawn(async move {
            tokio::time::sleep(STAGGER * i as u32).await;
            (addr, TcpStream::connect(addr).await)
        });
    }
    let first = async {
        let mut last = String::from("no address");
        while let Some(joined) = attempts.join_next().await {
            match joined {
                Ok((addr, Ok(stream))) => return Ok((stream, addr)),
                Ok((addr, Err(e))) => last = format!("{addr}: {e}"),
                Err(e) => last = e.to_string(),
            }
        }
        Err(last)
    };
    let result = tokio::time::timeout(limit, first).await;
    attempts.abort_all();
    match result {
        Ok(Ok((stream, addr))) => {
            steps.push(done("connect", started, format!("connected to {addr}")));
            Some(stream)
        }
        Ok(Err(e)) => {
            steps.push(failed("connect", Some(started), e));
            None
        }
        Err(_) => {
            steps.push(timed_out("connect", limit));
            None
        }
    }
}

async fn tls(
    tcp: TcpStream,
    host: &str,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, _) = roots.add_parsable_certificates(native.certs);
    if added == 0 {
        return Err("no trusted root certificates found on this system".into());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| format!("{host}: {e}"))?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())
}

/// Sends the GET, times the first byte and the rest of the answer.
async fn exchange<S>(
    mut stream: S,
    target: &Target,
    request_target: &str,
    proxy_auth: &str,
    limit: Duration,
    report: &mut Report,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let request = format!(
        "GET {request_target} HTTP/1.1\r\nHost: {}\r\nUser-Agent: modproxy-doctor\r\nAccept-Encoding: identity\r\n{proxy_auth}Connection: close\r\n\r\n",
        target.host
    );
    let started = Instant::now();
    let mut answer = Vec::new();
    let first = async {
        stream.write_all(request.as_bytes()).await?;
        let mut buf = [0u8; 4096];
        let n = stream.read(&mut buf).await?;
        answer.extend_from_slice(&buf[..n]);
        Ok::<usize, std::io::Error>(n)
    };
    match tokio::time::timeout(limit, first).await {
        Ok(Ok(0)) => {
            report.steps.push(failed(
                "first byte",
                Some(started),
                "closed without an answer".into(),
            ));
            return;
        }
        Ok(Ok(_)) => {
            let status = status_of(&answer);
            report.status = status;
            let detail = status.map_or("not an HTTP answer".into(), |s| format!("HTTP {s}"));
            report.steps.push(done("first byte", started, detail));
        }
        Ok(Err(e)) => {
            report
                .steps
                .push(failed("first byte", Some(started), e.to_string()));
            return;
        }
        Err(_) => {
            report.steps.push(timed_out("first byte", limit));
            return;
        }
    }
    let started = Instant::now();
    let rest = async {
        let mut limited = (&mut stream).take(DOWNLOAD_LIMIT as u64);
        limited.read_to_end(&mut answer).await
    };
    if tokio::time::timeout(limit, rest).await.is_err() {
        report.steps.push(timed_out("download", limit));
        return;
    }
    // A read error after the first bytes (a TLS peer closing without
    // close_notify) still leaves a usable answer.
    let detail = format!("{} bytes", answer.len());
    report.body = body_of(&answer);
    let answered = report
        .status
        .is_some_and(|s| (200..300).contains(&s) || s == 404 || s == 410);
    if answered {
        report.steps.push(done("download", started, detail));
    } else {
        let status = report
            .status
            .map_or("no status".into(), |s| format!("HTTP {s}"));
        let detail = format!("{status} ({detail})");
        report.steps.push(failed("download", Some(started), detail));
    }
}

fn status_of(answer: &[u8]) -> Option<u16> {
    let line = answer.split(|&b| b == b'\n').next()?;
    let text = std::str::from_utf8(line).ok()?;
    let mut parts = text.split_whitespace();
    parts.next().filter(|v| v.starts_with("HTTP/"))?;
    parts.next()?.parse().ok()
}

/// The body after the headers, its chunked encoding undone.
fn body_of(answer: &[u8]) -> Vec<u8> {
    let Some(i) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Vec::new();
    };
    let head = String::from_utf8_lossy(&answer[..i]).to_ascii_lowercase();
    let body = &answer[i + 4..];
    if !head.contains("transfer-encoding: chunked") {
        return body.to_vec();
    }
    let (mut out, mut rest) = (Vec::new(), body);
    while let Some(end) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&rest[..end]);
        let size = size.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size, 16) else {
            break;
        };
        let data = &rest[end + 2..];
        if size == 0 || data.len() < size {
            out.extend_from_slice(&data[..size.min(data.len())]);
            break;
        }
        out.extend_from_slice(&data[..size]);
        rest = data.get(size + 2..).unwrap_or(&[]);
    }
    out
}

fn ms(since: Instant) -> Option<f64> {
    Some((since.elapsed().as_secs_f64() * 1e4).round() / 10.0)
}

fn done(step: &'static str, started: Instant, detail: String) -> Step {
    Step {
        step,
        verdict: "ok",
        ms: ms(started),
        detail,
    }
}

fn failed(step: &'static str, started: Option<Instant>, detail: String) -> Step {
    Step {
        step,
        verdict: "failed",
        ms: started.and_then(ms),
        detail,
    }
}

fn timed_out(step: &'static str, limit: Duration) -> Step {
    Step {
        step,
        verdict: "timeout",
        ms: Some(limit.as_secs_f64() * 1000.0),
        detail: format!("no answer within {limit:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_scheme_host_port_and_path() {
        let t = Target::parse("https://proxy.golang.org").unwrap();
        assert_eq!(
            (t.https, t.host.as_str(), t.port, t.path.as_str()),
            (true, "proxy.golang.org", 443, "/")
        );
        let t = Target::parse("http://127.0.0.1:3000/go/x").unwrap();
        assert_eq!(
            (t.https, t.host.as_str(), t.port, t.path.as_str()),
            (false, "127.0.0.1", 3000, "/go/x")
        );
        let t = Target::parse("http://[::1]:8080/").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 8080));
        assert_eq!(t.authority(), "[::1]:8080");
        let t = Target::parse("http://user:p@ss@proxy.corp:3128").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("proxy.corp", 3128));
        assert!(Target::parse("ftp://x").is_none());
        assert!(Target::parse("http://:80/").is_none());
    }

    #[test]
    fn status_lines_are_read() {
        assert_eq!(status_of(b"HTTP/1.1 404 Not Found\r\n\r\n"), Some(404));
        assert_eq!(status_of(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(body_of(b"HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody"), b"body");
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nv1.\r\n4\r\n0.0\n\r\n0\r\n\r\n";
        assert_eq!(body_of(chunked), b"v1.0.0\n");
    }
}
