//! Benchmark (not a test): a cold `go mod tidy` of a project with a deep
//! module graph, behind an upstream that adds a fixed latency to every
//! request, straight to that upstream vs through modproxy with prefetch.
//! Runs are alternated (A B A B …) so machine drift cancels; prints each
//! side's times and the ratio. Run it with `bench/prefetch.sh`.
//!
//! The graph is synthetic: a tree of `example.com/gN` modules, each
//! requiring `WIDTH` others down to `DEPTH` levels, declaring `go 1.16` so
//! the go command loads every go.mod. The Go reference proxy serves it and
//! signs it in its checksum database (both behind the delay), so the go
//! command verifies every module as it does by default. `BENCH_SUMDB=off`
//! runs the same without a checksum database, `BENCH_PREFETCH=zip` with
//! `--prefetch zip`.

// A benchmark reports on stdout.
#![allow(clippy::print_stdout)]

#[allow(dead_code)]
#[path = "../tests/integration/fault.rs"]
mod fault;
#[allow(dead_code)]
#[path = "../tests/integration/util.rs"]
mod util;

use std::time::{Duration, Instant};

use fault::{FaultServer, Mode};
use util::{module_tree_project, write_module_tree, GoEnv, Modproxy, RefProxy, TempDir, REF_SUMDB};

const DEPTH: u32 = 4;
const WIDTH: u32 = 3;

fn main() {
    let latency_ms: u64 = std::env::var("BENCH_LATENCY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let prefetch = std::env::var("BENCH_PREFETCH").unwrap_or_else(|_| "mod".into());
    let sumdb = std::env::var("BENCH_SUMDB").map_or(true, |v| v != "off");
    let modules_dir = TempDir::new("bench-modules");
    let modules = write_module_tree(modules_dir.path(), DEPTH, WIDTH);
    let reference = RefProxy::start_in(modules_dir.path());
    let server = FaultServer::start(&reference.url);
    server.set_mode(Mode::Delay(Duration::from_millis(latency_ms)));
    let checksum_db = if sumdb { REF_SUMDB } else { "off" };
    println!(
        "cold `go mod tidy`, {modules} modules ({DEPTH} levels, width {WIDTH}), {latency_ms} ms per upstream request, checksum database {}, --prefetch {prefetch}, {rounds} rounds alternated",
        if sumdb { "on" } else { "off" }
    );

    let (mut direct, mut through) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        direct.push(tidy(&server.url, checksum_db));
        let data = TempDir::new("bench-data");
        let proxy = Modproxy::start(
            data.path(),
            &[
                "--upstream",
                &server.url,
                "--sumdb",
                checksum_db,
                "--prefetch",
                &prefetch,
            ],
        );
        through.push(tidy(&proxy.url, checksum_db));
        if std::env::var_os("BENCH_TRACE").is_some() {
            // What modproxy did, with timestamps: where the time went.
            println!("{}", proxy.logs());
        }
        println!(
            "round {}: direct {:.2}s, through modproxy {:.2}s",
            round + 1,
            direct[round].as_secs_f64(),
            through[round].as_secs_f64()
        );
    }
    let ratios: Vec<f64> = direct
        .iter()
        .zip(&through)
        .map(|(d, t)| t.as_secs_f64() / d.as_secs_f64())
        .collect();
    let (min, med, max) = stats(ratios);
    println!("ratio through/direct: min {min:.2} median {med:.2} max {max:.2}");
    let verdict = if med <= 0.5 { "MET" } else { "NOT MET" };
    println!("target <= 0.50x: {verdict} (median {med:.2}x)");
}

/// One cold `go mod tidy` (fresh module cache) of a project importing the
/// root of the graph; returns the wall time.
fn tidy(goproxy: &str, checksum_db: &str) -> Duration {
    let project = module_tree_project();
    let go = GoEnv::new().with_env("GOSUMDB", checksum_db);
    let started = Instant::now();
    go.ok(project.path(), goproxy, &["mod", "tidy"]);
    started.elapsed()
}

fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (v[0], v[v.len() / 2], v[v.len() - 1])
}
