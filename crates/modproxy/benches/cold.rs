//! Benchmark (not a test): the cost of a cold miss through modproxy.
//!
//! 1. Time to first byte of a cold zip: the tests' fault server streams a
//!    synthetic 8 MiB zip (64 KiB pieces, 1 ms apart); each round asks a new
//!    version straight from it and through modproxy (nothing cached),
//!    alternated, and prints the median difference.
//! 2. A cold `go mod download` of a 57-module graph (the Go reference
//!    proxy and its checksum database) straight from the upstream vs
//!    through a fresh modproxy (default settings), alternated, as a ratio:
//!    on loopback, and with 20 ms added to every upstream request (a
//!    nearby mirror); `BENCH_LATENCY_MS` picks one. Each round also runs
//!    once more through the then warm modproxy: the cost of the hop alone;
//!    and modproxy's CPU time in the cold run. Baselines for the hop: the
//!    same cold download through nginx as a reverse proxy (upstream
//!    keep-alive, no verification), without a cache and with a fresh disk
//!    cache: what any extra hop, and any hop that stores what passes, costs
//!    on this machine, where the go command, the proxy and the upstream
//!    share the cores. Targets: on loopback, no slower than the caching
//!    nginx in the same round; with 20 ms, half the straight time.
//!    `BENCH_ROUNDS` (4) sets the rounds, `BENCH_ARGS` adds modproxy
//!    flags; `BENCH_TRACE=1` prints modproxy's request log.
//! 3. The same graph's `.mod` and `.zip` files asked one at a time (no
//!    go command in between), straight and through a fresh modproxy: the
//!    median latency of a miss vs the upstream's.
//!
//! `BENCH_ONLY=ttfb`, `download` or `miss` runs one of them.
//!
//! Run it with `bench/cold.sh`.

// A benchmark reports on stdout.
#![allow(clippy::print_stdout)]

#[allow(dead_code)]
#[path = "../tests/integration/fault.rs"]
mod fault;
#[allow(dead_code)]
#[path = "../tests/integration/util.rs"]
mod util;

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fault::{FaultServer, Synthetic};
use util::{files_under, until, write_module_tree, GoEnv, Modproxy, RefProxy, TempDir, REF_SUMDB};

const ROUNDS: u32 = 9;

fn main() {
    // `BENCH_ONLY=ttfb|download|miss` runs one of the three.
    let only = std::env::var("BENCH_ONLY").ok();
    let runs = |what: &str| only.as_deref().is_none_or(|o| o == what);
    if runs("ttfb") && std::env::var_os("BENCH_TRACE").is_none() {
        time_to_first_byte();
    }
    if !runs("download") && !runs("miss") {
        return;
    }
    let latencies = match std::env::var("BENCH_LATENCY_MS") {
        Ok(v) => vec![v.parse().expect("BENCH_LATENCY_MS: milliseconds")],
        // Loopback (only our own cost shows) and a nearby mirror.
        Err(_) => vec![0, 20],
    };
    let modules_dir = TempDir::new("bench-modules");
    let modules = write_module_tree(modules_dir.path(), 3, 7);
    let reference = RefProxy::start_in(modules_dir.path());
    if runs("download") {
        for latency_ms in latencies {
            cold_download(&reference, modules, latency_ms);
        }
    }
    if runs("miss") {
        miss_latency(&reference, modules);
    }
}

