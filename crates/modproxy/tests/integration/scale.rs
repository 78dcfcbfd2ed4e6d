//! Scale-out: replicas of modproxy over one S3-compatible bucket (a real
//! Garage server) with fetch locks in a real Redis.

use std::time::{Duration, Instant};

use crate::fault::{FaultServer, Synthetic};
use crate::services::{Garage, Redis};
use crate::util::{
    get_status, hello_project, modproxy_command, run_modproxy, served, until, GoEnv, Modproxy,
    RefProxy, TempDir, REF_SUMDB,
};

/// A replica on `garage`'s bucket under `prefix`, its own local scratch
/// directory, `upstream`, plus `extra`.
fn replica(
    garage: &Garage,
    prefix: &str,
    upstream: &str,
    sumdb: &str,
    extra: &[&str],
) -> (Modproxy, TempDir) {
    replica_with(garage, prefix, upstream, sumdb, extra, None)
}

/// [`replica`], trusting the certificates of the PEM file `ca` (as
/// `SSL_CERT_FILE`), or with neither `SSL_CERT_FILE` nor `SSL_CERT_DIR`.
fn replica_with(
    garage: &Garage,
    prefix: &str,
    upstream: &str,
    sumdb: &str,
    extra: &[&str],
    ca: Option<&str>,
) -> (Modproxy, TempDir) {
    let scratch = TempDir::new("replica");
    let store = garage.store(prefix);
    let mut args = vec!["--store", &store, "--upstream", upstream, "--sumdb", sumdb];
    args.extend_from_slice(extra);
    let mut cmd = modproxy_command(scratch.path(), &args);
    for (k, v) in garage.env() {
        cmd.env(k, v);
    }
    cmd.env_remove("SSL_CERT_FILE").env_remove("SSL_CERT_DIR");
    if let Some(ca) = ca {
        cmd.env("SSL_CERT_FILE", ca);
    }
    (Modproxy::spawn(cmd).expect("replica starts"), scratch)
}

/// GET `url`: status, `X-Cache-Status`, body length.
fn fetch(url: &str) -> (u16, String, usize) {
    let (status, cache, body) = crate::util::get_cached(url);
    (status, cache, body.len())
}

#[test]
fn what_one_replica_fetched_is_a_hit_on_the_other_with_the_upstream_gone() {
    let garage = Garage::start();
    let mut upstream = RefProxy::start();
    let (one, _s1) = replica(&garage, "shared", &upstream.url, REF_SUMDB, &[]);
    let (two, _s2) = replica(&garage, "shared", &upstream.url, REF_SUMDB, &[]);
    let project = hello_project();
    GoEnv::new().ok(project.path(), &one.url, &["mod", "tidy"]);
    // A replica stores a zip right after handing it over: wait until the
    // other replica sees every zip the go command downloaded.
    let go_sum = std::fs::read_to_string(project.path().join("go.sum")).unwrap();
    let zips: Vec<String> = go_sum
        .lines()
        .filter_map(|l| {
            l.split_whitespace()
                .collect::<Vec<_>>()
                .get(..2)
                .map(|f| f.to_vec())
        })
        .filter(|f| !f[1].ends_with("/go.mod"))
        .map(|f| format!("{}/cached-only/{}/@v/{}.zip", two.url, f[0], f[1]))
        .collect();
    assert!(!zips.is_empty(), "{go_sum}");
    let landed = until(Duration::from_secs(30), || {
        zips.iter().all(|z| get_status(z).0 == 200)
    });
    assert!(landed, "zips never landed");
    upstream.stop();
    // A fresh go command through the other replica, with no go.sum: every
    // file and every checksum database lookup and tile comes from the bucket.
    std::fs::remove_file(project.path().join("go.sum")).unwrap();
    let go = GoEnv::new();
    go.ok(project.path(), &two.url, &["mod", "tidy"]);
    let out = go.ok(project.path(), &two.url, &["run", "."]);
    assert!(out.contains("Hello, world."), "{out}");
    let (status, cache, _) = fetch(&format!("{}/rsc.io/quote/@v/v1.5.2.zip", two.url));
    assert_eq!((status, cache.as_str()), (200, "HIT"));
    // The replica that wrote counts what it wrote, without listing again.
    let metrics = get_status(&format!("{}/metrics", one.url)).1;
    assert!(
        crate::util::sample(&metrics, "modproxy_store_objects") >= 3.0,
        "{metrics}"
    );
}

