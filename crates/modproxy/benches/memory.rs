//! Benchmark (not a test): memory and coalescing under load. Measures
//! modproxy's resident memory idle, after serving 10 000 distinct cached
//! files, and while 500 clients download one uncached 100 MB zip at once
//! (which must cost exactly one upstream fetch). Run it with
//! `bench/memory.sh`.

// A benchmark reports on stdout.
#![allow(clippy::print_stdout)]

#[allow(dead_code)]
#[path = "../tests/integration/fault.rs"]
mod fault;
#[allow(dead_code)]
#[path = "../tests/integration/util.rs"]
mod util;

use std::time::{Duration, Instant};

use fault::{FaultServer, Synthetic};
use util::{Modproxy, TempDir};

fn main() {
    let clients: usize = env_or("BENCH_CLIENTS", 500);
    let zip_mb: u64 = env_or("BENCH_ZIP_MB", 100);
    let server = FaultServer::start("http://127.0.0.1:9");
    let path = "/example.com/huge/@v/v1.0.0.zip";
    server.add_synthetic(path, Synthetic::fast(zip_mb << 20, 5));

    let data = TempDir::new("bench-memory");
    let modules = 5000;
    for i in 0..modules {
        let dir = data.path().join(format!("example.com/m{i}/@v"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("v1.0.0.info"), r#"{"Version":"v1.0.0"}"#).unwrap();
        std::fs::write(dir.join("v1.0.0.mod"), format!("module example.com/m{i}\n")).unwrap();
    }
    let proxy = Modproxy::start(
        data.path(),
        &[
            "--upstream",
            &server.url,
            "--sumdb",
            "off",
            // As deployed: prefetch on.
            "--prefetch",
            "mod",
        ],
    );
    std::thread::sleep(Duration::from_secs(1));
    let idle = rss(proxy.pid());

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let base = proxy.url.clone();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        for i in 0..modules {
            for ext in ["info", "mod"] {
                let url = format!("{base}/example.com/m{i}/@v/v1.0.0.{ext}");
                let r = client.get(&url).send().await.unwrap();
                assert_eq!(r.status(), 200);
                r.bytes().await.unwrap();
            }
        }
    });
    let after_files = rss(proxy.pid());

    let started = Instant::now();
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (pid, sampling) = (proxy.pid(), sampling.clone());
        // Where the peak is: anonymous memory, mapped files, threads.
        std::thread::spawn(move || {
            let mut peak = [0u64; 3];
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                for (i, field) in ["RssAnon:", "RssFile:", "Threads:"].iter().enumerate() {
                    peak[i] = peak[i].max(status_value(pid, field));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            peak
        })
    };
    let url = format!("{base}{path}");
    let sizes = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let tasks: Vec<_> = (0..clients)
            .map(|_| {
                let (client, url) = (client.clone(), url.clone());
                tokio::spawn(async move {
                    let mut r = client.get(&url).send().await.unwrap();
                    let mut n = 0u64;
                    while let Some(chunk) = r.chunk().await.unwrap() {
                        n += chunk.len() as u64;
                    }
                    n
                })
            })
            .collect();
        let mut sizes = Vec::new();
        for t in tasks {
            sizes.push(t.await.unwrap());
        }
        sizes
    });
    let elapsed = started.elapsed();
    let peak = hwm(proxy.pid());
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let [anon, file, threads] = sampler.join().unwrap();
    let complete = sizes.iter().filter(|n| **n == zip_mb << 20).count();

    let mb = |b: u64| b as f64 / (1 << 20) as f64;
    println!(
        "idle RSS: {:.1} MiB (target <= 16 MiB) {}",
        mb(idle),
        verdict(mb(idle) <= 16.0)
    );
    println!(
        "RSS after serving {} distinct cached files: {:.1} MiB (target <= 64 MiB) {}",
        modules * 2,
        mb(after_files),
        verdict(mb(after_files) <= 64.0)
    );
    println!(
        "{clients} concurrent downloads of one uncached {zip_mb} MB zip: {complete}/{clients} complete in {:.1}s, {} upstream fetch(es) (target 1) {}, peak RSS {:.1} MiB (target <= 64 MiB) {}",
        elapsed.as_secs_f64(),
        server.count(path),
        verdict(server.count(path) == 1 && complete == clients),
        mb(peak),
        verdict(mb(peak) <= 64.0)
    );
    println!(
        "  during the downloads, peaks: anonymous {:.1} MiB, file-backed {:.1} MiB, {threads} threads",
        anon as f64 / 1024.0,
        file as f64 / 1024.0
    );
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "MET"
    } else {
        "NOT MET"
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A number from `/proc/PID/status` (for sizes: KiB).
fn status_value(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn rss(pid: u32) -> u64 {
    status_value(pid, "VmRSS:") * 1024
}

fn hwm(pid: u32) -> u64 {
    status_value(pid, "VmHWM:") * 1024
}