/// One miss at a time, on one keep-alive connection: each module's
/// `.mod`, then its `.zip`, straight and through a fresh modproxy
/// (verifying, no prefetch), alternated; the median of each. What a miss
/// costs beyond the upstream's own answer, without the go command's work
/// in between.
fn miss_latency(reference: &RefProxy, modules: u32) {
    let data = TempDir::new("bench-miss");
    let args = ["--upstream", &reference.url, "--sumdb", REF_SUMDB];
    let proxy = Modproxy::start(data.path(), &args);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::new();
    let timed = |url: String| {
        runtime.block_on(async {
            let started = Instant::now();
            let response = client.get(&url).send().await.unwrap();
            assert_eq!(response.status(), 200, "{url}");
            response.bytes().await.unwrap();
            started.elapsed().as_secs_f64() * 1000.0
        })
    };
    for ext in ["mod", "zip"] {
        let (mut direct, mut through) = (Vec::new(), Vec::new());
        for n in 1..=modules {
            let path = format!("/example.com/g{n}/@v/v1.0.0.{ext}");
            if n % 2 == 0 {
                direct.push(timed(format!("{}{path}", reference.url)));
                through.push(timed(format!("{}{path}", proxy.url)));
            } else {
                through.push(timed(format!("{}{path}", proxy.url)));
                direct.push(timed(format!("{}{path}", reference.url)));
            }
        }
        let (d, t) = (median(direct), median(through));
        println!(
            "one cold .{ext} at a time ({modules}): upstream {d:.2} ms, through modproxy {t:.2} ms, +{:.2} ms",
            t - d
        );
    }
}