#[test]
fn fifty_requests_over_two_replicas_make_one_upstream_fetch_with_a_lock() {
    let garage = Garage::start();
    let redis = Redis::start();
    let upstream = RefProxy::start();
    let server = FaultServer::start(&upstream.url);
    let path = "/example.com/big/@v/v1.0.0.zip";
    // Large enough for a multipart upload, slow enough that every request
    // arrives while the first fetch runs.
    let size: usize = 12 << 20;
    let mut slow = Synthetic::fast(size as u64, 7);
    slow.chunk = 256 << 10;
    slow.delay = Duration::from_millis(40);
    server.add_synthetic(path, slow);
    let lock = ["--lock", redis.url.as_str()];
    let (one, _s1) = replica(&garage, "locked", &server.url, "off", &lock);
    let (two, _s2) = replica(&garage, "locked", &server.url, "off", &lock);
    let urls: Vec<String> = (0..50)
        .map(|i| format!("{}{path}", if i % 2 == 0 { &one.url } else { &two.url }))
        .collect();
    let handles: Vec<_> = urls
        .into_iter()
        .map(|u| std::thread::spawn(move || fetch(&u)))
        .collect();
    for h in handles {
        let (status, _, len) = h.join().unwrap();
        assert_eq!((status, len), (200, size));
    }
    assert_eq!(server.count(path), 1, "upstream fetches");
}

#[test]
fn replicas_share_fetch_locks_in_a_redis_that_speaks_only_tls() {
    let garage = Garage::start();
    // The server's certificate is self-signed: its own CA, which the
    // replicas trust through SSL_CERT_FILE, as an operator with a private
    // CA would.
    let (_certs, cert, key) = crate::operate::self_signed();
    let redis = Redis::start_tls(&cert, &key);
    assert!(
        redis.url.starts_with("rediss://127.0.0.1:"),
        "{}",
        redis.url
    );
    let upstream = RefProxy::start();
    let server = FaultServer::start(&upstream.url);
    let path = "/example.com/tls/@v/v1.0.0.zip";
    // Slow enough that every request arrives while the first fetch runs.
    let size: usize = 4 << 20;
    let mut slow = Synthetic::fast(size as u64, 11);
    slow.chunk = 128 << 10;
    slow.delay = Duration::from_millis(50);
    server.add_synthetic(path, slow);
    let lock = ["--lock", redis.url.as_str()];
    let (one, _s1) = replica_with(&garage, "tls", &server.url, "off", &lock, Some(&cert));
    let (two, _s2) = replica_with(&garage, "tls", &server.url, "off", &lock, Some(&cert));
    let clients: Vec<_> = (0..20)
        .map(|i| format!("{}{path}", if i % 2 == 0 { &one.url } else { &two.url }))
        .map(|u| std::thread::spawn(move || fetch(&u)))
        .collect();
    for client in clients {
        let (status, _, len) = client.join().unwrap();
        assert_eq!((status, len), (200, size));
    }
    assert_eq!(server.count(path), 1, "upstream fetches");
    for replica in [&one, &two] {
        let logs = replica.logs();
        assert!(!logs.contains("fetch lock unavailable"), "{logs}");
    }
    // The lock went through Redis (its only port is the TLS one): taken
    // with SET, released with a script once the zip is stored.
    let released = until(Duration::from_secs(30), || {
        redis
            .cli(&["--scan", "--pattern", "modproxy:fetch:*"])
            .trim()
            .is_empty()
    });
    assert!(released, "the lock was never released");
    let stats = redis.cli(&["INFO", "commandstats"]);
    assert!(stats.contains("cmdstat_set:calls="), "{stats}");
    assert!(stats.contains("cmdstat_eval:calls="), "{stats}");

    // A replica that does not trust the server's certificate gets no
    // lock, and serves all the same.
    let other = "/example.com/untrusted/@v/v1.0.0.zip";
    server.add_synthetic(other, Synthetic::fast(256 << 10, 12));
    let (three, _s3) = replica_with(&garage, "tls", &server.url, "off", &lock, None);
    let (status, _, len) = fetch(&format!("{}{other}", three.url));
    assert_eq!((status, len), (200, 256 << 10));
    let refused = until(Duration::from_secs(10), || {
        let logs = three.logs();
        logs.contains("fetch lock unavailable") && logs.contains("certificate")
    });
    assert!(refused, "{}", three.logs());
}

