//! Stored files over 1 MiB are sent piece by piece within one memory
//! budget all answers share (`--body-buffers`): every client gets the
//! whole file, HEAD gets its length, TLS still works, and clients that
//! leave mid-file give their share back.

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

#[tokio::test(flavor = "multi_thread")]
async fn a_stored_file_is_sent_whole_over_tls() {
    let (data, bytes) = stored_zip();
    let (_certs, cert, key) = self_signed();
    let proxy = start(&data, &["--tls-cert", &cert, "--tls-key", &key]);
    let pem = std::fs::read(&cert).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let response = client.get(format!("{}/{ZIP}", proxy.url)).send().await;
    let got = response.unwrap().bytes().await.unwrap();
    assert!(got == bytes, "the TLS download differs");
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
