//! The deployment files under `deploy/`, proven: the real Prometheus
//! scrapes a running modproxy with the shipped scrape config and alert
//! rules, every Grafana panel's expression returns data, the
//! every-upstream-down alert fires when the upstream goes away, and the
//! systemd unit and its environment file pass their checks.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::util::{
    free_port, get_status, get_text, hello_project, required_env, until, wait_listening, GoEnv,
    Modproxy, RefProxy, TempDir,
};

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs a checking tool; its output, failing the test if it fails.
fn check(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e} (scripts/env.sh installs it)"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{program} {args:?}:\n{text}");
    text
}

/// `%XX` for everything but letters and digits (a PromQL query in a URL).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

struct Prometheus {
    child: Child,
    base: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// The real Prometheus with the shipped scrape config pointed at
    /// `target`, scraping and evaluating every second, and the shipped
    /// rules with their `for:` durations cut to 2 s (a test-only copy).
    fn start(dir: &Path, target: &str) -> Prometheus {
        let shipped = read(&deploy().join("prometheus/prometheus.yml"));
        let config = shipped
            .replace("127.0.0.1:3000", target)
            .replace("scrape_interval: 15s", "scrape_interval: 1s")
            .replace("evaluation_interval: 15s", "evaluation_interval: 1s");
        assert_ne!(config, shipped, "the shipped scrape config changed shape");
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        let rules = read(&deploy().join("prometheus/alerts.yml"));
        let fast: Vec<String> = rules
            .lines()
            .map(|l| match l.trim_start().strip_prefix("for: ") {
                Some(_) => format!("{}for: 2s", &l[..l.len() - l.trim_start().len()]),
                None => l.to_string(),
            })
            .collect();
        std::fs::write(dir.join("alerts.yml"), fast.join("\n")).unwrap();
        let port = free_port();
        let child = Command::new(required_env("MODPROXY_TEST_PROMETHEUS"))
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus");
        let base = format!("http://127.0.0.1:{port}");
        let prometheus = Prometheus { child, base };
        let ready = wait_listening(port, Duration::from_secs(30))
            && until(Duration::from_secs(30), || {
                get_status(&format!("{}/-/ready", prometheus.base)).0 == 200
            });
        assert!(ready, "prometheus did not become ready");
        prometheus
    }

    /// The result vector of an instant query.
    fn query(&self, expr: &str) -> Vec<serde_json::Value> {
        let url = format!("{}/api/v1/query?query={}", self.base, encode(expr));
        let body: serde_json::Value = serde_json::from_str(&get_text(&url))
            .unwrap_or_else(|e| panic!("{expr}: not JSON: {e}"));
        assert_eq!(body["status"], "success", "{expr}: {body}");
        body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// Every `expr` of the dashboard's panels, its variables filled in as
/// Grafana would for one job and all instances.
fn dashboard_exprs() -> Vec<(String, String)> {
    let json: serde_json::Value =
        serde_json::from_str(&read(&deploy().join("grafana/modproxy.json"))).unwrap();
    let mut out = Vec::new();
    for panel in json["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            let filled = expr
                .replace("$__rate_interval", "1m")
                .replace("$__range", "5m")
                .replace("$job", "modproxy")
                .replace("$instance", ".*");
            assert!(!filled.contains('$'), "unfilled variable in {expr}");
            out.push((panel["title"].as_str().unwrap_or("").to_string(), filled));
        }
    }
    out
}

#[test]
fn prometheus_scrapes_it_every_panel_has_data_and_the_upstream_alert_fires() {
    let prometheus_dir = TempDir::new("prometheus");
    // The shipped files pass promtool.
    let promtool = Path::new(&required_env("MODPROXY_TEST_PROMETHEUS")).with_file_name("promtool");
    let promtool = promtool.to_str().unwrap();
    check(
        promtool,
        &[
            "check",
            "config",
            deploy().join("prometheus/prometheus.yml").to_str().unwrap(),
        ],
    );
    check(
        promtool,
        &[
            "check",
            "rules",
            deploy().join("prometheus/alerts.yml").to_str().unwrap(),
        ],
    );

    let mut upstream = RefProxy::start();
    let data = TempDir::new("monitored");
    let proxy = Modproxy::verifying(
        &upstream.url,
        data.path(),
        &[
            "--prefetch",
            "mod",
            "--max-size",
            "1GiB",
            // The breaker stays open once the upstream is gone.
            "--breaker-cooldown",
            "10m",
        ],
    );
    let prometheus = Prometheus::start(prometheus_dir.path(), &proxy.addr.to_string());

    // Traffic: a cold download (misses, prefetch, upstream requests), then
    // the same again by a fresh client (hits).
    let project = hello_project();
    GoEnv::new().ok(project.path(), &proxy.url, &["mod", "tidy"]);
    GoEnv::new().ok(project.path(), &proxy.url, &["mod", "download"]);

    let exprs = dashboard_exprs();
    assert!(exprs.len() >= 14, "{exprs:?}");
    let mut empty = Vec::new();
    // Rates need two scrapes after the traffic: poll, bounded.
    let ready = until(Duration::from_secs(60), || {
        empty = exprs
            .iter()
            .filter(|(_, e)| prometheus.query(e).is_empty())
            .cloned()
            .collect();
        empty.is_empty()
    });
    assert!(ready, "dashboard panels without data: {empty:#?}");

    // The upstream goes away: fetches of what is not stored fail, the
    // breaker opens, the alert fires.
    upstream.stop();
    for version in ["v1.0.0", "v1.1.0", "v1.2.0", "v1.3.0", "v1.4.0"] {
        let (status, _) = get_status(&format!("{}/rsc.io/quote/@v/{version}.info", proxy.url));
        assert!(status >= 500, "{version}: {status}");
    }
    let firing = until(Duration::from_secs(60), || {
        let alerts = get_text(&format!("{}/api/v1/alerts", prometheus.base));
        alerts.contains("\"ModproxyUpstreamsDown\"") && alerts.contains("\"firing\"")
    });
    assert!(
        firing,
        "ModproxyUpstreamsDown did not fire: {}\n{}",
        get_text(&format!("{}/api/v1/alerts", prometheus.base)),
        get_text(&format!("{}/metrics", proxy.url))
    );
}

#[test]
fn the_systemd_unit_verifies_and_its_environment_file_names_real_settings() {
    let dir = TempDir::new("systemd");
    let unit = read(&deploy().join("systemd/modproxy.service"));
    // Verified with the binary under test where the unit expects it.
    let local = unit.replace("/usr/local/bin/modproxy", env!("CARGO_BIN_EXE_modproxy"));
    assert_ne!(local, unit, "the unit's ExecStart changed");
    let path = dir.path().join("modproxy.service");
    std::fs::write(&path, local).unwrap();
    let said = check("systemd-analyze", &["verify", path.to_str().unwrap()]);
    assert!(
        !said.contains("modproxy.service"),
        "systemd-analyze has remarks on the unit:\n{said}"
    );

    let help = check(env!("CARGO_BIN_EXE_modproxy"), &["serve", "--help"]);
    let env_file = read(&deploy().join("systemd/modproxy.env"));
    let mut names: Vec<&str> = env_file
        .split(|c: char| !(c.is_ascii_uppercase() || c == '_'))
        .filter(|w| w.starts_with("MODPROXY_"))
        .collect();
    names.sort_unstable();
    names.dedup();
    assert!(names.len() > 10, "{names:?}");
    for name in names {
        assert!(
            help.contains(&format!("[env: {name}")),
            "{name} in deploy/systemd/modproxy.env is not a setting of `modproxy serve`"
        );
    }
}