#[test]
fn a_replica_killed_mid_upload_leaves_nothing_half_written() {
    let garage = Garage::start();
    let upstream = RefProxy::start();
    let server = FaultServer::start(&upstream.url);
    let size: u64 = 48 << 20;
    let (reader, _s0) = replica(&garage, "killed", &server.url, "off", &["--cached-only"]);
    let visible = |path: &str| {
        let url = format!("{}{path}", reader.url);
        assert!(served(&url, Duration::from_secs(60)), "{path} never shows");
    };
    // A baseline: a zip is handed over once verified and uploaded after;
    // how long the download takes, and from the client having it all
    // until the other replica sees it.
    server.add_synthetic("/example.com/k0/@v/v1.0.0.zip", Synthetic::fast(size, 1));
    let (first, _s) = replica(&garage, "killed", &server.url, "off", &[]);
    let url = format!("{}/example.com/k0/@v/v1.0.0.zip", first.url);
    let started = Instant::now();
    assert_eq!(fetch(&url).0, 200);
    let download = started.elapsed();
    let handed = Instant::now();
    visible("/example.com/k0/@v/v1.0.0.zip");
    let upload = handed.elapsed();
    drop(first);
    // Whatever the moment of the kill, the object is absent or complete.
    let killed = |n: u32, when: &str, kill: &dyn Fn(&mut Modproxy, &str)| {
        let path = format!("/example.com/k{n}/@v/v1.0.0.zip");
        server.add_synthetic(&path, Synthetic::fast(size, u64::from(n) + 1));
        let (mut victim, _s) = replica(&garage, "killed", &server.url, "off", &[]);
        kill(&mut victim, &path);
        let (status, _, len) = fetch(&format!("{}{path}", reader.url));
        assert!(
            status == 404 || (status == 200 && len as u64 == size),
            "{path} killed {when}: {status}, {len} bytes visible"
        );
        status
    };
    // Halfway through the download.
    killed(1, "mid-download", &|victim, path| {
        let url = format!("{}{path}", victim.url);
        let client = std::thread::spawn(move || {
            let _ = std::panic::catch_unwind(|| fetch(&url));
        });
        std::thread::sleep(download / 2);
        victim.kill();
        let _ = client.join();
    });
    // At points spread over the upload, counted from the moment the
    // client has the zip.
    let mut seen = Vec::new();
    for (n, percent) in (2..).zip([0u32, 10, 25, 40, 55, 70, 85, 100]) {
        let when = format!("at {percent}% of the upload");
        seen.push(killed(n, &when, &|victim, path| {
            assert_eq!(fetch(&format!("{}{path}", victim.url)).0, 200, "{path}");
            std::thread::sleep(upload * percent / 100);
            victim.kill();
        }));
    }
    // Right after the hand-over the upload has barely begun: nothing shows.
    assert_eq!(seen[0], 404, "{seen:?}");
    // Once it shows, a kill takes nothing away.
    let status = killed(10, "once visible", &|victim, path| {
        assert_eq!(fetch(&format!("{}{path}", victim.url)).0, 200, "{path}");
        visible(path);
        victim.kill();
    });
    assert_eq!(status, 200);
}

#[test]
fn stopping_redis_mid_run_keeps_every_request_succeeding() {
    let garage = Garage::start();
    let mut redis = Redis::start();
    let upstream = RefProxy::start();
    let server = FaultServer::start(&upstream.url);
    let lock = ["--lock", redis.url.as_str()];
    let (one, _s1) = replica(&garage, "outage", &server.url, "off", &lock);
    let (two, _s2) = replica(&garage, "outage", &server.url, "off", &lock);
    // A new zip asked of both replicas at once, so one of them waits on
    // the other's lock while Redis is up; how many upstream fetches.
    let round = |round: u64| {
        let path = format!("/example.com/r{round}/@v/v1.0.0.zip");
        server.add_synthetic(&path, Synthetic::fast(256 << 10, round + 100));
        let clients: Vec<_> = [&one, &two]
            .iter()
            .map(|r| {
                let url = format!("{}{path}", r.url);
                std::thread::spawn(move || fetch(&url))
            })
            .collect();
        for client in clients {
            let (status, _, len) = client.join().unwrap();
            assert_eq!((status, len), (200, 256 << 10), "round {round}");
        }
        server.count(&path)
    };
    for n in 0..20u64 {
        if n == 7 {
            redis.stop();
        }
        if n == 14 {
            redis.restart();
        }
        let fetches = round(n);
        if n < 7 {
            assert_eq!(fetches, 1, "round {n}: upstream fetches");
        }
    }
    // Redis is back and left alone no longer (10 s after its last
    // failure): the replicas lock again.
    std::thread::sleep(Duration::from_secs(11));
    assert_eq!(round(20), 1, "after the outage: upstream fetches");
    // Restarted between two requests: the connection each replica kept
    // is dead, and the next lock is taken on a new one at once.
    redis.stop();
    redis.restart();
    assert_eq!(round(21), 1, "after a restart: upstream fetches");
}