fn time_to_first_byte() {
    let server = FaultServer::start("http://127.0.0.1:9");
    let data = TempDir::new("bench-cold");
    let proxy = Modproxy::start(data.path(), &["--upstream", &server.url, "--sumdb", "off"]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::new();
    let (mut direct, mut through) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS * 2 {
        let path = format!("/example.com/ttfb/@v/v1.0.{round}.zip");
        server.add_synthetic(
            &path,
            Synthetic {
                chunk: 64 << 10,
                delay: Duration::from_millis(1),
                ..Synthetic::fast(8 << 20, u64::from(round) + 1)
            },
        );
        // Alternate which side goes first.
        let base = if round % 2 == 0 {
            &server.url
        } else {
            &proxy.url
        };
        let ttfb = runtime.block_on(first_byte(&client, &format!("{base}{path}")));
        if round % 2 == 0 {
            direct.push(ttfb);
        } else {
            through.push(ttfb);
        }
    }
    let ms = |v: &[f64]| median(v.to_vec());
    let (d, t) = (ms(&direct), ms(&through));
    let extra = t - d;
    println!(
        "time to first byte of a cold 8 MiB zip ({ROUNDS} each): upstream {d:.2} ms, through modproxy {t:.2} ms, +{extra:.2} ms (target <= +2 ms) {}",
        verdict(extra <= 2.0)
    );
}

/// Milliseconds until the first body bytes of `url` arrive; reads the rest.
async fn first_byte(client: &reqwest::Client, url: &str) -> f64 {
    let started = Instant::now();
    let mut response = client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    let first = response.chunk().await.unwrap().expect("a body");
    assert!(!first.is_empty());
    let ttfb = started.elapsed().as_secs_f64() * 1000.0;
    while response.chunk().await.unwrap().is_some() {}
    ttfb
}

fn cold_download(reference: &RefProxy, modules: u32, latency_ms: u64) {
    let delayed = FaultServer::start(&reference.url);
    delayed.set_mode(fault::Mode::Delay(Duration::from_millis(latency_ms)));
    let upstream = if latency_ms == 0 {
        reference.url.clone()
    } else {
        delayed.url.clone()
    };
    let bare = NginxProxy::start(&upstream, false);
    // Straight, through nginx, through a caching nginx, through modproxy:
    // one of each per round, the order rotated so each side takes each
    // place once.
    let rounds: usize =
        std::env::var("BENCH_ROUNDS").map_or(4, |v| v.parse().expect("BENCH_ROUNDS"));
    let mut times = [const { Vec::new() }; 4];
    // Every tree a round makes (module caches, the stores, nginx's cache)
    // is kept until the end: a file system that deleted thousands of
    // files seconds ago makes new ones slowly, whoever deleted them, and
    // a proxy in service does not delete its store between builds. With
    // `BENCH_DELETE=1` each tree is deleted when its download ends.
    let mut kept = Kept::default();
    for round in 0..rounds {
        let mut notes = String::new();
        for side in (0..4).map(|i| (i + round) % 4) {
            let seconds = match side {
                0 => download(&upstream, &mut kept),
                1 => download(&bare.url, &mut kept),
                2 => {
                    let mut cache = NginxProxy::start(&upstream, true);
                    let seconds = download(&cache.url, &mut kept);
                    assert!(cache.stored() > 0, "the caching nginx stored nothing");
                    cache.stop();
                    kept.keep(cache);
                    seconds
                }
                _ => {
                    let (seconds, note) = through_modproxy(&upstream, &mut kept);
                    notes = note;
                    seconds
                }
            };
            times[side].push(seconds);
        }
        let [direct, hop, stored, through] = &times;
        println!(
            "  round {}: straight {:.2}s, through nginx {:.2}s, through caching nginx {:.2}s, through modproxy {:.2}s ({notes})",
            round + 1,
            direct[round],
            hop[round],
            stored[round],
            through[round]
        );
    }
    let [direct, hop, stored, through] = &times;
    let what =
        format!("cold `go mod download` of {modules} modules, upstream latency {latency_ms} ms");
    for (how, times) in [("nginx", hop), ("a caching nginx (fresh cache)", stored)] {
        let (min, med, max) = ratios(direct, times);
        println!(
            "{what}: through {how}/straight min {min:.2} median {med:.2} max {max:.2} (baseline)"
        );
    }
    let (min, med, max) = ratios(direct, through);
    // On loopback modproxy is held to what a caching proxy without
    // verification costs; with a real upstream latency, to halving it.
    let (goal, against) = if latency_ms == 0 {
        (1.0, stored)
    } else {
        (0.5, direct)
    };
    println!(
        "{what}: through modproxy/straight min {min:.2} median {med:.2} max {max:.2}{}",
        if latency_ms == 0 {
            String::new()
        } else {
            format!(" (target <= {goal}) {}", verdict(med <= goal))
        }
    );
    if latency_ms == 0 {
        let (min, med, max) = ratios(against, through);
        println!(
            "{what}: through modproxy/through a caching nginx, same round, min {min:.2} median {med:.2} max {max:.2} (target <= {goal}) {}",
            verdict(med <= goal)
        );
    }
}

/// One cold download through a fresh modproxy (default settings, plus
/// `BENCH_ARGS`); its wall time, and a note on modproxy's CPU time in it
/// and the same download again through the then warm modproxy.
fn through_modproxy(upstream: &str, kept: &mut Kept) -> (f64, String) {
    let data = TempDir::new("bench-data");
    // `--prefetch mod` is modproxy's default; the tests' helper turns
    // prefetch off unless asked, so ask.
    let mut args = vec!["--upstream", upstream, "--sumdb", REF_SUMDB];
    let extra = std::env::var("BENCH_ARGS").unwrap_or_default();
    if !extra.contains("--prefetch") {
        args.extend(["--prefetch", "mod"]);
    }
    args.extend(extra.split_whitespace());
    let proxy = Modproxy::start(data.path(), &args);
    let before = cpu_seconds(proxy.pid());
    let seconds = download(&proxy.url, kept);
    // The store writes that follow the run count too (and must not
    // overlap the warm run).
    std::thread::sleep(Duration::from_millis(500));
    let (user, system) = cpu_seconds(proxy.pid());
    // Blocking-pool threads linger idle for seconds: about the most the
    // run had at once.
    let threads = std::fs::read_dir(format!("/proc/{}/task", proxy.pid())).map_or(0, |d| d.count());
    // The same again with everything cached: what the extra hop costs
    // alone, without the fetching, verifying and storing.
    let warm = download(&proxy.url, kept);
    if std::env::var_os("BENCH_TRACE").is_some() {
        // What modproxy did, with timestamps: where the time went.
        println!("{}", proxy.logs());
    }
    let note = format!(
        "modproxy CPU {:.2}s user, {:.2}s system, {threads} threads; all cached: {warm:.2}s",
        user - before.0,
        system - before.1
    );
    drop(proxy);
    kept.keep(data);
    (seconds, note)
}

/// Min, median and max of `after[i] / before[i]`.
fn ratios(before: &[f64], after: &[f64]) -> (f64, f64, f64) {
    let mut r: Vec<f64> = before.iter().zip(after).map(|(b, a)| a / b).collect();
    r.sort_by(f64::total_cmp);
    (r[0], r[r.len() / 2], r[r.len() - 1])
}

/// nginx as a reverse proxy in front of `upstream`: no verification,
/// HTTP/1.1 keep-alive to the upstream, with or without a (fresh) disk
/// cache; one process (no master), so stopping it by its PID stops all
/// of it.
struct NginxProxy {
    child: Child,
    url: String,
    dir: TempDir,
}

impl NginxProxy {
    fn start(upstream: &str, cache: bool) -> NginxProxy {
        let dir = TempDir::new("bench-nginx");
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let target = upstream.strip_prefix("http://").expect("an http upstream");
        // `host:port` and the base path with a trailing slash (`/mod/`, `/`).
        let (host, base) = match target.split_once('/') {
            Some((host, path)) => (host, format!("/{}/", path.trim_end_matches('/'))),
            None => (target, "/".to_string()),
        };
        let caching = if cache {
            format!(
                "proxy_cache_path {}/cache levels=1:2 keys_zone=mods:10m use_temp_path=off;\n\
                 proxy_cache mods; proxy_cache_valid 200 1h;",
                dir.path().display()
            )
        } else {
            String::new()
        };
        let conf = format!(
            "master_process off;\n\
             pid {dir}/nginx.pid;\n\
             error_log {dir}/error.log;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n\
               access_log off;\n\
               client_body_temp_path {dir}; proxy_temp_path {dir};\n\
               fastcgi_temp_path {dir}; uwsgi_temp_path {dir}; scgi_temp_path {dir};\n\
               upstream up {{ server {host}; keepalive 64; }}\n\
               {caching}\n\
               server {{\n\
                 listen 127.0.0.1:{port};\n\
                 location / {{\n\
                   proxy_pass http://up{base};\n\
                   proxy_http_version 1.1;\n\
                   proxy_set_header Connection \"\";\n\
                 }}\n\
               }}\n\
             }}\n",
            dir = dir.path().display()
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new("nginx")
            .args(["-e", "stderr", "-c"])
            .arg(&conf_path)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .spawn()
            .expect("start nginx (bench/cold.sh installs it)");
        let mut bare = NginxProxy {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
        };
        let listening = until(Duration::from_secs(10), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        if !listening {
            bare.stop();
            panic!("nginx did not start listening on port {port}");
        }
        bare
    }

    /// How many files its cache holds.
    fn stored(&self) -> usize {
        files_under(&self.dir.path().join("cache")).len()
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NginxProxy {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One cold `go mod download` (fresh module cache) of a project requiring
/// the root of the tree; returns the wall time in seconds.
fn download(goproxy: &str, kept: &mut Kept) -> f64 {
    let project = TempDir::new("bench-project");
    std::fs::write(
        project.path().join("go.mod"),
        "module example.com/main\n\ngo 1.16\n\nrequire example.com/g1 v1.0.0\n",
    )
    .unwrap();
    let go = GoEnv::new();
    let started = Instant::now();
    go.ok(project.path(), goproxy, &["mod", "download"]);
    let seconds = started.elapsed().as_secs_f64();
    kept.keep(go);
    kept.keep(project);
    seconds
}

/// What a run made, deleted at its end (see [`cold_download`]).
#[derive(Default)]
struct Kept(Vec<Box<dyn std::any::Any>>);

impl Kept {
    fn keep<T: 'static>(&mut self, made: T) {
        if std::env::var_os("BENCH_DELETE").is_none() {
            self.0.push(Box::new(made));
        }
    }
}

/// User and system CPU seconds of process `pid` so far.
fn cpu_seconds(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces): utime and
    // stime are the 12th and 13th, in clock ticks (100 per second here).
    let after = stat.rsplit(')').next().unwrap();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields[i].parse::<f64>().unwrap() / 100.0;
    (ticks(11), ticks(12))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "MET"
    } else {
        "NOT MET"
    }
}
