//! A full disk: what can be served still is (verified), nothing half
//! written is left in the store, readiness says why, and caching resumes
//! once space returns; a fetch relayed for lack of space stops when its
//! last client leaves.

use std::time::{Duration, Instant};

use crate::fault::{synthetic_bytes, FaultServer, Synthetic};
use crate::faults::get;
use crate::util::{appears, files_under, Modproxy, RefProxy, TempDir, WRITES_LAND};

/// A tmpfs of `size` mounted at a fresh directory, unmounted on drop.
struct TinyFs {
    dir: TempDir,
}

impl TinyFs {
    fn mount(size: &str) -> TinyFs {
        let dir = TempDir::new("tinyfs");
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "cannot mount a tmpfs (the disk-full test needs root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        TinyFs { dir }
    }

    /// Writes a file until the file system is full.
    fn fill(&self) -> std::path::PathBuf {
        let path = self.dir.path().join("filler");
        self.append_until_full(&path);
        path
    }

    /// Appends to `path` until the file system is full; returns how much fit.
    fn append_until_full(&self, path: &std::path::Path) -> usize {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        let block = vec![0u8; 4096];
        let mut written = 0;
        while let Ok(n) = f.write(&block) {
            if n == 0 {
                break;
            }
            written += n;
        }
        written
    }
}

impl Drop for TinyFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_still_serves_stores_nothing_corrupt_and_recovers() {
    let upstream = RefProxy::start();
    let server = FaultServer::start(&upstream.url);
    let big = "/example.com/full/@v/v1.0.0.zip";
    server.add_synthetic(big, Synthetic::fast(3 << 20, 9));
    let fs = TinyFs::mount("1m");
    let data = fs.dir.path().join("store");
    // Checked against the checksum database, but for the synthetic zip.
    let proxy = Modproxy::verifying(&server.url, &data, &["--nosumdb", "example.com/full"]);
    let filler = fs.fill();

