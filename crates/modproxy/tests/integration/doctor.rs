//! `modproxy doctor` against a healthy upstream (the reference proxy), a
//! blackholed one (accepts, never answers) and a refusing port: each is
//! reported for what it is, within its time bounds, and the suggested
//! GOPROXY line keeps only what works.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::fault::{FaultServer, Mode};
use crate::util::{goroot, RefProxy, TempDir, REF_SUMDB};

/// Runs `modproxy doctor --json ARGS` with the go command's settings
/// `env` (and `go` on PATH, so `go env -json` is what is read).
fn doctor(env: &[(&str, &str)], args: &[&str]) -> (Output, serde_json::Value, Duration) {
    let home = TempDir::new("doctor-home");
    let path = format!(
        "{}:{}",
        goroot().join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_modproxy"))
        .arg("doctor")
        .arg("--json")
        .args(args)
        .current_dir(home.path())
        .env_clear()
        .env("PATH", path)
        .env("HOME", home.path())
        .env("GOROOT", goroot())
        .env("GOTOOLCHAIN", "local")
        .envs(env.iter().copied())
        .output()
        .expect("run modproxy doctor");
    let took = started.elapsed();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "doctor printed no JSON ({e}):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, json, took)
}

/// The first failing step of the check of `what` on `base`, as
/// (step, verdict); `None` if every step passed.
fn failed_step(report: &serde_json::Value, what: &str, base: &str) -> Option<(String, String)> {
    let check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["what"] == what && c["base"] == base)
        .unwrap_or_else(|| panic!("no {what} check of {base}: {report:#}"));
    check["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["verdict"] != "ok" && s["verdict"] != "skipped")
        .map(|s| {
            (
                s["step"].as_str().unwrap().into(),
                s["verdict"].as_str().unwrap().into(),
            )
        })
}

/// A loopback port nothing listens on.
fn refusing_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}/mod")
}

#[test]
fn healthy_blackholed_and_refusing_upstreams_are_told_apart() {
    let upstream = RefProxy::start();
    let blackhole = FaultServer::start(&upstream.url);
    blackhole.set_mode(Mode::Hang);
    let refusing = refusing_url();
    // A public proxy too (unreachable from the tests' machine, like the
    // other two): GOPRIVATE paths missing from GONOPROXY would go there.
    let goproxy = format!(
        "{},{},https://proxy.golang.org,{}",
        blackhole.url, refusing, upstream.url
    );
    let (out, report, took) = doctor(
        &[
            ("GOPROXY", &goproxy),
            ("GOSUMDB", REF_SUMDB),
            ("GOPRIVATE", "corp.example.com"),
            ("GONOPROXY", "other.example.com"),
        ],
        &["--timeout", "1s", "--module", "rsc.io/quote"],
    );
    assert_eq!(report["environment_source"], "go env -json", "{report:#}");
    assert_eq!(
        failed_step(&report, "proxy", &upstream.url),
        None,
        "{report:#}"
    );
    assert_eq!(
        failed_step(&report, "proxy", &blackhole.url),
        Some(("first byte".into(), "timeout".into())),
        "{report:#}"
    );
    assert_eq!(
        failed_step(&report, "proxy", &refusing),
        Some(("connect".into(), "failed".into())),
        "{report:#}"
    );
    // The checksum database is served by the healthy proxy.
    assert_eq!(
        failed_step(&report, "checksum database via proxy", &upstream.url),
        None,
        "{report:#}"
    );
    // Each step is bounded (1 s) and the checks run together.
    assert!(took < Duration::from_secs(8), "took {took:?}");
    let fix: Vec<&str> = report["fix"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    // GOPROXY and GONOPROXY are set in the environment, where `go env -w`
    // cannot override them: the fix says `export`.
    assert!(
        fix.contains(&format!("export GOPROXY={}", upstream.url).as_str()),
        "{fix:?}"
    );
    assert!(
        fix.contains(&"export GONOPROXY=other.example.com,corp.example.com"),
        "{fix:?}"
    );
    assert_eq!(report["verdict"], "degraded");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_healthy_setup_is_healthy_and_a_dead_one_broken() {
    let upstream = RefProxy::start();
    let (out, report, _) = doctor(
        &[("GOPROXY", &upstream.url), ("GOSUMDB", REF_SUMDB)],
        &["--timeout", "1s", "--module", "rsc.io/quote"],
    );
    assert_eq!(report["verdict"], "healthy", "{report:#}");
    assert_eq!(out.status.code(), Some(0));
    assert!(report["fix"].as_array().unwrap().is_empty(), "{report:#}");

    let (out, report, _) = doctor(
        &[("GOPROXY", &refusing_url()), ("GOSUMDB", REF_SUMDB)],
        &["--timeout", "1s"],
    );
    assert_eq!(report["verdict"], "broken", "{report:#}");
    assert_eq!(out.status.code(), Some(2));
    let messages = report["findings"].to_string();
    assert!(messages.contains("no GOPROXY entry works"), "{messages}");
    assert!(messages.contains("checksum database"), "{messages}");
}
