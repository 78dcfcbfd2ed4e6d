//! Benchmark (not a test): a cold `go mod tidy` of a project with a deep
//! module graph, behind an upstream that adds a fixed latency to every
//! request, straight to that upstream vs through modproxy with prefetch.
//! Runs are alternated (A B A B …) so machine drift cancels; prints each
//! side's times and the ratio. Run it with `bench/prefetch.sh`.
//!
//! The graph is synthetic (served by the tests' fault server): a tree of
//! `example.com/gN` modules, each requiring `WIDTH` others down to `DEPTH`
//! levels, declaring `go 1.16` so the go command loads every go.mod.

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
use modproxy_module::modzip::stored_zip;
use util::{GoEnv, Modproxy, TempDir};

const DEPTH: u32 = 4;
const WIDTH: u32 = 3;
const ROUNDS: usize = 3;

fn main() {
    let latency_ms: u64 = std::env::var("BENCH_LATENCY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let server = FaultServer::start("http://127.0.0.1:9");
    let modules = serve_graph(&server);
    server.set_mode(Mode::Delay(Duration::from_millis(latency_ms)));
    println!(
        "cold `go mod tidy`, {modules} modules ({DEPTH} levels, width {WIDTH}), {latency_ms} ms per upstream request, {ROUNDS} rounds alternated"
    );

    let (mut direct, mut through) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        direct.push(tidy(&server.url));
        let data = TempDir::new("bench-data");
        let proxy = Modproxy::start(
            data.path(),
            &[
                "--upstream",
                &server.url,
                "--sumdb",
                "off",
                "--prefetch",
                "mod",
            ],
        );
        through.push(tidy(&proxy.url));
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
fn tidy(goproxy: &str) -> Duration {
    let project = TempDir::new("bench-project");
    std::fs::write(
        project.path().join("go.mod"),
        "module example.com/main\n\ngo 1.16\n",
    )
    .unwrap();
    std::fs::write(
        project.path().join("main.go"),
        "package main\n\nimport _ \"example.com/g1\"\n\nfunc main() {}\n",
    )
    .unwrap();
    let go = GoEnv::new()
        .with_env("GONOSUMDB", "example.com")
        .with_env("GOSUMDB", "off");
    let started = Instant::now();
    go.ok(project.path(), goproxy, &["mod", "tidy"]);
    started.elapsed()
}

/// Serves the module tree; returns how many modules it has.
fn serve_graph(server: &FaultServer) -> u32 {
    let count: u32 = (0..DEPTH).map(|d| WIDTH.pow(d)).sum();
    for n in 1..=count {
        let path = format!("example.com/g{n}");
        let children: Vec<u32> = (1..=WIDTH)
            .map(|i| n * WIDTH - (WIDTH - 1) + i)
            .filter(|c| *c <= count)
            .collect();
        let mut gomod = format!("module {path}\n\ngo 1.16\n");
        for c in &children {
            gomod.push_str(&format!("\nrequire example.com/g{c} v1.0.0\n"));
        }
        let info = r#"{"Version":"v1.0.0","Time":"2024-01-01T00:00:00Z"}"#;
        let prefix = format!("{path}@v1.0.0/");
        let zip = stored_zip(&[
            (format!("{prefix}go.mod"), gomod.clone().into_bytes()),
            (
                format!("{prefix}g.go"),
                format!("package g{n}\n").into_bytes(),
            ),
        ]);
        server.add_static(&format!("/{path}/@v/list"), "v1.0.0\n");
        server.add_static(&format!("/{path}/@v/v1.0.0.info"), info);
        server.add_static(&format!("/{path}/@latest"), info);
        server.add_static(&format!("/{path}/@v/v1.0.0.mod"), &gomod);
        server.add_static_bytes(&format!("/{path}/@v/v1.0.0.zip"), zip);
    }
    count
}

fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (v[0], v[v.len() / 2], v[v.len() - 1])
}
