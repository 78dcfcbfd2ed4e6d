//! Stored files: on plain HTTP/1 connections the kernel sends them from
//! the file (`sendfile`), elsewhere (TLS, HTTP/2) they go piece by piece
//! within one memory budget all answers share (`--body-buffers`). Every
//! client gets the whole file whichever way (slow readers, several
//! answers on one connection, HTTP/2 on the plain port), HEAD gets its
//! length, and clients that leave mid-file give their share back.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::operate::self_signed;
use crate::util::{Modproxy, TempDir};

const ZIP: &str = "example.com/big/@v/v1.0.0.zip";

/// A data directory holding a 5 MiB zip (not verified: it is served as
/// stored), and its bytes.
fn stored_zip() -> (TempDir, Vec<u8>) {
    let data = TempDir::new("bodies");
    let bytes: Vec<u8> = (0..5u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let path = data.path().join(ZIP);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &bytes).unwrap();
    (data, bytes)
}

/// The smallest budget: eight pieces for every answer together.
fn start(data: &TempDir, extra: &[&str]) -> Modproxy {
    let mut args = vec![
        "--upstream",
        "off",
        "--sumdb",
        "off",
        "--body-buffers",
        "1MiB",
    ];
    args.extend_from_slice(extra);
    Modproxy::start(data.path(), &args)
}