    // A 3 MiB zip on a full 1 MiB file system: relayed, not cached.
    let body = reqwest::get(format!("{}{big}", proxy.url))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(
        body[..] == synthetic_bytes(9, 3 << 20)[..],
        "relayed zip differs"
    );
    // One the checksum database covers cannot be checked without its
    // spool file: an error status, before any byte of it (not a 200 cut
    // off once the disk says no).
    let covered = "/example.com/covered/@v/v1.0.0.zip";
    server.add_synthetic(covered, Synthetic::fast(3 << 20, 10));
    let (status, _, text) = get(&format!("{}{covered}", proxy.url)).await;
    assert!(
        status >= 500 && text.contains("cannot be verified"),
        "{status}: {text}"
    );
    // The failed spool's space is freed when the fetch's last reader is
    // gone: keep the disk full until nothing more fits for a while.
    let filler2 = fs.dir.path().join("filler2");
    let mut quiet = 0;
    for _ in 0..100 {
        quiet = if fs.append_until_full(&filler2) == 0 {
            quiet + 1
        } else {
            0
        };
        if quiet == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, _, text) = get(&format!("{}/rsc.io/quote/@v/v1.5.2.mod", proxy.url)).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.starts_with("module"));
    // A small zip is checked in memory: verified and served all the same.
    let zip = "/rsc.io/quote/@v/v1.5.2.zip";
    let through = reqwest::get(format!("{}{zip}", proxy.url)).await.unwrap();
    assert_eq!(through.status(), 200, "{:?}", through.text().await);
    let through = through.bytes().await.unwrap();
    let direct = reqwest::get(format!("{}{zip}", upstream.url))
        .await
        .unwrap();
    assert!(
        through == direct.bytes().await.unwrap(),
        "small zip differs"
    );
    // Nothing but the empty spool file made ahead of the next download.
    tokio::time::sleep(WRITES_LAND).await;
    let stored = files_under(&data);
    let spare = |f: &str| f.ends_with("-spare") && data.join(f).metadata().unwrap().len() == 0;
    assert!(
        stored
            .iter()
            .all(|f| f.starts_with(".tmp/") && (!f.contains("spool") || spare(f))),
        "something was stored on a full disk: {stored:?}"
    );

    // Not ready while the store takes no writes; alive all along.
    let (status, _, body) = get(&format!("{}/readyz", proxy.url)).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("not ready") && body.contains("No space left"),
        "{body}"
    );
    assert_eq!(get(&format!("{}/healthz", proxy.url)).await.0, 200);

    // Space returns: caching resumes.
    std::fs::remove_file(filler).unwrap();
    std::fs::remove_file(filler2).unwrap();
    let (status, _, body) = get(&format!("{}/readyz", proxy.url)).await;
    assert_eq!((status, body.as_str()), (200, "ready\n"));
    let (status, _, _) = get(&format!("{}/rsc.io/quote/@v/v1.5.1.mod", proxy.url)).await;
    assert_eq!(status, 200);
    assert!(
        appears(
            &data.join("rsc.io/quote/@v/v1.5.1.mod"),
            Duration::from_secs(15)
        )
        .await,
        "caching did not resume"
    );
    // The checksum tree head accepted while the disk was full is saved.
    let latest = data.join("sumdb/localhost.localdev/sumdb/latest");
    assert!(
        appears(&latest, Duration::from_secs(15)).await,
        "the tree head was not saved"
    );
    drop(proxy);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fetch_nobody_needs_any_more_is_cancelled() {
    // On a full disk a zip cannot be cached, so once its only client has
    // left, nobody needs the rest of it.
    let upstream = RefProxy::start();
    let server = FaultServer::start(&upstream.url);
    let path = "/example.com/unneeded/@v/v1.0.0.zip";
    server.add_synthetic(
        path,
        Synthetic {
            chunk: 64 << 10,
            delay: Duration::from_millis(30),
            ..Synthetic::fast(8 << 20, 44)
        },
    );
    let fs = TinyFs::mount("1m");
    let data = fs.dir.path().join("store");
    let proxy = Modproxy::behind(&server.url, &data, &[]);
    fs.fill();
    let mut response = reqwest::get(format!("{}{path}", proxy.url)).await.unwrap();
    assert!(response.chunk().await.unwrap().is_some());
    drop(response);
    let started = Instant::now();
    while server.aborted() == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the unneeded fetch went on"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(proxy);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_disk_that_fills_during_a_download_still_serves_it_whole() {
    // Without an announced length no room is reserved: the spool takes
    // the first pieces, fills the disk, and the relay carries the rest,
    // after what the waiters already read (some of it from memory, shown
    // while its write ran).
    let upstream = RefProxy::start();
    let server = FaultServer::start(&upstream.url);
    let path = "/example.com/filling/@v/v1.0.0.zip";
    let file = Synthetic {
        chunk: 64 << 10,
        // Slow enough (about a quarter of a second in all) that the
        // second client finds the fetch still running, however late its
        // connection comes.
        delay: Duration::from_millis(5),
        unannounced: true,
        ..Synthetic::fast(3 << 20, 21)
    };
    server.add_synthetic(path, file);
    let fs = TinyFs::mount("1m");
    let data = fs.dir.path().join("store");
    let proxy = Modproxy::behind(&server.url, &data, &[]);
    let url = format!("{}{path}", proxy.url);
    let (one, two) = tokio::join!(reqwest::get(&url), reqwest::get(&url));
    for response in [one.unwrap(), two.unwrap()] {
        assert_eq!(response.status(), 200);
        let body = response.bytes().await.unwrap();
        assert!(
            body[..] == synthetic_bytes(21, 3 << 20)[..],
            "got {} bytes, not the zip",
            body.len()
        );
    }
    assert_eq!(server.count(path), 1, "one fetch for both");
    // The path this test is about: a spool write failed mid-download.
    let logs = proxy.logs();
    assert!(
        logs.contains("spool file") && logs.contains("No space left"),
        "{logs}"
    );
    tokio::time::sleep(WRITES_LAND).await;
    let stored = files_under(&data);
    assert!(
        !stored.iter().any(|f| f.ends_with(".zip")),
        "a zip the disk could not hold was stored: {stored:?}"
    );
    drop(proxy);
}