#[test]
fn gc_and_stats_work_on_the_bucket() {
    let garage = Garage::start();
    let upstream = RefProxy::start();
    let server = FaultServer::start(&upstream.url);
    let (proxy, scratch) = replica(&garage, "gc", &server.url, "off", &[]);
    for n in 1..=3u64 {
        let path = format!("/example.com/g{n}/@v/v1.0.0.zip");
        server.add_synthetic(&path, Synthetic::fast(1 << 20, n));
        assert_eq!(fetch(&format!("{}{path}", proxy.url)).0, 200);
        // Stored after the answer; object storage keeps write times to
        // the second.
        let stored = format!("{}/cached-only{path}", proxy.url);
        assert!(
            served(&stored, Duration::from_secs(30)),
            "{path} never stored"
        );
        std::thread::sleep(Duration::from_millis(1100));
    }
    let store = garage.store("gc");
    let env = garage.env();
    let (ok, out) = run_modproxy("stats", scratch.path(), &["--store", &store], &env);
    assert!(
        ok && out.contains("3 module versions") && out.contains("oldest: example.com/g1@v1.0.0"),
        "{out}"
    );
    let (ok, out) = run_modproxy(
        "gc",
        scratch.path(),
        &["--store", &store, "--max-size", "2500KiB"],
        &env,
    );
    assert!(ok && out.contains("evicted example.com/g1@v1.0.0"), "{out}");
    // A replica started now (the running one may still hold a small zip
    // it served in memory) sees what is left in the bucket.
    let (after, _s) = replica(&garage, "gc", &server.url, "off", &[]);
    let cached = |n: u32| {
        let url = format!("{}/cached-only/example.com/g{n}/@v/v1.0.0.zip", after.url);
        fetch(&url).0
    };
    assert_eq!((cached(1), cached(3)), (404, 200));
}

/// nginx from Debian, with the shipped example config (`deploy/replicas`)
/// pointed at `replicas` and listening on a free loopback port.
struct Nginx {
    child: std::process::Child,
    url: String,
    _dir: TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // TERM: the master stops its workers before it exits (a KILL of
        // the master alone left them running after every test run).
        let pid = self.child.id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        let child = &mut self.child;
        let stopped = crate::util::until(Duration::from_secs(10), || {
            matches!(child.try_wait(), Ok(Some(_)))
        });
        if !stopped {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Nginx {
    fn start(replicas: [&str; 2]) -> Nginx {
        let dir = TempDir::new("nginx");
        std::fs::create_dir_all(dir.path().join("logs")).unwrap();
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/replicas/nginx.conf");
        let shipped = std::fs::read_to_string(&path).unwrap();
        let port = crate::util::free_port();
        let conf = shipped
            .replace("127.0.0.1:3001", replicas[0])
            .replace("127.0.0.1:3002", replicas[1])
            .replace("listen 3000;", &format!("listen 127.0.0.1:{port};"));
        for (from, what) in [("127.0.0.1:3001", "replica"), ("listen 3000;", "listen")] {
            assert!(shipped.contains(from), "the example's {what} line changed");
        }
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let prefix = format!("{}/", dir.path().display());
        let child = std::process::Command::new(crate::util::required_env("MODPROXY_TEST_NGINX"))
            .args(["-p", &prefix, "-c", conf_path.to_str().unwrap(), "-g"])
            .arg(format!(
                "daemon off; pid {prefix}nginx.pid; error_log {prefix}logs/error.log;"
            ))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start nginx");
        let up = crate::util::wait_listening(port, Duration::from_secs(20));
        assert!(up, "nginx did not start with the example config");
        Nginx {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }
}

#[test]
fn the_shipped_replica_example_serves_the_go_command_through_nginx() {
    let garage = Garage::start();
    let redis = Redis::start();
    let upstream = RefProxy::start();
    let recorder = FaultServer::start(&upstream.url);
    let lock = ["--lock", redis.url.as_str()];
    let (one, _s1) = replica(&garage, "example", &recorder.url, REF_SUMDB, &lock);
    let (two, _s2) = replica(&garage, "example", &recorder.url, REF_SUMDB, &lock);
    let (a, b) = (one.addr.to_string(), two.addr.to_string());
    let nginx = Nginx::start([&a, &b]);

    let project = hello_project();
    GoEnv::new().ok(project.path(), &nginx.url, &["mod", "tidy"]);
    // Both replicas answered some of it.
    for replica in [&one, &two] {
        assert!(
            replica.logs().contains("status=200"),
            "a replica behind nginx served nothing:\n{}",
            replica.logs()
        );
    }
    let zips: Vec<String> = recorder
        .paths()
        .into_iter()
        .filter(|p| p.ends_with(".zip"))
        .collect();
    assert!(!zips.is_empty());
    for zip in &zips {
        assert_eq!(recorder.count(zip), 1, "{zip} fetched more than once");
    }
    // A fresh client through either replica: everything from the bucket.
    for zip in &zips {
        let url = format!("{}/cached-only{zip}", nginx.url);
        assert!(
            served(&url, Duration::from_secs(15)),
            "{zip} not in the bucket"
        );
    }
    GoEnv::new().ok(project.path(), &nginx.url, &["mod", "download"]);
    for zip in &zips {
        assert_eq!(recorder.count(zip), 1, "{zip} fetched again");
    }
}