#[tokio::test(flavor = "multi_thread")]
async fn many_clients_within_a_small_budget_each_get_the_whole_file() {
    let (data, bytes) = stored_zip();
    let proxy = start(&data, &[]);
    let url = format!("{}/{ZIP}", proxy.url);
    let client = reqwest::Client::new();
    let downloads: Vec<_> = (0..24)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                let r = client.get(&url).send().await.unwrap();
                assert_eq!(r.status(), 200);
                assert_eq!(r.headers()["x-cache-status"], "HIT");
                assert_eq!(r.content_length(), Some(5 << 20));
                r.bytes().await.unwrap()
            })
        })
        .collect();
    let deadline = Duration::from_secs(60);
    for d in downloads {
        let got = tokio::time::timeout(deadline, d)
            .await
            .expect("a download stalled")
            .unwrap();
        assert!(got == bytes, "a client got other bytes");
    }

    // HEAD: the length, no body.
    let head = client.head(&url).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-length"],
        (5u64 << 20).to_string().as_str()
    );
    assert!(head.bytes().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_that_leave_mid_file_give_their_share_back() {
    let (data, bytes) = stored_zip();
    let proxy = start(&data, &[]);
    let addr = proxy.addr;
    // 20 clients read the start of the file and go away (more than the
    // budget holds pieces), and 4 stall without reading, left open while
    // the others download: what the leavers held must come back.
    let stalled = tokio::task::spawn_blocking(move || {
        for _ in 0..20 {
            let mut s = TcpStream::connect(addr).unwrap();
            write!(s, "GET /{ZIP} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut start = vec![0; 300 << 10];
            s.read_exact(&mut start).unwrap();
        }
        (0..4)
            .map(|_| {
                let mut s = TcpStream::connect(addr).unwrap();
                write!(s, "GET /{ZIP} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
                s
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    let url = format!("{}/{ZIP}", proxy.url);
    for _ in 0..3 {
        let download = async { reqwest::get(&url).await.unwrap().bytes().await.unwrap() };
        let got = tokio::time::timeout(Duration::from_secs(60), download)
            .await
            .expect("a download waited on a budget the leavers kept");
        assert!(got == bytes, "a download after the leavers got other bytes");
    }
    drop(stalled);
}

/// 24 clients of `url` at once through `client`: each gets `bytes`.
async fn downloads_at_once(client: &reqwest::Client, url: &str, bytes: &[u8]) {
    let downloads: Vec<_> = (0..24)
        .map(|_| {
            let request = client.get(url).send();
            tokio::spawn(async move { request.await.unwrap().bytes().await.unwrap() })
        })
        .collect();
    for d in downloads {
        let got = tokio::time::timeout(Duration::from_secs(60), d)
            .await
            .expect("a download stalled")
            .unwrap();
        assert!(got == bytes, "a client got other bytes");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn over_tls_many_clients_share_the_small_budget() {
    let (data, bytes) = stored_zip();
    let (_certs, cert, key) = self_signed();
    let proxy = start(&data, &["--tls-cert", &cert, "--tls-key", &key]);
    let pem = std::fs::read(&cert).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .http1_only()
        .build()
        .unwrap();
    downloads_at_once(&client, &format!("{}/{ZIP}", proxy.url), &bytes).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn http2_on_the_plain_port_gets_the_file_bytes() {
    // HTTP/2 frames the body: these bytes must be read and framed, not
    // left for the connection to send from the file.
    let (data, bytes) = stored_zip();
    let proxy = start(&data, &[]);
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let url = format!("{}/{ZIP}", proxy.url);
    let r = client.get(&url).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert!(
        r.bytes().await.unwrap() == bytes,
        "the HTTP/2 download differs"
    );
    downloads_at_once(&client, &url, &bytes).await;
}

/// Reads an HTTP/1.1 answer's head from `s`.
fn read_head(s: &mut impl Read) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0];
        s.read_exact(&mut byte).expect("the answer's head");
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

/// Reads one HTTP/1.1 answer (with a Content-Length) from `s`: its head
/// and body.
fn read_answer(s: &mut impl Read) -> (String, Vec<u8>) {
    let head = read_head(s);
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(|n| n.trim().parse().unwrap())
        })
        .expect("a Content-Length");
    let mut body = vec![0; length];
    s.read_exact(&mut body).expect("the answer's body");
    (head, body)
}

#[test]
fn answers_on_one_connection_come_whole_and_in_order() {
    // Pipelined: file, small file, HEAD of the file, file, on one
    // connection, asked all at once; the file answers' bytes come from
    // the file between the heads hyper writes.
    let (data, bytes) = stored_zip();
    let info = data.path().join("example.com/big/@v/v1.0.0.info");
    std::fs::write(
        &info,
        r#"{"Version":"v1.0.0","Time":"2020-01-01T00:00:00Z"}"#,
    )
    .unwrap();
    let proxy = start(&data, &[]);
    let mut s = TcpStream::connect(proxy.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let asks = [
        ("GET", ZIP),
        ("GET", "example.com/big/@v/v1.0.0.info"),
        ("HEAD", ZIP),
        ("GET", ZIP),
    ];
    for (method, path) in asks {
        write!(s, "{method} /{path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    }
    let (head, body) = read_answer(&mut s);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(body == bytes, "the first answer differs");
    let (head, body) = read_answer(&mut s);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, std::fs::read(&info).unwrap());
    // HEAD: a head with the file's length and no body; the next answer's
    // head follows at once.
    let head = read_head(&mut s);
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("content-length: {}", 5 << 20)),
        "{head}"
    );
    let (head, body) = read_answer(&mut s);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(body == bytes, "the last answer differs");
}

#[test]
fn a_slow_reader_gets_every_byte() {
    // The socket takes the file a little at a time: every send is
    // partial, and most find it full.
    let (data, bytes) = stored_zip();
    let proxy = start(&data, &[]);
    let mut s = TcpStream::connect(proxy.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET /{ZIP} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut got = Vec::new();
    let mut buf = [0; 7000];
    let mut reads = 0;
    loop {
        match s.read(&mut buf).unwrap() {
            0 => break,
            n => got.extend_from_slice(&buf[..n]),
        }
        reads += 1;
        // Slow for the first 2 MiB (about 300 reads), then quick.
        if got.len() < 2 << 20 && reads % 10 == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let split = got
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head")
        + 4;
    assert!(got[split..] == bytes[..], "the slowly read answer differs");
}

#[test]
fn a_client_that_stops_reading_is_dropped_after_the_send_timeout() {
    // Larger than what the loopback's socket buffers take in.
    let data = TempDir::new("bodies-stall");
    let big = "example.com/big/@v/v1.1.0.zip";
    let path = data.path().join(big);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, vec![1u8; 64 << 20]).unwrap();
    let proxy = start(&data, &["--send-timeout", "2s"]);
    let mut s = TcpStream::connect(proxy.addr).unwrap();
    write!(s, "GET /{big} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    // Read nothing for longer than the timeout, then everything there is.
    std::thread::sleep(Duration::from_secs(5));
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut got = 0usize;
    let mut buf = vec![0; 1 << 20];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the connection was neither closed nor finished: {e}"),
        }
    }
    assert!(
        got < 64 << 20,
        "the whole answer came ({got} bytes): the stalled client was kept"
    );
}
