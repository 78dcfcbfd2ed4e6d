//! Client connections are bounded: a client gets a while to send its
//! request headers (and to start its next request on a kept-alive
//! connection), and past the connection cap new clients wait to be
//! accepted instead of exhausting the process' file descriptors. A
//! stderr that stops taking log lines costs lines, not answers.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::util::{modproxy_command, until, Modproxy, TempDir};

/// Sends a header byte every 300 ms until the server closes the
/// connection; how long that took (`None`: still open after `limit`).
async fn trickle(addr: SocketAddr, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).await.unwrap();
    let header = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    for byte in header.iter().cycle() {
        if started.elapsed() > limit {
            return None;
        }
        if s.write_all(&[*byte]).await.is_err() {
            return Some(started.elapsed());
        }
        let mut buf = [0u8; 512];
        match tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            // A 408 or similar answer before the close.
            Ok(Ok(_)) => {}
            Err(_) => {}
        }
    }
    unreachable!()
}

/// A GET of /healthz on a new connection: its status.
async fn healthz(addr: SocketAddr) -> u16 {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out).await;
    out.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_trickling_headers_or_idle_are_closed_while_others_are_served() {
    let data = TempDir::new("conns");
    let proxy = Modproxy::start(
        data.path(),
        &["--upstream", "off", "--header-timeout", "2s"],
    );
    let addr = proxy.addr;
    let limit = Duration::from_secs(20);
    let slow: Vec<_> = (0..50)
        .map(|_| tokio::spawn(trickle(addr, limit)))
        .collect();
    // An idle kept-alive connection, after one request.
    let idle = tokio::spawn(async move {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let started = Instant::now();
        let mut buf = [0u8; 1024];
        loop {
            match tokio::time::timeout(limit, s.read(&mut buf)).await {
                Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
                Ok(Ok(_)) => {}
                Err(_) => return None,
            }
        }
    });
    // Meanwhile other clients are served.
    for _ in 0..5 {
        assert_eq!(healthz(addr).await, 200);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for task in slow {
        let closed = task.await.unwrap();
        assert!(
            closed.is_some(),
            "a client trickling its headers was still connected after {limit:?}"
        );
    }
    let closed = idle.await.unwrap();
    assert!(
        closed.is_some(),
        "an idle kept-alive connection was still open after {limit:?}"
    );
    assert_eq!(healthz(addr).await, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn past_the_open_files_limit_clients_wait_and_the_log_stays_quiet() {
    let data = TempDir::new("conns-limit");
    // The binary under a 256 open-files limit, as `ulimit -n 256` would
    // run it.
    let serve = modproxy_command(
        data.path(),
        &["--upstream", "off", "--header-timeout", "2s"],
    );
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg("ulimit -n 256 && exec \"$0\" \"$@\"")
        .arg(serve.get_program())
        .args(serve.get_args())
        .env_remove("MODPROXY_CONFIG")
        .env("MODPROXY_LOG", "info")
        .env("MODPROXY_PREFETCH", "off");
    let proxy = Modproxy::spawn(command).unwrap();
    let addr = proxy.addr;

    // 300 idle connections: more than the process could hold.
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    let started = Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(30), healthz(addr)).await;
    assert_eq!(
        status.ok(),
        Some(200),
        "/healthz not answered within 30 s behind 300 idle connections\n{}",
        proxy.logs()
    );
    eprintln!("answered after {:?}", started.elapsed());
    drop(idle);
    let logs = proxy.logs();
    let accept_failures = logs.matches("accept failed").count();
    assert!(
        accept_failures <= 3,
        "{accept_failures} accept failures logged:\n{logs}"
    );
    assert!(logs.contains("connection limit reached"), "{logs}");
}

/// A stderr nobody reads (a stalled log collector) fills its pipe after a
/// few hundred lines. The answers go on; the lines that did not fit are
/// counted, and the count is logged once stderr takes lines again.
#[tokio::test(flavor = "multi_thread")]
async fn a_stderr_nobody_reads_costs_log_lines_not_answers() {
    let data = TempDir::new("conns-stderr");
    let mut child = modproxy_command(data.path(), &["--upstream", "off", "--sumdb", "off"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut banner = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut banner)
        .unwrap();
    let base = banner
        .trim()
        .trim_start_matches("export GOPROXY=")
        .to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{banner}");
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Killed(child);

    // Each answer logs its path: ~2 KiB a line, so 4000 answers are far
    // more than a pipe (64 KiB) and the log's backlog (4 MiB) hold.
    let path = format!("/example.com/{}/@v/list", "a".repeat(2000));
    let client = reqwest::Client::new();
    for i in 0..4000 {
        let answer = tokio::time::timeout(
            Duration::from_secs(10),
            client.get(format!("{base}{path}")).send(),
        )
        .await;
        let status = answer.map(|r| r.map(|r| r.status().as_u16()));
        assert!(
            matches!(status, Ok(Ok(400))),
            "answer {i} with stderr full: {status:?}"
        );
    }

    // stderr is read again: the loss is reported.
    let taken = Arc::new(Mutex::new(String::new()));
    let mut stderr = child.0.stderr.take().unwrap();
    let sink = Arc::clone(&taken);
    std::thread::spawn(move || {
        let mut buf = [0u8; 1 << 16];
        while let Ok(n @ 1..) = stderr.read(&mut buf) {
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let status = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(status.status(), 200);
    let reported = until(Duration::from_secs(30), || {
        taken.lock().unwrap().contains("log lines dropped")
    });
    let text = taken.lock().unwrap();
    let tail = &text[text.len().saturating_sub(600)..];
    assert!(
        reported,
        "no report of the dropped lines; stderr ends with: {tail}"
    );
}
